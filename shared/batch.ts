import type { Batch, InstanceProgress, InstanceResult, ProbeReading, StageCounts, Verdict } from "./model.js";

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
export const POLL_SECONDS = { enforce: 5, awaitApplied: 5, awaitManaged: 15, sendProbe: 5, awaitProbe: 3 } as const;

function pollSecondsFor(counts: StageCounts): number {
  const pending = (Object.keys(POLL_SECONDS) as (keyof typeof POLL_SECONDS)[]).filter((k) => counts[k] > 0);
  return pending.length === 0 ? 0 : Math.min(...pending.map((k) => POLL_SECONDS[k]));
}

/** The batch with its instances replaced and its counts recomputed: every step returns through here. */
export function withInstances(batch: Batch, instances: InstanceProgress[]): Batch {
  const counts = countStages(instances);
  return { ...batch, instances, counts, pollSeconds: pollSecondsFor(counts) };
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
