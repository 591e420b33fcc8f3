import { createHash } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { InstanceClaims } from "../aws/instance-claims.js";
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
import type { ResolvedTargets } from "./resolve-targets.js";

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
  // What the execution starts with: the resolved event, narrowed to the instances this execution claimed.
  let state: AdmittedState = { ...resolved };

  if (resolved.targetCount > 0 && CLAIMED_TRIGGERS.has(resolved.trigger)) {
    try {
      state = await retry(async () =>
        claimInstances(
          claimInstancesInputSchema.parse({ state: resolved, executionId: deps.executionArnOf(executionName) }),
          {
            ec2: await deps.ec2For(target),
            claims: deps.claims,
            logger: deps.logger,
            launchTimes: recordedLaunchTimes(raw),
            attributed: (key) => handOffAttribution(key, deps.attribution),
          },
        ),
      );
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

/** An error as the state machine's Catch would record it: its name and message. */
function failureOf(error: unknown): StepFailure {
  return error instanceof Error
    ? { Error: error.name, Cause: error.message }
    : { Error: "Error", Cause: String(error) };
}
