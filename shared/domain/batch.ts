import type { SpokeTarget } from "./confused-deputy.js";
import { describeEnforcement } from "./enforcement.js";
import { RetryableServiceError, RetryableThrottlingError } from "./errors.js";
import {
  type Batch,
  type InstanceProgress,
  type InstanceResult,
  type ProbeReading,
  ROUND_STEP_NAMES,
  type Stage,
  type StageCounts,
  type Verdict,
} from "./model.js";

/** What the Choice states route on: how many instances of the batch wait in each stage. */
export function countStages(instances: readonly InstanceProgress[]): StageCounts {
  const counts: StageCounts = { enforce: 0, awaitApplied: 0, awaitManaged: 0, sendProbe: 0, awaitProbe: 0, done: 0 };
  for (const i of instances) {
    switch (i.stage) {
      case "enforce":
        counts.enforce++;
        break;
      case "await-applied":
        counts.awaitApplied++;
        break;
      case "await-managed":
        counts.awaitManaged++;
        break;
      case "send-probe":
        counts.sendProbe++;
        break;
      case "await-probe":
        counts.awaitProbe++;
        break;
      case "done":
        counts.done++;
        break;
    }
  }
  return counts;
}

/**
 * Seconds until the next round, by the most urgent pending stage: a probe result or an applied change is seconds
 * away, an SSM registration a minute or more. Fewer rounds are fewer state transitions, which is what Step
 * Functions bills.
 */
export const POLL_SECONDS = { enforce: 5, awaitApplied: 10, awaitManaged: 15, sendProbe: 5, awaitProbe: 3 } as const;
/**
 * Longest pause after repeated refusals (throttling or 5xx). `drain`: reads and sends back off far, so a storm of
 * executions drains AWS's shared buckets instead of fighting over them. `modify`: a throttled
 * ModifyInstanceMetadataOptions backs off little, because every second its bucket's refill goes unused makes the
 * whole launch slower.
 */
export const MAX_BACKOFF_SECONDS = { drain: 40, modify: 10 } as const;
export type Throttled = false | keyof typeof MAX_BACKOFF_SECONDS;

function pollSecondsFor(counts: StageCounts): number {
  const pending = (Object.keys(POLL_SECONDS) as (keyof typeof POLL_SECONDS)[]).filter((k) => counts[k] > 0);
  return pending.length === 0 ? 0 : Math.min(...pending.map((k) => POLL_SECONDS[k]));
}

/**
 * Exponential backoff with jitter for a batch that AWS throttled this round. The jitter is derived from the event
 * and the round, not from a random number, so a thousand executions spread out the same way in every run.
 */
function backoffSeconds(base: number, throttledRounds: number, eventId: string, cap: number): number {
  const ceiling = Math.min(cap, base * 2 ** throttledRounds);
  let hash = throttledRounds;
  for (const c of eventId) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return Math.max(base, Math.round(ceiling / 2 + ((hash % 1000) / 1000) * (ceiling / 2)));
}

/**
 * The batch with its instances replaced, its counts recomputed and the pause before the next round chosen: every
 * step returns through here. `throttled` says AWS refused some of this round's calls; the pause then grows.
 */
export function withInstances(batch: Batch, instances: InstanceProgress[], throttled: Throttled = false): Batch {
  const counts = countStages(instances);
  const throttledRounds = throttled ? (batch.throttledRounds ?? 0) + 1 : 0;
  const base = pollSecondsFor(counts);
  const pollSeconds =
    throttled && base > 0 ? backoffSeconds(base, throttledRounds, batch.eventId, MAX_BACKOFF_SECONDS[throttled]) : base;
  return { ...batch, instances, counts, pollSeconds, throttledRounds };
}

export type ReadOutcome<T> = { read: T } | { drained: Batch };

/**
 * Runs a round's AWS reads. Throttling or a 5xx is not an error but a drain round: only the instances of `stage`
 * whose deadline passed move on (through `expire`), and the pause before the next round grows.
 */
export async function readOrDrain<T>(
  batch: Batch,
  stage: Stage,
  expire: (progress: InstanceProgress) => InstanceProgress,
  read: () => Promise<T>,
): Promise<ReadOutcome<T>> {
  try {
    return { read: await read() };
  } catch (error) {
    if (!(error instanceof RetryableThrottlingError || error instanceof RetryableServiceError)) throw error;
    const expired = batch.instances.map((p) => (p.stage === stage ? expire(p) : p));
    return { drained: withInstances(batch, expired, "drain") };
  }
}

/** Ends an instance with its one verdict. Timings are measured from the flow's start. */
export function conclude(
  instance: InstanceProgress,
  batch: Pick<Batch, "startedAt">,
  now: Date,
  verdict: Verdict,
  reason: string,
  extra: { warnings?: string[]; reading?: ProbeReading } = {},
): InstanceProgress & { result: InstanceResult } {
  const started = Date.parse(batch.startedAt);
  const result: InstanceResult = {
    instanceId: instance.instanceId,
    verdict,
    reason,
    warnings: [...instance.notes, ...(extra.warnings ?? [])],
    ...(instance.platform ? { platform: instance.platform } : {}),
    ...(instance.origin ? { origin: instance.origin } : {}),
    ...(instance.v1Usage ? { v1Usage: instance.v1Usage } : {}),
    ...(instance.enforcement
      ? { enforcement: instance.enforcement, action: describeEnforcement(instance.enforcement) }
      : {}),
    ...(instance.enforcedAt ? { enforcedAt: instance.enforcedAt } : {}),
    ...(extra.reading ? { reading: extra.reading } : {}),
    ...(instance.appliedAt ? { secondsToApplied: secondsBetween(started, Date.parse(instance.appliedAt)) } : {}),
    secondsToVerdict: secondsBetween(started, now.getTime()),
  };
  return { ...instance, stage: "done", result };
}

/** A deadline `seconds` after `now`, as the ISO string the step data carries. */
export function deadlineAfter(now: Date, seconds: number): string {
  return new Date(now.getTime() + seconds * 1000).toISOString();
}

export function isPast(deadline: string | undefined, now: Date): boolean {
  return deadline !== undefined && now.getTime() >= Date.parse(deadline);
}

function secondsBetween(fromMs: number, toMs: number): number {
  return Math.max(0, Math.round((toMs - fromMs) / 100) / 10);
}

/** Where the batch's instances are, for organization mode's clients; undefined if the batch does not say. */
export function targetOf(batch: Pick<Batch, "account" | "region" | "eventId">): SpokeTarget | undefined {
  return batch.account && batch.region
    ? { account: batch.account, region: batch.region, eventId: batch.eventId }
    : undefined;
}

/**
 * The spoke role could not be assumed: every unfinished instance ends `error` with the reason (a verdict, not a
 * failed execution), and the batch goes straight to FinalizeBatch.
 */
export function concludeUnreachable(batch: Batch, reason: string, now: Date): Batch {
  return withInstances(
    batch,
    batch.instances.map((p) => (p.stage === "done" ? p : conclude(p, batch, now, "error", reason))),
  );
}

/**
 * The pause before the next round: `pollSeconds`, or less when the batch itself says a change is about to apply.
 * EC2 documents no delay for a modify to apply, but the instances of one batch share it, so the quickest this batch
 * has seen (enforced to observed applied, which is never less than the true delay) times the next read of an
 * instance still pending. Without it, a change that applies just after a read waits a whole poll for the next one,
 * and in a 1,000-instance burst that poll is most of the time between the last modify and the last verdict. An
 * instance already past that time, or a batch backing off after a refusal, keeps the plain poll: this never reads
 * more often than the poll when EC2 is slower than the batch has seen.
 */
export function roundWaitSeconds(batch: Batch, now: Date): number {
  const poll = batch.pollSeconds ?? 0;
  if ((batch.throttledRounds ?? 0) > 0) return poll;
  const delays = batch.instances.flatMap((p) =>
    p.enforcedAt && p.appliedAt ? [Date.parse(p.appliedAt) - Date.parse(p.enforcedAt)] : [],
  );
  if (delays.length === 0) return poll;
  const quickest = Math.min(...delays);
  const dueIn = batch.instances
    .filter((p) => p.stage === "await-applied" && p.enforcedAt)
    .map((p) => (Date.parse(p.enforcedAt as string) + quickest - now.getTime()) / 1000)
    .filter((seconds) => seconds > 0);
  if (dueIn.length === 0) return poll;
  return Math.min(poll, Math.max(MIN_ROUND_WAIT_SECONDS, Math.ceil(Math.min(...dueIn))));
}
/** A Wait of 0 would loop at once: the next read comes at least this long after the last. */
const MIN_ROUND_WAIT_SECONDS = 1;

/** The batch steps of a round, in the order a round runs them. */
export const ROUND_STEPS = ROUND_STEP_NAMES;
export type RoundStep = (typeof ROUND_STEPS)[number];
/**
 * Where the batch goes after a step: another step (now, or after `waitSeconds`), FinalizeBatch, or out of this slice
 * (`suspend`: its progress is stored and the next slice goes on with `resume`).
 */
export type NextStep = RoundStep | "finalize" | "suspend";

/**
 * How long a slice of a batch plans to run. Express stops an execution at 5 minutes; a step that starts before this
 * budget is spent has the rest (100 s) for itself and its retries: one Lambda timeout (30 s) and a retry fit. A slice
 * that still overruns fails its child, and Notify reports the batch's instances as `error`, never silence.
 */
export const SLICE_BUDGET_SECONDS = 200;
/** Stored progress outlives any slice by far, and the ledger's TTL removes it. */
const SUSPENDED_PROGRESS_TTL_SECONDS = 24 * 3600;

/** Which count says a step has work. */
const WORK_OF: Record<RoundStep, keyof StageCounts> = {
  enforce: "enforce",
  "check-applied": "awaitApplied",
  "check-managed": "awaitManaged",
  "send-probe": "sendProbe",
  "check-probe": "awaitProbe",
};

/**
 * Where the batch goes after `step`, as data, so the state machine needs one Choice per round instead of one per
 * stage. Within a round every later step with work runs at once (an instance applied this round is asked about SSM
 * this round too), except that the round that sent a probe ends there: its invocation cannot exist yet. A round
 * ends with a wait of `pollSeconds`, then the first step with work, Enforce first (an instance not yet visible or a
 * throttled modify), as the loop always did; with nothing left, FinalizeBatch. When going on would run past the
 * slice's budget, the batch leaves the slice instead, carrying where it was going in `resume`.
 */
export function routeAfter(step: RoundStep, batch: Batch, now: Date): Batch {
  const counts = batch.counts ?? countStages(batch.instances);
  const hasWork = (s: RoundStep) => counts[WORK_OF[s]] > 0;
  const sliceStartedAt = batch.sliceStartedAt ?? now.toISOString();
  const laterInRound =
    step === "enforce" || step === "send-probe"
      ? []
      : ROUND_STEPS.slice(ROUND_STEPS.indexOf(step) + 1).filter((s) => s !== "enforce");
  const inRound = laterInRound.find(hasWork);
  const nextRound = ROUND_STEPS.find(hasWork);
  const route = inRound
    ? { next: inRound, waitSeconds: 0 }
    : nextRound
      ? { next: nextRound, waitSeconds: roundWaitSeconds(batch, now) }
      : undefined;
  if (!route) return { ...batch, sliceStartedAt, next: "finalize", waitSeconds: 0 };
  const spent = (now.getTime() - Date.parse(sliceStartedAt)) / 1000;
  if (spent + route.waitSeconds <= SLICE_BUDGET_SECONDS) return { ...batch, sliceStartedAt, ...route };
  return {
    ...batch,
    sliceStartedAt,
    next: "suspend",
    waitSeconds: 0,
    // The next slice starts its own clock (sliceStartedAt null) with the first step it runs.
    resume: {
      ...route,
      sliceStartedAt: null,
      expiresAt: Math.floor(now.getTime() / 1000) + SUSPENDED_PROGRESS_TTL_SECONDS,
    },
  };
}
