import { SendTaskSuccessCommand, type SFNClient } from "@aws-sdk/client-sfn";
import { awsErrorCode, classifyAwsError } from "./errors.js";

/**
 * Resumes a task that waits for its token (`.waitForTaskToken`). Returns false when the wait had already ended (it
 * timed out, or another caller resumed it first): both sides of a hand-off may try, and only the first counts.
 */
export async function resumeTask(sfn: SFNClient, taskToken: string, output: unknown): Promise<boolean> {
  try {
    await sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
    return true;
  } catch (error) {
    const code = awsErrorCode(error);
    if (code === "TaskTimedOut" || code === "TaskDoesNotExist" || code === "InvalidToken") return false;
    throw classifyAwsError(error, "SendTaskSuccess");
  }
}
