import type { Logger } from "@aws-lambda-powertools/logger";
import type { EC2Client } from "@aws-sdk/client-ec2";
import * as z from "zod";
import { describeInstancesById } from "../aws/ec2-instances.js";
import { type AttributionWaiter, type InstanceClaims, instanceClaimKey } from "../aws/instance-claims.js";
import { type EventRef, eventRefSchema, instanceProgressSchema, triggerSchema } from "../domain/model.js";
import { mapLimit } from "../runtime/map-limit.js";

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
  /** False when the record's instances were found by a window, not named: its actor then goes to no other report. */
  attributes?: boolean;
  /** After a CloudTrail record left its attribution for another execution's report: resume it if it waits. */
  attributed?: (reportKey: string) => Promise<void>;
}

/** How many claims are written at once: DynamoDB takes them in parallel, a 1,000-instance launch stays in seconds. */
const CLAIM_CONCURRENCY = 25;

/**
 * Claims each instance occurrence for this execution, so that a launch or a start gets exactly one verdict and one
 * report whichever signals arrive, in whatever order. An instance someone else claimed first leaves this execution:
 * a CloudTrail record then leaves its attribution (actor, launch template) for that execution's report. An instance
 * not yet visible to DescribeInstances cannot be keyed; it stays (a duplicate verdict is better than none) with a
 * note. Only the state changes: the instances the execution keeps, and how many it claimed (a count, never the keys:
 * a state over 256 KiB fails the execution, and a launch may have thousands of instances).
 */
export async function claimInstances(input: ClaimInstancesInput, deps: ClaimInstancesDeps) {
  const { state, executionId } = input;
  const ids = state.batches.flat().map((i) => i.instanceId);
  const unknown = ids.filter((id) => !deps.launchTimes?.has(id));
  const described = unknown.length > 0 ? await describeInstancesById(deps.ec2, unknown) : new Map();
  const expiresAt = Number(state.dedupe.expiresAt);
  const fromCloudTrail = state.event.source === "cloudtrail";
  const attributes = fromCloudTrail && deps.attributes !== false;
  let claimed = 0;
  const elsewhere = new Set<string>();
  const unkeyed = new Set<string>();
  // The reports (ledger keys) of the executions that hold the instances this record found claimed.
  const holders = new Set<string>();
  const work = ids.map((id) => async () => {
    const launchTime = deps.launchTimes?.get(id) ?? described.get(id)?.LaunchTime?.toISOString();
    if (!launchTime) {
      unkeyed.add(id);
      return;
    }
    const key = instanceClaimKey(state.event.account, state.event.region, id, launchTime);
    if (await deps.claims.claim(key, executionId, expiresAt, state.dedupe.key)) {
      claimed++;
      return;
    }
    elsewhere.add(id);
    if (attributes) {
      const holder = await deps.claims.holder(key);
      if (holder) holders.add(holder);
    }
  });
  for (let i = 0; i < work.length; i += CLAIM_CONCURRENCY) {
    await Promise.all(work.slice(i, i + CLAIM_CONCURRENCY).map((run) => run()));
  }
  // The record's actor and launch template, once for each report that holds its instances, however many they are.
  await mapLimit([...holders], CLAIM_CONCURRENCY, async (reportKey) => {
    await deps.claims.attribute(reportKey, state.event, expiresAt);
    await deps.attributed?.(reportKey);
  });
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
  deps.logger.info("Claimed instances", { claimed, elsewhere: elsewhere.size, unkeyed: unkeyed.size });
  const { awaitAttribution: _wait, ...rest } = state;
  return {
    ...rest,
    batches,
    targetCount,
    // Counts only: the claims themselves are in the ledger, and the report's attribution is found by its ledger key.
    instanceClaims: { claimed, elsewhere: elsewhere.size },
    // Only the state-change path waits for the record, and only for the instances it kept.
    ...(state.awaitAttribution && claimed > 0 ? { awaitAttribution: state.awaitAttribution } : {}),
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
 * Resumes the waiting report once the record has arrived for it, or its deadline has passed. Both sides call it (the
 * waiter after storing its token, the record after storing its attribution), each after its own write, so whichever
 * comes second sees both and resumes the report; a second resume is refused and harmless.
 */
export async function settleWaiter(
  reportKey: string,
  waiter: AttributionWaiter,
  deps: AttributionDeps,
): Promise<boolean> {
  const record = await deps.claims.attribution(reportKey);
  if (record) return deps.resume(waiter.taskToken, { done: true, record });
  if (Date.parse(waiter.deadline) <= deps.now().getTime()) {
    return deps.resume(waiter.taskToken, { done: true, timedOut: true });
  }
  return false;
}

/**
 * The state-change execution's AwaitAttribution step (`.waitForTaskToken`): leave the task token beside the report's
 * ledger key and return. The task stays open, costing nothing, until the record's intake resumes it, or until its
 * timeout; the report then goes out without the actor.
 */
export async function awaitAttribution(
  reportKey: string,
  waiter: AttributionWaiter,
  deps: AttributionDeps & { expiresAt: number },
) {
  await deps.claims.wait(reportKey, waiter, deps.expiresAt);
  const settled = await settleWaiter(reportKey, waiter, deps);
  return { waiting: !settled };
}

/** The record's side of the hand-off: if this report waits, resume it now that its attribution is stored. */
export async function handOffAttribution(reportKey: string, deps: AttributionDeps): Promise<void> {
  const waiter = await deps.claims.waiter(reportKey);
  if (waiter) await settleWaiter(reportKey, waiter, deps);
}
