import type { Logger } from "@aws-lambda-powertools/logger";
import type { EC2Client } from "@aws-sdk/client-ec2";
import { describeInstancesById, isGone, isStopped } from "../aws/ec2-instances.js";
import { conclude, deadlineAfter, isPast, readOrDrain, withInstances } from "../domain/batch.js";
import type { Batch, InstanceProgress } from "../domain/model.js";

export interface CheckAppliedDeps {
  ec2: EC2Client;
  logger: Logger;
  now: () => Date;
}

/**
 * One poll of "has the change taken?" for the batch's instances in `await-applied`: EC2 reports
 * MetadataOptions.State `pending` until the instance's IMDS follows the new options. The state machine's Wait state
 * spaces the polls; this function never sleeps.
 */
export async function checkAppliedBatch(batch: Batch, deps: CheckAppliedDeps): Promise<Batch> {
  const now = deps.now();
  const waiting = batch.instances.filter((i) => i.stage === "await-applied");
  const outcome = await readOrDrain(
    batch,
    "await-applied",
    (p) => notAppliedInTime(p, batch, now, "unknown (EC2 refused the check: throttled or 5xx)"),
    () =>
      describeInstancesById(
        deps.ec2,
        waiting.map((i) => i.instanceId),
      ),
  );
  if ("drained" in outcome) return outcome.drained;
  const described = outcome.read;
  const next = batch.instances.map((progress): InstanceProgress => {
    if (progress.stage !== "await-applied") return progress;
    const instance = described.get(progress.instanceId);
    if (!instance || isGone(instance)) {
      return conclude(progress, batch, now, "skipped", "Instance was terminated before the change was verified.");
    }
    if (isStopped(instance)) {
      return conclude(
        progress,
        batch,
        now,
        "unverified",
        `Instance is ${instance.State?.Name}: HttpTokens=required takes effect when it starts; it cannot run the probe now.`,
      );
    }
    const options = instance.MetadataOptions;
    if (options?.HttpTokens !== "required") return optionalRead(progress, batch, now, options?.HttpTokens ?? "unknown");
    const { optionalReads: _stale, ...settled } = progress;
    if (options.State === "applied") {
      return {
        ...settled,
        appliedAt: now.toISOString(),
        stage: "await-managed",
        stageDeadline: deadlineAfter(now, batch.settings.managedTimeoutSeconds),
      };
    }
    return notAppliedInTime(settled, batch, now, options.State ?? "unknown");
  });
  deps.logger.debug("Checked applied state", { eventId: batch.eventId, waiting: waiting.length });
  return withInstances(batch, next);
}

/**
 * How long EC2 may go on showing the options from before a modify. EC2 documents no bound: it says a result "might
 * not be immediately visible" and advises describing again, "starting with a couple of seconds of wait time, and
 * increasing gradually up to a few minutes" ("Eventual consistency in the Amazon EC2 API"). `optional` reads are a
 * revert only when they go on at least this long...
 */
export const CONSISTENCY_WINDOW_SECONDS = 60;
/** ...over at least this many reads in a row, which the state machine's Wait state spaces (POLL_SECONDS.awaitApplied). */
export const REVERT_CONFIRM_READS = 3;

/**
 * HttpTokens read other than `required` after the guard set it. One read is not a revert: the describe may lag the
 * modify. The instance keeps waiting and is read again next round; `fail` (someone or something reverted it) only
 * once the reads have said so for the whole consistency window. If the deadline comes first, the guard cannot tell
 * a revert from a lagging describe, and says so.
 */
function optionalRead(progress: InstanceProgress, batch: Batch, now: Date, tokens: string): InstanceProgress {
  const since = progress.optionalReads?.since ?? now.toISOString();
  const reads = { since, count: (progress.optionalReads?.count ?? 0) + 1 };
  const lastedSeconds = Math.round((now.getTime() - Date.parse(since)) / 1000);
  if (reads.count >= REVERT_CONFIRM_READS && lastedSeconds >= CONSISTENCY_WINDOW_SECONDS) {
    return conclude(
      progress,
      batch,
      now,
      "fail",
      `HttpTokens went back to ${tokens} while the change was being verified, and stayed so for ${lastedSeconds} s over ${reads.count} reads: someone or something reverted it.`,
    );
  }
  if (isPast(progress.stageDeadline, now)) {
    return conclude(
      progress,
      batch,
      now,
      "unverified",
      `EC2 still reported HttpTokens=${tokens} at the deadline, ${lastedSeconds} s after it first did: too soon to tell a revert from EC2's eventual consistency. Check the instance.`,
    );
  }
  return { ...progress, optionalReads: reads };
}

/** Still waiting, unless the deadline has passed. */
function notAppliedInTime(progress: InstanceProgress, batch: Batch, now: Date, state: string): InstanceProgress {
  if (!isPast(progress.stageDeadline, now)) return progress;
  return conclude(
    progress,
    batch,
    now,
    "unverified",
    `The change was not applied within ${batch.settings.applyTimeoutSeconds} s (MetadataOptions.State is still ${state}).`,
  );
}
