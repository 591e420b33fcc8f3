import type { Logger } from "@aws-lambda-powertools/logger";
import type { EC2Client } from "@aws-sdk/client-ec2";
import * as z from "zod";
import { describeInstancesById } from "../aws/ec2-instances.js";
import { type AttributionWaiter, type InstanceClaims, instanceClaimKey } from "../aws/instance-claims.js";
import { type EventRef, eventRefSchema, instanceProgressSchema, triggerSchema } from "../domain/model.js";

/** The part of the execution's state ClaimInstances reads; everything else passes through unchanged. */
export const claimInstancesInputSchema = z.object({
  executionId: z.string(),
  state: z.looseObject({
    event: eventRefSchema,
    trigger: triggerSchema,
    batches: z.array(z.array(instanceProgressSchema)),
    dedupe: z.object({ key: z.string(), expiresAt: z.string() }),
    awaitAttribution: z.object({ deadline: z.string(), seconds: z.number() }).optional(),
  }),
});
export type ClaimInstancesInput = z.infer<typeof claimInstancesInputSchema>;

export interface ClaimInstancesDeps {
  ec2: EC2Client;
  claims: InstanceClaims;
  logger: Logger;
  /**
   * LaunchTime by instance id, where the event itself recorded it (a RunInstances record): those instances are keyed
   * without DescribeInstances, which a storm of launches would otherwise spend EC2's read bucket on.
   */
  launchTimes?: ReadonlyMap<string, string>;
  /** After a CloudTrail record left its attribution on an instance claimed elsewhere: resume a report waiting on it. */
  attributed?: (key: string) => Promise<void>;
}

/** How many claims are written at once: DynamoDB takes them in parallel, a 1,000-instance launch stays in seconds. */
const CLAIM_CONCURRENCY = 25;

/**
 * Claims each instance occurrence for this execution, so that a launch or a start gets exactly one verdict and one
 * report whichever signals arrive, in whatever order. An instance someone else claimed first leaves this execution:
 * a CloudTrail record then leaves its attribution (actor, launch template) for that execution's report. An instance
 * not yet visible to DescribeInstances cannot be keyed; it stays (a duplicate verdict is better than none) with a
 * note. Only the state changes: instances the execution keeps, and the keys the report waits on.
 */
export async function claimInstances(input: ClaimInstancesInput, deps: ClaimInstancesDeps) {
  const { state, executionId } = input;
  const ids = state.batches.flat().map((i) => i.instanceId);
  const unknown = ids.filter((id) => !deps.launchTimes?.has(id));
  const described = unknown.length > 0 ? await describeInstancesById(deps.ec2, unknown) : new Map();
  const expiresAt = Number(state.dedupe.expiresAt);
  const fromCloudTrail = state.event.source === "cloudtrail";
  const claimed: string[] = [];
  const elsewhere = new Set<string>();
  const unkeyed = new Set<string>();
  const work = ids.map((id) => async () => {
    const launchTime = deps.launchTimes?.get(id) ?? described.get(id)?.LaunchTime?.toISOString();
    if (!launchTime) {
      unkeyed.add(id);
      return;
    }
    const key = instanceClaimKey(state.event.account, state.event.region, id, launchTime);
    if (await deps.claims.claim(key, executionId, expiresAt)) {
      claimed.push(key);
      return;
    }
    elsewhere.add(id);
    // The record's actor and launch template, for the report of the execution that holds the claim.
    if (fromCloudTrail) {
      await deps.claims.attribute(key, state.event, expiresAt);
      await deps.attributed?.(key);
    }
  });
  for (let i = 0; i < work.length; i += CLAIM_CONCURRENCY) {
    await Promise.all(work.slice(i, i + CLAIM_CONCURRENCY).map((run) => run()));
  }
  const batches = state.batches
    .map((batch) =>
      batch
        .filter((p) => !elsewhere.has(p.instanceId))
        .map((p) =>
          unkeyed.has(p.instanceId)
            ? {
                ...p,
                notes: [
                  ...p.notes,
                  "Not yet visible to DescribeInstances when claimed: another signal for this launch may also report it.",
                ],
              }
            : p,
        ),
    )
    .filter((batch) => batch.length > 0);
  const targetCount = batches.reduce((n, b) => n + b.length, 0);
  deps.logger.info("Claimed instances", { claimed: claimed.length, elsewhere: elsewhere.size, unkeyed: unkeyed.size });
  const { awaitAttribution: _wait, ...rest } = state;
  return {
    ...rest,
    batches,
    targetCount,
    instanceClaims: { claimed, elsewhere: [...elsewhere].sort() },
    // Only the state-change path waits for the record, and only for the instances it kept.
    ...(state.awaitAttribution && claimed.length > 0 ? { awaitAttribution: state.awaitAttribution } : {}),
    ...(targetCount === 0 && elsewhere.size > 0
      ? {
          ignored: fromCloudTrail
            ? "Every instance was already claimed by EC2's state-change notification; this record's actor and launch template were left for that execution's report."
            : "Every instance was already claimed by its CloudTrail record's execution.",
        }
      : {}),
  };
}

/** What the report of a state-change execution learns about the CloudTrail record (Notify's `attribution`). */
export interface AttributionOutcome {
  done: true;
  record?: EventRef;
  timedOut?: boolean;
}

export interface AttributionDeps {
  claims: InstanceClaims;
  now: () => Date;
  /** SendTaskSuccess; false when the wait had already ended. */
  resume: (taskToken: string, outcome: AttributionOutcome) => Promise<boolean>;
}

/**
 * Resumes the waiting report once the record has arrived for every key it waits on, or its deadline has passed.
 * Both sides call it (the waiter after storing its token, the record after storing its attribution), each after its
 * own write, so whichever comes second sees both and resumes the report; a second resume is refused and harmless.
 */
export async function settleWaiter(waiter: AttributionWaiter, deps: AttributionDeps): Promise<boolean> {
  const found = await Promise.all(waiter.keys.map((key) => deps.claims.attribution(key)));
  const record = found.find((r) => r !== undefined);
  if (found.every((r) => r !== undefined) && record) return deps.resume(waiter.taskToken, { done: true, record });
  if (Date.parse(waiter.deadline) <= deps.now().getTime()) {
    return deps.resume(waiter.taskToken, { done: true, timedOut: true, ...(record ? { record } : {}) });
  }
  return false;
}

/**
 * The state-change execution's AwaitAttribution step (`.waitForTaskToken`): leave the task token next to each claim
 * and return. The task stays open, costing nothing, until the record's intake resumes it, or until its timeout;
 * the report then goes out without the actor.
 */
export async function awaitAttribution(waiter: AttributionWaiter, deps: AttributionDeps & { expiresAt: number }) {
  await deps.claims.wait(waiter, deps.expiresAt);
  const settled = await settleWaiter(waiter, deps);
  return { waiting: !settled, keys: waiter.keys.length };
}

/** The record's side of the hand-off: if a report waits on this claim, resume it when it has all it waits for. */
export async function handOffAttribution(key: string, deps: AttributionDeps): Promise<void> {
  const waiter = await deps.claims.waiter(key);
  if (waiter) await settleWaiter(waiter, deps);
}
