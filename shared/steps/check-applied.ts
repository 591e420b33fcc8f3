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
    if (options?.HttpTokens !== "required") {
      return conclude(
        progress,
        batch,
        now,
        "fail",
        `HttpTokens went back to ${options?.HttpTokens ?? "unknown"} while the change was being verified: someone or something reverted it.`,
      );
    }
    if (options.State === "applied") {
      return {
        ...progress,
        appliedAt: now.toISOString(),
        stage: "await-managed",
        stageDeadline: deadlineAfter(now, batch.settings.managedTimeoutSeconds),
      };
    }
    return notAppliedInTime(progress, batch, now, options.State ?? "unknown");
  });
  deps.logger.debug("Checked applied state", { eventId: batch.eventId, waiting: waiting.length });
  return withInstances(batch, next);
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
