import { conclude } from "../domain/batch.js";
import { LAMBDA_CRASH_ERROR_NAMES } from "../domain/errors.js";
import { type Batch, type BatchSummary, type InstanceResult, VERDICTS } from "../domain/model.js";

/**
 * The last step of every batch, on the happy path and after a Catch alike: every instance leaves with exactly one
 * verdict. Instances a failed step left unfinished become `error` with that step's cause, never silence.
 */
export function finalizeBatch(batch: Batch, now: Date): InstanceResult[] {
  const cause = batch.failure ? describeFailure(batch.failure) : "The flow ended before this instance had a verdict.";
  // The batch's account and region go with each stored result, as with each reported one.
  const where = {
    ...(batch.account !== undefined ? { account: batch.account } : {}),
    ...(batch.region !== undefined ? { region: batch.region } : {}),
  };
  return batch.instances.map((progress) => ({
    ...(progress.result ?? conclude(progress, batch, now, "error", unfinishedReason(progress, batch, cause)).result),
    ...where,
  }));
}

/**
 * Left in `enforce` by an Enforce that kept stopping (crash, timeout), an instance may have been changed by an attempt
 * that died after its modify call: say so, rather than imply nothing happened.
 */
function unfinishedReason(progress: Batch["instances"][number], batch: Batch, cause: string): string {
  const stopped = [...LAMBDA_CRASH_ERROR_NAMES, "States.Timeout"].includes(batch.failure?.Error ?? "");
  if (progress.stage !== "enforce" || batch.settings.mode !== "enforce" || !stopped) return cause;
  return `${cause} HttpTokens may or may not have been set to required by an attempt that stopped: check the instance.`;
}

/** Step Functions' Catch gives `{Error, Cause}`, where Cause is often the JSON of the Lambda's error. */
function describeFailure(failure: NonNullable<Batch["failure"]>): string {
  const name = failure.Error ?? "UnknownError";
  let message = failure.Cause ?? "";
  try {
    const parsed = JSON.parse(message) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === "string") message = parsed.errorMessage;
  } catch {
    // Cause is plain text
  }
  return `A step failed after its retries: ${name}${message ? `: ${message.slice(0, 400)}` : ""}`;
}

/** What the Map keeps of a batch: its position and its counts (the results themselves are in the result store). */
export function summarizeBatch(batchIndex: number, results: readonly InstanceResult[]): BatchSummary {
  const counts: Record<string, number> = {};
  for (const v of VERDICTS) counts[v] = 0;
  for (const r of results) counts[r.verdict] = (counts[r.verdict] ?? 0) + 1;
  return { batchIndex, suspended: false, instances: results.length, counts };
}

/**
 * The batch's verdicts for the execution's state, when the ledger is unavailable: a pass is only its id, every other
 * verdict keeps its reason (shortened), so even a large event's state stays under Step Functions' 256 KiB.
 */
export function inlineResults(results: readonly InstanceResult[]): NonNullable<BatchSummary["inline"]> {
  return {
    passed: results.filter((r) => r.verdict === "pass").map((r) => r.instanceId),
    others: results
      .filter((r) => r.verdict !== "pass")
      .map((r) => ({ instanceId: r.instanceId, verdict: r.verdict, reason: r.reason.slice(0, 300), warnings: [] })),
  };
}
