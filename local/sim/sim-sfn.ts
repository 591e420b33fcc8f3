import type { SendTaskSuccessCommandInput, StartExecutionCommandInput } from "@aws-sdk/client-sfn";
import { awsError, type SimContext } from "./sim-context.js";

/**
 * The simulated Step Functions API the guard's functions call (the executions themselves run in the local runner).
 *
 * | Behaviour | AWS documentation page |
 * | --- | --- |
 * | A second StartExecution with a name already used: ExecutionAlreadyExists | "StartExecution" (Errors; names are unique for 90 days) |
 * | SendTaskSuccess for a token no longer waiting (or sent back once already): TaskTimedOut | "SendTaskSuccess" (Errors) |
 */
export class SimSfn {
  /** Set by the runner: starts an execution of the state machine, as StartExecution does. */
  onStartExecution: ((name: string, input: unknown) => void) | undefined;
  private readonly executionNames = new Set<string>();
  private readonly taskTokens = new Map<string, (output: unknown) => void>();
  private started = 0;

  constructor(private readonly ctx: SimContext) {}

  /**
   * A `.waitForTaskToken` task is waiting on this token: the promise settles with the output SendTaskSuccess sends.
   * A token sent back once is refused the second time (TaskTimedOut), as AWS refuses it.
   */
  openTaskToken(token: string): Promise<unknown> {
    return new Promise((resolve) => this.taskTokens.set(token, resolve));
  }

  async startExecution(input: StartExecutionCommandInput) {
    const now = Date.now();
    this.ctx.gate("StartExecution", now);
    this.started++;
    const name = input.name ?? `execution-${this.started}`;
    if (this.executionNames.has(name)) {
      throw awsError("ExecutionAlreadyExists", `Execution Already Exists: '${input.stateMachineArn}:${name}'`);
    }
    this.executionNames.add(name);
    this.onStartExecution?.(name, JSON.parse(input.input ?? "{}") as unknown);
    return { executionArn: `${input.stateMachineArn}:${name}`, startDate: new Date(now) };
  }

  async sendTaskSuccess(input: SendTaskSuccessCommandInput) {
    this.ctx.gate("SendTaskSuccess", Date.now());
    const resume = input.taskToken ? this.taskTokens.get(input.taskToken) : undefined;
    if (!resume || !input.taskToken) throw awsError("TaskTimedOut", "Task Timed Out: the task is no longer waiting");
    this.taskTokens.delete(input.taskToken);
    resume(JSON.parse(input.output ?? "null") as unknown);
    return {};
  }
}
