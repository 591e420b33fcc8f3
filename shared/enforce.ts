import type { Logger } from "@aws-lambda-powertools/logger";
import { type EC2Client, type Instance, ModifyInstanceMetadataOptionsCommand } from "@aws-sdk/client-ec2";
import { awsErrorCode, classifyAwsError, isWorthRetryingNextRound } from "./aws-errors.js";
import { conclude, deadlineAfter, isPast, throttledRound, withInstances } from "./batch.js";
import { describeInstancesById, isGone, isStopped, tagValue } from "./ec2-instances.js";
import { RetryableThrottlingError } from "./errors.js";
import type { Batch, InstanceProgress } from "./model.js";

export interface EnforceDeps {
  ec2: EC2Client;
  logger: Logger;
  now: () => Date;
}

/** How long an instance named by RunInstances may stay invisible to DescribeInstances before it is an error. */
export const NOT_FOUND_GRACE_SECONDS = 120;

/**
 * Enforces `HttpTokens=required` on the batch's instances in the `enforce` stage: one DescribeInstances for all of
 * them, then one ModifyInstanceMetadataOptions per instance that needs it, changing nothing else (hop limit, endpoint,
 * tags stay as they are). Decisions that need no change (terminated, exempt, already required, IMDS off, audit mode)
 * are made from the describe alone. A throttled modify leaves that instance, and the rest of the round, in `enforce`
 * for the next round, so only requests AWS refused are ever repeated.
 */
export async function enforceBatch(batch: Batch, deps: EnforceDeps): Promise<Batch> {
  const now = deps.now();
  const pending = batch.instances.filter((i) => i.stage === "enforce");
  let described: Map<string, Instance>;
  try {
    described = await describeInstancesById(
      deps.ec2,
      pending.map((i) => i.instanceId),
    );
  } catch (error) {
    if (!(error instanceof RetryableThrottlingError)) throw error;
    return throttledRound(batch, (p) => {
      if (p.stage !== "enforce") return p;
      const entered = p.stageDeadline
        ? p
        : { ...p, stageDeadline: deadlineAfter(now, batch.settings.applyTimeoutSeconds) };
      return stillThrottled(entered, batch, now, "DescribeInstances");
    });
  }
  let throttled = false;
  const next: InstanceProgress[] = [];
  for (const progress of batch.instances) {
    if (progress.stage !== "enforce") {
      next.push(progress);
      continue;
    }
    const entered = progress.stageDeadline
      ? progress
      : { ...progress, stageDeadline: deadlineAfter(now, batch.settings.applyTimeoutSeconds) };
    const instance = described.get(progress.instanceId);
    if (!instance) {
      next.push(notYetVisible(entered, batch, now));
      continue;
    }
    const decided = decideWithoutChange(entered, instance, batch, now);
    if (decided) {
      next.push(decided);
      continue;
    }
    if (throttled) {
      next.push(stillThrottled(entered, batch, now));
      continue;
    }
    try {
      await deps.ec2.send(
        new ModifyInstanceMetadataOptionsCommand({ InstanceId: progress.instanceId, HttpTokens: "required" }),
      );
      deps.logger.info("Set HttpTokens=required", { instanceId: progress.instanceId, eventId: batch.eventId });
      next.push(afterModify(entered, instance, batch, now));
    } catch (error) {
      if (isWorthRetryingNextRound(error)) {
        throttled = true;
        next.push(stillThrottled(entered, batch, now));
      } else if (awsErrorCode(error) === "InvalidInstanceID.NotFound") {
        next.push(notYetVisible(entered, batch, now));
      } else {
        const classified = classifyAwsError(error, "ModifyInstanceMetadataOptions");
        deps.logger.error("Could not enforce", { instanceId: progress.instanceId, error: classified.message });
        next.push(conclude(entered, batch, now, "error", classified.message));
      }
    }
  }
  return withInstances(batch, next, throttled && "modify");
}

/** The decisions that need no modify call; undefined when the instance must be changed. */
function decideWithoutChange(
  progress: InstanceProgress,
  instance: Instance,
  batch: Batch,
  now: Date,
): InstanceProgress | undefined {
  const { settings } = batch;
  if (isGone(instance)) {
    return conclude(progress, batch, now, "skipped", `Instance is ${instance.State?.Name}; nothing to protect.`);
  }
  const exemption = tagValue(instance, settings.exemptTagKey);
  if (exemption !== undefined) {
    return conclude(
      { ...progress, action: "none: exempt" },
      batch,
      now,
      "exempt",
      `Exempt by tag ${settings.exemptTagKey}: ${exemption || "(no reason given)"}. Nothing was changed.`,
    );
  }
  const options = instance.MetadataOptions;
  if (options?.HttpEndpoint === "disabled") {
    return toManaged(
      { ...progress, action: "none: the IMDS endpoint is disabled, so there is no HttpTokens to set" },
      batch,
      now,
      instance,
    );
  }
  if (options?.HttpTokens === "required") {
    const already = { ...progress, action: "none: HttpTokens was already required" };
    if (options.State === "applied")
      return toManaged({ ...already, appliedAt: now.toISOString() }, batch, now, instance);
    return {
      ...already,
      stage: "await-applied",
      stageDeadline: deadlineAfter(now, settings.applyTimeoutSeconds),
    };
  }
  if (settings.mode === "audit") {
    return toManaged(
      {
        ...progress,
        action: `audit: would set HttpTokens=required (now ${options?.HttpTokens ?? "unknown"})`,
        notes: [...progress.notes, "Audit mode: nothing was changed."],
      },
      batch,
      now,
      instance,
    );
  }
  return undefined;
}

function afterModify(progress: InstanceProgress, instance: Instance, batch: Batch, now: Date): InstanceProgress {
  const modified: InstanceProgress = {
    ...progress,
    action: `set HttpTokens=required (was ${instance.MetadataOptions?.HttpTokens ?? "unknown"})`,
    enforcedAt: now.toISOString(),
  };
  if (isStopped(instance)) {
    return conclude(
      modified,
      batch,
      now,
      "unverified",
      `Instance is ${instance.State?.Name}: HttpTokens=required is set and takes effect when it starts; a stopped instance cannot run the probe.`,
    );
  }
  return {
    ...modified,
    stage: "await-applied",
    stageDeadline: deadlineAfter(now, batch.settings.applyTimeoutSeconds),
  };
}

/** Next stage for an instance whose options need no change: prove it from inside, unless it cannot run anything. */
function toManaged(progress: InstanceProgress, batch: Batch, now: Date, instance: Instance): InstanceProgress {
  if (isStopped(instance)) {
    return conclude(
      progress,
      batch,
      now,
      "unverified",
      `Instance is ${instance.State?.Name}; it cannot run the probe.`,
    );
  }
  return {
    ...progress,
    stage: "await-managed",
    stageDeadline: deadlineAfter(now, batch.settings.managedTimeoutSeconds),
  };
}

function notYetVisible(progress: InstanceProgress, batch: Batch, now: Date): InstanceProgress {
  const since = progress.firstNotFoundAt ?? now.toISOString();
  if (now.getTime() - Date.parse(since) >= NOT_FOUND_GRACE_SECONDS * 1000) {
    return conclude(
      { ...progress, firstNotFoundAt: since },
      batch,
      now,
      "error",
      `Instance not found: DescribeInstances has not shown it for ${NOT_FOUND_GRACE_SECONDS} s.`,
    );
  }
  return { ...progress, firstNotFoundAt: since };
}

function stillThrottled(
  progress: InstanceProgress,
  batch: Batch,
  now: Date,
  api = "ModifyInstanceMetadataOptions",
): InstanceProgress {
  if (isPast(progress.stageDeadline, now)) {
    return conclude(
      progress,
      batch,
      now,
      "error",
      `EC2 kept refusing ${api} (throttled or 5xx) for ${batch.settings.applyTimeoutSeconds} s; HttpTokens was not changed.`,
    );
  }
  return progress;
}
