import { StateMachine } from "aws-local-stepfunctions";

/**
 * The AWS quotas the local runner enforces, each failing the way AWS fails. aws-local-stepfunctions enforces none of
 * them, so without this module a flow that AWS would stop passes locally.
 *
 * | Quota | Value | Over it | AWS page |
 * | --- | --- | --- | --- |
 * | State input/output, task input/result, execution input | 262,144 bytes (UTF-8 of the JSON) | `States.DataLimitExceeded`, terminal: no Retry, no Catch (not even `States.ALL`) | "Step Functions service quotas"; "Handling errors in Step Functions workflows" |
 * | Standard execution history | 25,000 events | the execution fails (`States.Runtime` here) | "Step Functions service quotas" |
 * | Express execution duration | 5 minutes | the execution times out (`States.Timeout`, status `TIMED_OUT`) | "Choosing workflow type in Step Functions" |
 * | Distributed Map failed children | `ToleratedFailurePercentage` / `ToleratedFailureCount` (default 0) | the Map fails with `States.ExceedToleratedFailureThreshold` | "Distributed Map state"; "Handling errors in Step Functions workflows" |
 * | Lambda synchronous invocation | 6 MB request, 6 MB response | `RequestTooLargeException` (request), `Function.ResponseSizeTooLarge` (response) | "Lambda quotas"; "Invoke" API reference |
 * | Lambda asynchronous invocation | 1 MB request | `RequestTooLargeException` | "Invoke" API reference ("For asynchronous invocations, the maximum payload size is 1 MB") |
 */
export const STATE_PAYLOAD_LIMIT_BYTES = 262_144;
export const STANDARD_HISTORY_EVENT_LIMIT = 25_000;
export const EXPRESS_MAX_DURATION_MS = 5 * 60 * 1000;
export const LAMBDA_SYNC_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024;
export const LAMBDA_ASYNC_PAYLOAD_LIMIT_BYTES = 1024 * 1024;

/** The size Step Functions and Lambda measure: the UTF-8 bytes of the JSON text. */
export function payloadBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null), "utf8");
}

/**
 * An error that ends the execution: aws-local-stepfunctions skips every Retrier and Catcher for an error whose
 * `isRetryable` and `isCatchable` are false, which is how AWS treats `States.DataLimitExceeded` and `States.Runtime`.
 */
export function terminalError(name: "States.DataLimitExceeded" | "States.Runtime", message: string): Error {
  const error = Object.assign(new Error(message), { isRetryable: false, isCatchable: false });
  error.name = name;
  return error;
}

/** An error a Retrier or Catcher may match (a Map over its failure threshold, an Express child timed out). */
export function statesError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

export function dataLimitExceeded(where: string, bytes: number): Error {
  return terminalError(
    "States.DataLimitExceeded",
    `${where} is ${bytes} bytes, over the ${STATE_PAYLOAD_LIMIT_BYTES}-byte quota of Step Functions`,
  );
}

/** Throws `States.DataLimitExceeded` when the value is over the state payload quota; returns its size otherwise. */
export function checkStatePayload(where: string, value: unknown): number {
  const bytes = payloadBytes(value);
  if (bytes > STATE_PAYLOAD_LIMIT_BYTES) throw dataLimitExceeded(where, bytes);
  return bytes;
}

interface EngineEvent {
  type: string;
  index?: number;
  state?: { name?: string; type?: string; input?: unknown; output?: unknown };
}

/**
 * What one execution did, as its engine reported it, checked against the quotas as it happens. It sees each event
 * synchronously (see `trackedMachine`), so a state over a quota stops the execution before the next state runs.
 */
export class ExecutionTracker {
  maxStatePayloadBytes = 0;
  /** Every state entered and every retry: what Step Functions bills a Standard execution by. */
  transitions = 0;
  historyEvents = 2; // ExecutionStarted, and ExecutionSucceeded/Failed
  /** Retries of every state (StateRetried events). */
  retries = 0;
  private readonly retryCounts = new Map<string, number>();
  /** A state over a quota fails the execution; the first such error, kept for the record. */
  violation: Error | undefined;

  constructor(
    readonly type: "STANDARD" | "EXPRESS",
    /** The parent's states that are Distributed Maps run by the runner (a Task in the engine's copy). */
    private readonly mapStates: ReadonlySet<string> = new Set(),
  ) {}

  /** `$$.State.RetryCount`: the retries of the state since it was last entered (AWS resets it on each entry). */
  retryCount(stateName: string): number {
    return this.retryCounts.get(stateName) ?? 0;
  }

  /** Records a payload the runner itself sees (a task's input after Parameters, its result before ResultSelector). */
  payload(where: string, value: unknown): void {
    const bytes = payloadBytes(value);
    this.maxStatePayloadBytes = Math.max(this.maxStatePayloadBytes, bytes);
    if (bytes > STATE_PAYLOAD_LIMIT_BYTES) throw this.fail(dataLimitExceeded(where, bytes));
  }

  /** Same accounting as the history estimate of the runner: a Task writes ~5 events, other states 2, a retry 3. */
  observe(event: EngineEvent): void {
    // Events of an inline Map's or a Parallel's iterations come forwarded, outside the execution's own loop.
    if (event.index !== undefined) return;
    const name = event.state?.name ?? "";
    if (event.type === "StateEntered") {
      this.retryCounts.set(name, 0);
      this.transitions++;
      const isTask = event.state?.type === "Task" && !this.mapStates.has(name);
      this.history(isTask ? 5 : 2);
      this.payload(`The input of state ${name}`, event.state?.input);
    } else if (event.type === "StateExited") {
      this.payload(`The output of state ${name}`, event.state?.output);
    } else if (event.type === "StateRetried") {
      this.retryCounts.set(name, this.retryCount(name) + 1);
      this.retries++;
      this.transitions++;
      this.history(3);
    }
  }

  private history(events: number): void {
    this.historyEvents += events;
    if (this.type === "STANDARD" && this.historyEvents > STANDARD_HISTORY_EVENT_LIMIT) {
      throw this.fail(
        terminalError(
          "States.Runtime",
          `The execution history reached ${this.historyEvents} events, over the ${STANDARD_HISTORY_EVENT_LIMIT}-event quota of a Standard execution`,
        ),
      );
    }
  }

  private fail(error: Error): Error {
    this.violation ??= error;
    return error;
  }
}

type Execute = (
  input: unknown,
  options: { eventLogger: { dispatch: (e: EngineEvent) => void } },
  cleanup: () => void,
) => Promise<unknown>;

const engineExecute = Reflect.get(StateMachine.prototype, "execute") as Execute;

/**
 * A state machine of aws-local-stepfunctions whose every event passes through the tracker first, synchronously: the
 * engine dispatches StateEntered and StateExited inside its execution loop's `try`, so a quota error thrown there
 * fails the execution at once (ExecutionFailed), outside any state's Retry and Catch, as AWS fails it.
 */
export function trackedMachine(
  definition: Record<string, unknown>,
  tracker: ExecutionTracker,
  validate = false,
): StateMachine {
  const machine = new StateMachine(
    definition as never,
    validate ? undefined : { validationOptions: { noValidate: true } },
  );
  Object.defineProperty(machine, "execute", {
    value(this: StateMachine, input: unknown, options: Parameters<Execute>[1], cleanup: () => void) {
      const logger = options.eventLogger;
      const dispatch = logger.dispatch.bind(logger);
      logger.dispatch = (event) => {
        // Only the execution's own end goes to the engine's log (it closes `eventLogs`); the tracker keeps the rest.
        if (event.type.startsWith("Execution")) dispatch(event);
        tracker.observe(event);
      };
      return engineExecute.call(this, input, options, cleanup);
    },
  });
  return machine;
}
