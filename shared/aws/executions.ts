import { type SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { awsErrorCode, classifyAwsError } from "./errors.js";

/**
 * Starts a Standard execution by name. A name already used (within 90 days) is refused with ExecutionAlreadyExists:
 * the work was started before, by an earlier delivery or attempt, and is not started twice.
 */
export async function startNamedExecution(
  sfn: SFNClient,
  stateMachineArn: string,
  name: string,
  input: unknown,
): Promise<"started" | "already-started"> {
  try {
    await sfn.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
    return "started";
  } catch (error) {
    if (awsErrorCode(error) === "ExecutionAlreadyExists") return "already-started";
    throw classifyAwsError(error, "StartExecution");
  }
}

/** The ARN an execution of this name gets: what the instance claims record before the execution exists. */
export function executionArnOf(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${name}`;
}
