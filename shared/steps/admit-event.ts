import { createHash } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { InstanceClaims } from "../aws/instance-claims.js";
import { findLaunch, type LaunchedInstance, launchOf, launchSiblings } from "../aws/launch-lookup.js";
import type { AccountPosture } from "../domain/account-posture.js";
import { type BatchLedger, inlinePointersTo, pointersTo } from "../domain/batch-slices.js";
import type { SpokeTarget } from "../domain/confused-deputy.js";
import { recordedLaunchTimes } from "../domain/event.js";
import type { InstanceProgress, StepFailure } from "../domain/model.js";
import { type RetryPolicy, retryRetryable } from "../runtime/retry.js";
import {
  type AttributionDeps,
  claimInstances,
  claimInstancesInputSchema,
  handOffAttribution,
} from "./claim-instances.js";
import { type ResolvedTargets, withFoundTargets } from "./resolve-targets.js";

/**
 * The intake: what EventBridge invokes for every event, before any state machine runs. It does in one Lambda call
 * what the first states of the execution used to (resolve, deduplicate, claim each instance, read the account's
 * defaults), so that a duplicate, an ignored call or the second signal of a launch costs one invocation and no
 * Standard state transition, and the execution it starts begins with the work.
 *
 * Deduplication is the execution's name: one per ledger key, and Step Functions refuses a second Standard execution
 * with the same name for 90 days, so a redelivered event, or a retry of this intake after a crash, starts nothing
 * new. The instance claims name that same execution, so a retry finds its own claims and keeps them.
 */
export interface AdmitEventDeps {
  resolve: (raw: unknown) => Promise<ResolvedTargets>;
  claims: InstanceClaims;
  ec2For: (target: SpokeTarget | undefined) => Promise<EC2Client>;
  posture: (target: SpokeTarget | undefined, ec2: EC2Client) => Promise<AccountPosture>;
  /** StartExecution; "already-started" when an execution of that name exists (ExecutionAlreadyExists). */
  start: (name: string, input: unknown) => Promise<"started" | "already-started">;
  executionArnOf: (name: string) => string;
  attribution: AttributionDeps;
  /** Where the work list goes: the execution starts with pointers to it (shared/domain/batch-slices.ts). */
  ledger: BatchLedger;
  /** Organization mode: AWS calls go to the event's account through its spoke role. */
  organization: boolean;
  logger: Logger;
  retry: Omit<RetryPolicy, "attempts">;
  /** Instances per batch, for the instances the intake finds itself (a launch's siblings, a truncated record's). */
  batchSize: number;
  /** How a notification that lost its launch's election waits for the winner to finish claiming (real time). */
  sleep?: (ms: number) => Promise<void>;
}

export type AdmitOutcome =
  | { outcome: "ignored"; eventId: string; reason: string }
  | { outcome: "claimed-elsewhere"; eventId: string; reason: string }
  | { outcome: "started" | "already-started"; eventId: string; executionName: string; targets: number };

type AdmittedState = Record<string, unknown> & {
  batches: InstanceProgress[][];
  dedupe: { key: string; expiresAt: string };
  targetCount: number;
  accountPosture?: unknown;
  accountDefaultChange?: unknown;
  ignored?: unknown;
};

/** Triggers whose instances two signals may report: EC2's state-change notification and the CloudTrail record. */
const CLAIMED_TRIGGERS = new Set(["launch", "start", "state-change"]);

/** What the intake tries before it gives up on a call and lets Lambda's asynchronous retries take over. */
const ATTEMPTS = 5;

/**
 * How long a notification whose launch another notification is gathering waits for that one to finish claiming,
 * before it claims its own instance anyway (a second report beats a lost verdict): a launch's claims take well
 * under a second, so 8 checks a second apart are generous.
 */
const GROUP_CHECKS = 8;
const GROUP_CHECK_MS = 1_000;

/**
 * A Standard execution name (at most 80 of [A-Za-z0-9-_]) that is the same for every delivery of one ledger key.
 */
export function executionNameFor(ledgerKey: string): string {
  return `e-${createHash("sha256").update(ledgerKey).digest("hex").slice(0, 48)}`;
}

export async function admitEvent(raw: unknown, deps: AdmitEventDeps): Promise<AdmitOutcome> {
  const retry = <T>(call: () => Promise<T>) => retryRetryable(call, { ...deps.retry, attempts: ATTEMPTS });
  let resolved: ResolvedTargets;
  try {
    resolved = await retry(() => deps.resolve(raw));
  } catch (error) {
    // Even an event the guard could not read ends in a notification: the execution reports the failure.
    const rawText = JSON.stringify(raw ?? null);
    const name = `u-${createHash("sha256").update(rawText).digest("hex").slice(0, 48)}`;
    const started = await retry(() =>
      deps.start(name, { admitted: true, resolveFailure: failureOf(error), rawEvent: raw ?? null }),
    );
    deps.logger.error("Could not resolve the event", { error: failureOf(error), execution: name });
    return { outcome: started, eventId: "unknown", executionName: name, targets: 0 };
  }
  const { eventId } = resolved.event;
  if (!resolved.notify) {
    deps.logger.info("Nothing to do", { eventName: resolved.event.eventName, reason: resolved.ignored });
    return { outcome: "ignored", eventId, reason: resolved.ignored ?? "nothing to do" };
  }
  const executionName = executionNameFor(resolved.dedupe.key);
  const target: SpokeTarget | undefined = deps.organization
    ? { account: resolved.event.account, region: resolved.event.region, eventId }
    : undefined;
  // Launch times the intake learns itself (a truncated record's lookup, a notification's launch): no second describe.
  const launchTimes = recordedLaunchTimes(raw);
  // Found by its window rather than its token: close, not certain, so it attributes no other execution's report.
  let approximate = false;
  if (resolved.lookup) {
    const lookup = resolved.lookup;
    try {
      const found = await retry(async () => findLaunch(await deps.ec2For(target), lookup));
      for (const i of found.instances) launchTimes.set(i.instanceId, i.launchTime);
      if (found.instances.length > 0) {
        resolved = withFoundTargets(
          resolved,
          found.instances.map((i) => i.instanceId),
          deps.batchSize,
        );
        approximate = found.by === "window";
        deps.logger.info("Found the launch of a record without its instance list", {
          instances: found.instances.length,
          by: found.by,
        });
      }
    } catch (error) {
      // The record then reports what it could not resolve, as before; the state-change path or the sweep covers it.
      deps.logger.warn("Could not look up the record's launch", { error: failureOf(error) });
    }
  }

  // What the execution starts with: the resolved event, narrowed to the instances this execution claimed.
  let state: AdmittedState = { ...resolved };
  if (resolved.targetCount > 0 && CLAIMED_TRIGGERS.has(resolved.trigger)) {
    const executionId = deps.executionArnOf(executionName);
    let group: string | undefined;
    try {
      if (resolved.trigger === "state-change") {
        const notified = resolved;
        const launch = await retry(async () =>
          gatherLaunch(notified, { ...deps, ec2: await deps.ec2For(target), executionId, launchTimes }),
        );
        resolved = launch.resolved;
        group = launch.group;
      }
      const claimable = resolved;
      state = await retry(async () =>
        claimInstances(claimInstancesInputSchema.parse({ state: claimable, executionId }), {
          ec2: await deps.ec2For(target),
          claims: deps.claims,
          logger: deps.logger,
          launchTimes,
          attributes: !approximate,
          attributed: (reportKey) => handOffAttribution(reportKey, deps.attribution),
        }),
      );
      const sealed = group;
      if (sealed) await retry(() => deps.claims.seal(sealed, expiresAtOf(claimable)));
    } catch (error) {
      // A possible duplicate verdict beats a lost one: go on, and the report says the claim was unavailable.
      state = { ...resolved, instanceClaimFailure: failureOf(error) };
    }
    if (typeof state.ignored === "string") {
      deps.logger.info("Claimed by another execution", { reason: state.ignored });
      return { outcome: "claimed-elsewhere", eventId, reason: state.ignored };
    }
  }

  if (state.targetCount > 0 && !state.accountPosture && !state.accountDefaultChange) {
    try {
      const posture = await retry(async () => deps.posture(target, await deps.ec2For(target)));
      state = { ...state, accountPosture: posture };
    } catch (error) {
      // Attribution is advice: the execution reads the posture once more (AssessAccount) and goes on without it.
      deps.logger.warn("Could not read the account's IMDS defaults", { error: failureOf(error) });
    }
  }

  // The instances go to the ledger, the execution gets pointers: its state must not grow with the work (256 KiB).
  // Overwrites, so a retried intake writes the same items; the execution's name makes it start once. A ledger that
  // refuses them leaves the instances in the pointers (degraded, as every execution was before), so the work still runs.
  const work = state.batches;
  const expiresAt = Number(state.dedupe.expiresAt);
  let batches: unknown[];
  try {
    await retry(() =>
      Promise.all(work.map((instances, index) => deps.ledger.putWork(state.dedupe.key, index, instances, expiresAt))),
    );
    batches = pointersTo(work);
  } catch (error) {
    deps.logger.error("Could not store the work list; the execution carries it", { error: failureOf(error) });
    batches = inlinePointersTo(work);
  }
  const outcome = await retry(() => deps.start(executionName, { ...state, batches, admitted: true }));
  deps.logger.info(outcome === "started" ? "Started the execution" : "Already started", {
    execution: executionName,
    targets: state.targetCount,
  });
  return { outcome, eventId, executionName, targets: state.targetCount };
}

function expiresAtOf(resolved: ResolvedTargets): number {
  return Number(resolved.dedupe.expiresAt);
}

/**
 * One report per launch on the state-change path. EC2 sends one notification per instance; the instances of one
 * RunInstances call share a reservation and a LaunchTime ("DescribeInstances": `ReservationId`, `LaunchTime`), and so
 * do the instances of one StartInstances call that were launched together. The first notification of a launch to
 * claim the launch group (`launch#<account>#<region>#<reservation>#<LaunchTime>`) gathers all of its instances into
 * its execution; the others find their instance claimed by it and start nothing. A notification that lost the group
 * waits (bounded) until the winner has claimed, then claims its own instance as usual: the winner normally holds it;
 * if the winner could not see it yet, this notification keeps it and reports it (a second report, never a lost verdict).
 */
async function gatherLaunch(
  resolved: ResolvedTargets,
  deps: AdmitEventDeps & { ec2: EC2Client; executionId: string; launchTimes: Map<string, string> },
): Promise<{ resolved: ResolvedTargets; group?: string }> {
  const id = resolved.batches[0]?.[0]?.instanceId;
  if (!id) return { resolved };
  const launch = await launchOf(deps.ec2, id);
  // Not visible yet: claimInstances keeps it unkeyed, with its note, as before.
  if (!launch?.reservationId) return { resolved };
  deps.launchTimes.set(id, launch.launchTime);
  const { account, region } = resolved.event;
  const group = `launch#${account}#${region}#${launch.reservationId}#${launch.launchTime}`;
  const expiresAt = expiresAtOf(resolved);
  if (!(await deps.claims.claim(group, deps.executionId, expiresAt, resolved.dedupe.key))) {
    const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let i = 0; i < GROUP_CHECKS && !(await deps.claims.sealed(group)); i++) await sleep(GROUP_CHECK_MS);
    return { resolved };
  }
  const siblings: LaunchedInstance[] = await launchSiblings(deps.ec2, launch);
  for (const s of siblings) deps.launchTimes.set(s.instanceId, s.launchTime);
  const ids = [id, ...siblings.map((s) => s.instanceId).filter((s) => s !== id)];
  deps.logger.info("Gathered the launch", { reservation: launch.reservationId, instances: ids.length });
  return { resolved: withFoundTargets(resolved, ids, deps.batchSize), group };
}

/** An error as the state machine's Catch would record it: its name and message. */
function failureOf(error: unknown): StepFailure {
  return error instanceof Error
    ? { Error: error.name, Cause: error.message }
    : { Error: "Error", Cause: String(error) };
}
