import type { Logger } from "@aws-lambda-powertools/logger";
import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import {
  type EC2Client,
  type HttpTokensState,
  type Instance,
  type InstanceStateName,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { describeInstancesById, isGone, isStopped, tagValue } from "../aws/ec2-instances.js";
import type { EnforceIntents, IntentScope, RecordedIntent } from "../aws/enforce-intents.js";
import { awsErrorCode, classifyAwsError, isThrottling, isTransient, isWorthRetryingNextRound } from "../aws/errors.js";
import { sumImdsMetric } from "../aws/imds-metrics.js";
import { LEDGER_RETENTION_SECONDS } from "../aws/result-store.js";
import { conclude, deadlineAfter, isPast, readOrDrain, type Throttled, withInstances } from "../domain/batch.js";
import type { Enforcement } from "../domain/enforcement.js";
import { RetryableServiceError, RetryableThrottlingError } from "../domain/errors.js";
import { exemptionOf } from "../domain/exemption.js";
import type { Batch, InstanceProgress, Origin } from "../domain/model.js";
import { platformOwnerOf } from "../domain/platform-owner.js";

/** Which attempt of the Enforce task this is: Step Functions passes `$$.State.RetryCount` (0 on the first). */
export interface EnforceAttempt {
  retryCount: number;
}
export const FIRST_ATTEMPT: EnforceAttempt = { retryCount: 0 };

export interface EnforceDeps {
  ec2: EC2Client;
  cloudwatch: CloudWatchClient;
  logger: Logger;
  now: () => Date;
  /** AMI → ImdsSupport, cached per container (see image-support.ts). */
  imageSupport: (ec2: EC2Client, imageIds: readonly string[]) => Promise<Map<string, string>>;
  /** The intents stored in the event ledger before each round's modify calls (enforce-intents.ts). */
  intents: EnforceIntents;
}

/** How long an instance named by RunInstances may stay invisible to DescribeInstances before it is an error. */
export const NOT_FOUND_GRACE_SECONDS = 120;

/**
 * Enforces `HttpTokens=required` on the batch's instances in the `enforce` stage: one DescribeInstances for all of
 * them, then one ModifyInstanceMetadataOptions per instance that needs it, changing nothing else (hop limit, endpoint,
 * tags stay as they are). Decisions that need no change (terminated, exempt, already required, IMDS off, audit mode)
 * are made from the describe alone. Before changing an existing instance (a regression or a sweep, not a launch),
 * the safety gate reads its IMDSv1 use from CloudWatch, and holds it when policy says so. A throttled modify leaves
 * that instance, and the rest of the round, in `enforce` for the next round, so only requests AWS refused are ever
 * repeated.
 */
export async function enforceBatch(
  batch: Batch,
  deps: EnforceDeps,
  attempt: EnforceAttempt = FIRST_ATTEMPT,
): Promise<Batch> {
  const now = deps.now();
  const pending = batch.instances.filter((i) => i.stage === "enforce");
  // Only a throttled modify is sent again from what its describe said; a 5xx may have taken, so that one is read.
  const resend = pending.filter((i) => i.modifyRefused !== undefined && !i.modifyOutcomeUnknown);
  const toDescribe = pending.filter((i) => !resend.includes(i));
  const outcome =
    toDescribe.length === 0
      ? { read: new Map<string, Instance>() }
      : await readOrDrain(
          batch,
          "enforce",
          (p) => stillThrottled(entering(p, batch, now), batch, now, "DescribeInstances"),
          () =>
            describeInstancesById(
              deps.ec2,
              toDescribe.map((i) => i.instanceId),
            ),
        );
  if ("drained" in outcome) return outcome.drained;
  const described = new Map(outcome.read);
  for (const p of resend) if (p.modifyRefused) described.set(p.instanceId, asDescribed(p.instanceId, p.modifyRefused));
  const origins = await originsOf([...described.values()], deps);
  const intents = await intentsIfNeeded(pending, described, batch, deps);

  // Decide what needs no change; the rest are candidates for the gate and the modify call.
  const decided = new Map<string, InstanceProgress>();
  const candidates: InstanceProgress[] = [];
  for (const progress of pending) {
    const entered = entering(progress, batch, now);
    const instance = described.get(progress.instanceId);
    if (!instance) {
      decided.set(progress.instanceId, notYetVisible(entered, batch, now));
      continue;
    }
    const withOrigin: InstanceProgress = { ...entered, origin: origins.get(progress.instanceId) ?? entered.origin };
    const outcome = decideWithoutChange(withOrigin, instance, batch, now, attempt, intents.get(progress.instanceId));
    if (outcome.decided) decided.set(progress.instanceId, outcome.decided);
    else candidates.push(outcome.progress);
  }

  const gated = await safetyGate(candidates, batch, deps, now);
  let throttled: Throttled = gated.throttled ? "drain" : false;
  for (const progress of gated.decided) decided.set(progress.instanceId, progress);
  if (batch.settings.mode !== "audit") await recordIntent(gated.proceed, described, batch, deps, now);

  for (const progress of gated.proceed) {
    const instance = described.get(progress.instanceId);
    if (!instance) continue;
    if (batch.settings.mode === "audit") {
      decided.set(
        progress.instanceId,
        toManaged(
          {
            ...progress,
            enforcement: { kind: "would-set-required", was: instance.MetadataOptions?.HttpTokens ?? "unknown" },
            notes: [...progress.notes, "Audit mode: nothing was changed."],
          },
          batch,
          now,
          instance,
        ),
      );
      continue;
    }
    if (throttled === "modify") {
      decided.set(progress.instanceId, stillThrottled(refused(progress, instance), batch, now));
      continue;
    }
    try {
      await deps.ec2.send(
        new ModifyInstanceMetadataOptionsCommand({ InstanceId: progress.instanceId, HttpTokens: "required" }),
      );
      deps.logger.info("Set HttpTokens=required", { instanceId: progress.instanceId, eventId: batch.eventId });
      decided.set(progress.instanceId, afterModify(progress, instance, batch, now));
    } catch (error) {
      if (isWorthRetryingNextRound(error)) {
        throttled = "modify";
        // EC2 sends RequestLimitExceeded as a 503: only a 5xx that is not throttling leaves the outcome unknown.
        const unknown =
          isTransient(error) && !isThrottling(error)
            ? { ...progress, modifyOutcomeUnknown: true }
            : refused(progress, instance);
        decided.set(progress.instanceId, stillThrottled(unknown, batch, now));
      } else if (awsErrorCode(error) === "InvalidInstanceID.NotFound") {
        decided.set(progress.instanceId, notYetVisible(withoutRefusal(progress), batch, now));
      } else {
        const classified = classifyAwsError(error, "ModifyInstanceMetadataOptions");
        deps.logger.error("Could not enforce", { instanceId: progress.instanceId, error: classified.message });
        decided.set(progress.instanceId, conclude(progress, batch, now, "error", classified.message));
      }
    }
  }
  return withInstances(
    batch,
    batch.instances.map((i) => decided.get(i.instanceId) ?? i),
    throttled,
  );
}

/** The first time an instance is in `enforce`, its deadline starts. */
function entering(progress: InstanceProgress, batch: Batch, now: Date): InstanceProgress {
  return progress.stageDeadline
    ? progress
    : { ...progress, stageDeadline: deadlineAfter(now, batch.settings.applyTimeoutSeconds) };
}

/**
 * Where each instance came from: its launch template and Auto Scaling group (the tags EC2 and Auto Scaling put on
 * every instance they launch) and its AMI's ImdsSupport. Attribution is advice, so a failed lookup leaves the AMI's
 * support "unknown" rather than blocking enforcement.
 */
async function originsOf(instances: Instance[], deps: EnforceDeps): Promise<Map<string, Origin>> {
  const imageIds = instances.map((i) => i.ImageId).filter((id): id is string => id !== undefined);
  let support = new Map<string, string>();
  try {
    support = await deps.imageSupport(deps.ec2, imageIds);
  } catch (error) {
    deps.logger.warn("Could not read AMI ImdsSupport", {
      error: error instanceof Error ? error.message : String(error),
    });
  }
  const origins = new Map<string, Origin>();
  for (const instance of instances) {
    if (!instance.InstanceId) continue;
    const tag = (key: string) => tagValue(instance, key);
    const owner = platformOwnerOf(tag);
    const origin: Origin = {
      ...(owner ? { owner } : {}),
      ...(tag("aws:ec2launchtemplate:id") ? { launchTemplateId: tag("aws:ec2launchtemplate:id") } : {}),
      ...(tag("aws:ec2launchtemplate:version") ? { launchTemplateVersion: tag("aws:ec2launchtemplate:version") } : {}),
      ...(tag("aws:autoscaling:groupName") ? { autoScalingGroup: tag("aws:autoscaling:groupName") } : {}),
      ...(instance.ImageId
        ? { imageId: instance.ImageId, imageImdsSupport: support.get(instance.ImageId) ?? "unknown" }
        : {}),
      ...(instance.MetadataOptions?.HttpPutResponseHopLimit !== undefined
        ? { hopLimit: instance.MetadataOptions.HttpPutResponseHopLimit }
        : {}),
    };
    origins.set(instance.InstanceId, origin);
  }
  return origins;
}

interface GateOutcome {
  proceed: InstanceProgress[];
  decided: InstanceProgress[];
  throttled: boolean;
}

/**
 * The safety gate: never silently break software that still uses IMDSv1. A launch has no history and goes through.
 * An existing instance's IMDSv1 calls (MetadataNoToken) over the look-back decide: with onV1Usage=hold it is `held`,
 * with enforce it goes on with a note. If the metric cannot be read, nothing is enforced (a gate that errors must
 * not wave the change through): a throttled read waits for the next round, any other failure is an `error`.
 */
async function safetyGate(
  candidates: InstanceProgress[],
  batch: Batch,
  deps: EnforceDeps,
  now: Date,
): Promise<GateOutcome> {
  if (batch.trigger === "launch" || candidates.length === 0)
    return { proceed: candidates, decided: [], throttled: false };
  const hours = batch.settings.v1UsageLookbackHours;
  const unread = candidates.filter((c) => c.v1Usage === undefined).map((c) => c.instanceId);
  let usage = new Map<string, number>();
  try {
    usage = await sumImdsMetric(
      deps.cloudwatch,
      "MetadataNoToken",
      unread,
      new Date(now.getTime() - hours * 3_600_000),
      now,
    );
  } catch (error) {
    if (error instanceof RetryableThrottlingError || error instanceof RetryableServiceError) {
      return {
        proceed: [],
        decided: candidates.map((c) => stillThrottled(c, batch, now, "GetMetricData")),
        throttled: true,
      };
    }
    const reason = `IMDSv1 use could not be checked, so nothing was changed: ${error instanceof Error ? error.message : String(error)}`;
    return { proceed: [], decided: candidates.map((c) => conclude(c, batch, now, "error", reason)), throttled: false };
  }
  const proceed: InstanceProgress[] = [];
  const decided: InstanceProgress[] = [];
  for (const candidate of candidates) {
    const calls = candidate.v1Usage?.calls ?? usage.get(candidate.instanceId) ?? 0;
    const withUsage: InstanceProgress = { ...candidate, v1Usage: { calls, hours } };
    if (calls === 0) {
      proceed.push(withUsage);
    } else if (batch.settings.onV1Usage === "hold") {
      decided.push(
        conclude(
          { ...withUsage, enforcement: { kind: "held" } },
          batch,
          now,
          "held",
          `IMDSv1 answered ${calls} call(s) in the last ${hours} h (CloudWatch MetadataNoToken), so HttpTokens was not changed (policy onV1Usage=hold): enforcing now would break what makes those calls.`,
        ),
      );
    } else if (candidate.v1Usage !== undefined) {
      // Read in an earlier round whose modify was throttled: the note is already there.
      proceed.push(withUsage);
    } else {
      proceed.push({
        ...withUsage,
        notes: [
          ...withUsage.notes,
          `IMDSv1 answered ${calls} call(s) in the last ${hours} h; enforced anyway (policy onV1Usage=enforce).`,
        ],
      });
    }
  }
  return { proceed, decided, throttled: false };
}

/** The decisions that need no modify call; otherwise the instance, annotated, goes on to the gate. */
function decideWithoutChange(
  progress: InstanceProgress,
  instance: Instance,
  batch: Batch,
  now: Date,
  attempt: EnforceAttempt,
  intent: RecordedIntent | undefined,
): { decided: InstanceProgress; progress?: undefined } | { decided?: undefined; progress: InstanceProgress } {
  const { settings } = batch;
  if (isGone(instance)) {
    return {
      decided: conclude(progress, batch, now, "skipped", `Instance is ${instance.State?.Name}; nothing to protect.`),
    };
  }
  let annotated = progress;
  const exemption = exemptionOf(instance.Tags, settings, now);
  if (exemption.status === "active") {
    const until = exemption.until ? ` until ${exemption.until}` : "";
    return {
      decided: conclude(
        {
          ...progress,
          enforcement: { kind: "exempt" },
          notes: [...progress.notes, ...(exemption.warning ? [exemption.warning] : [])],
        },
        batch,
        now,
        "exempt",
        `Exempt${until} by tag ${settings.exemptTagKey}: ${exemption.reason}. Nothing was changed.`,
      ),
    };
  }
  if (exemption.status === "lapsed") {
    annotated = {
      ...progress,
      notes: [
        ...progress.notes,
        `The exemption lapsed on ${exemption.until} (${settings.exemptUntilTagKey}); it was: ${exemption.reason}`,
      ],
    };
  }
  const options = instance.MetadataOptions;
  if (options?.HttpEndpoint === "disabled") {
    return {
      decided: toManaged({ ...annotated, enforcement: { kind: "endpoint-disabled" } }, batch, now, instance),
    };
  }
  if (options?.HttpTokens === "required") {
    const enforcement = requiredFoundBy(annotated, batch, attempt, intent);
    // The event says HttpTokens became optional, the describe says required, and nothing says the guard set it: the
    // describe may lag that change ("Eventual consistency in the Amazon EC2 API"). Setting required again is
    // harmless if it did not, and trusting it would leave IMDSv1 on.
    if (enforcement.kind === "already-required" && enforcement.changedSinceEvent) return { progress: annotated };
    // The change was made no earlier than its intent was stored: the watch for refused calls starts there.
    const enforcedAt = enforcement.evidence === "intent-recorded" && intent ? intent.at : now.toISOString();
    const already: InstanceProgress =
      enforcement.kind === "set-required" ? { ...annotated, enforcement, enforcedAt } : { ...annotated, enforcement };
    if (options.State === "applied") {
      return { decided: toManaged({ ...already, appliedAt: now.toISOString() }, batch, now, instance) };
    }
    return {
      decided: { ...already, stage: "await-applied", stageDeadline: deadlineAfter(now, settings.applyTimeoutSeconds) },
    };
  }
  return { progress: annotated };
}

/**
 * Was this `required` the guard's doing? Decided from recorded facts, never from the absence of a flag:
 * - a modify answered with a 5xx in an earlier round (`modifyOutcomeUnknown`): the guard's call took;
 * - an earlier run of this batch stored its intent for this instance in the ledger before calling (a Standard
 *   retry, or an at-least-once duplicate run that knows no retry count): the guard's call took;
 * - this is a retry of the step (`$$.State.RetryCount` > 0) and the triggering event recorded `optional`: an
 *   earlier attempt may have called and died before returning. This covers an attempt whose intent could not be
 *   stored (the guard enforces anyway rather than let bookkeeping block it); in audit mode no attempt calls;
 * - the event recorded `optional` and this is the step's first attempt, with no intent: someone else changed it;
 * - otherwise it was required already.
 */
function requiredFoundBy(
  progress: InstanceProgress,
  batch: Batch,
  attempt: EnforceAttempt,
  intent: RecordedIntent | undefined,
): Enforcement {
  if (batch.settings.mode === "audit") return { kind: "already-required" };
  if (progress.modifyOutcomeUnknown) return { kind: "set-required", was: "optional", evidence: "answered-with-error" };
  if (intent) return { kind: "set-required", was: intent.was, evidence: "intent-recorded" };
  if (progress.recordedHttpTokens === "optional") {
    return attempt.retryCount > 0
      ? { kind: "set-required", was: "optional", evidence: "attempt-stopped-after-call" }
      : { kind: "already-required", changedSinceEvent: true };
  }
  return { kind: "already-required" };
}

/**
 * The intents earlier runs of this batch stored, read only when they can matter: some instance is `required` now
 * though nothing recorded it so (a launch recorded `required` needs no proof). A failed read proves nothing and
 * blocks nothing: the retry-count rule then decides alone.
 */
async function intentsIfNeeded(
  pending: InstanceProgress[],
  described: Map<string, Instance>,
  batch: Batch,
  deps: EnforceDeps,
): Promise<Map<string, RecordedIntent>> {
  if (batch.settings.mode === "audit") return new Map();
  const mayBeOurs = pending.some(
    (p) =>
      described.get(p.instanceId)?.MetadataOptions?.HttpTokens === "required" &&
      !p.modifyOutcomeUnknown &&
      p.recordedHttpTokens !== "required",
  );
  if (!mayBeOurs) return new Map();
  try {
    return await deps.intents.recorded(intentScope(batch));
  } catch (error) {
    deps.logger.warn("Could not read the enforce intents; deciding from the retry count", {
      error: error instanceof Error ? error.message : String(error),
    });
    return new Map();
  }
}

/** Where a batch's intents are kept: under the event's ledger key, as FinalizeBatch keeps its results. */
function intentScope(batch: Batch): IntentScope {
  return { eventId: batch.ledgerKey ?? batch.eventId, batchIndex: batch.batchIndex };
}

/**
 * Stores what this round is about to change, before the first call, so a run that dies after its calls is
 * reported truthfully by the next. If it cannot be stored the guard still enforces: the change matters more than
 * its bookkeeping, and the retry count still covers a Standard retry.
 */
async function recordIntent(
  proceeding: InstanceProgress[],
  described: Map<string, Instance>,
  batch: Batch,
  deps: EnforceDeps,
  now: Date,
): Promise<void> {
  const instances: Record<string, string> = {};
  for (const p of proceeding) {
    const instance = described.get(p.instanceId);
    if (instance) instances[p.instanceId] = instance.MetadataOptions?.HttpTokens ?? "unknown";
  }
  if (Object.keys(instances).length === 0) return;
  try {
    await deps.intents.record(
      intentScope(batch),
      instances,
      now,
      Math.floor(now.getTime() / 1000) + LEDGER_RETENTION_SECONDS,
    );
  } catch (error) {
    deps.logger.warn("Could not store the enforce intent; enforcing anyway", {
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** What the describe said of an instance whose modify was throttled, kept for the next round (`modifyRefused`). */
function refused(progress: InstanceProgress, instance: Instance): InstanceProgress {
  return {
    ...progress,
    modifyRefused: { was: instance.MetadataOptions?.HttpTokens ?? "unknown", state: instance.State?.Name ?? "unknown" },
  };
}

function withoutRefusal(progress: InstanceProgress): InstanceProgress {
  const { modifyRefused: _kept, ...rest } = progress;
  return rest;
}

/**
 * The instance as the describe before its throttled modify saw it: every decision but the modify was made then
 * (exemption, the gate, the origin), and the modify itself changes only HttpTokens, so only these facts are needed.
 */
function asDescribed(instanceId: string, seen: NonNullable<InstanceProgress["modifyRefused"]>): Instance {
  return {
    InstanceId: instanceId,
    State: { Name: seen.state as InstanceStateName },
    MetadataOptions: { HttpTokens: seen.was as HttpTokensState },
  };
}

/** The guard set required on an instance the describe already showed required, because the event recorded optional. */
function reasserted(progress: InstanceProgress, instance: Instance): boolean {
  return instance.MetadataOptions?.HttpTokens === "required" && progress.recordedHttpTokens === "optional";
}

function afterModify(progress: InstanceProgress, instance: Instance, batch: Batch, now: Date): InstanceProgress {
  const modified: InstanceProgress = {
    ...withoutRefusal(progress),
    enforcement: reasserted(progress, instance)
      ? { kind: "set-required", was: "optional", evidence: "reasserted" }
      : { kind: "set-required", was: instance.MetadataOptions?.HttpTokens ?? "unknown", evidence: "answered" },
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
      progress.modifyOutcomeUnknown
        ? `EC2 kept refusing ${api} (throttled or 5xx) for ${batch.settings.applyTimeoutSeconds} s; one refusal was a 5xx, so HttpTokens may or may not have been changed: check the instance.`
        : `EC2 kept refusing ${api} (throttled or 5xx) for ${batch.settings.applyTimeoutSeconds} s; HttpTokens was not changed.`,
    );
  }
  return progress;
}
