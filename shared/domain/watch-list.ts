import * as z from "zod";
import { guardSetRequired } from "./enforcement.js";
import type { InstanceResult } from "./model.js";

/**
 * The most instances one watch schedule carries. Its input is `{event, watch}`, and EventBridge Scheduler takes at most
 * 256 KB of target input ("Quotas for EventBridge Scheduler"): 5,000 instance ids are about 110 KB. A larger
 * launch is watched by several schedules (splitWatchList).
 */
export const WATCH_LIST_MAX_INSTANCES = 5000;

/** The instances the guard switched to IMDSv2 in one execution: what the watch after enforcing looks at. */
export const watchListSchema = z.object({
  instanceIds: z.array(z.string()).max(WATCH_LIST_MAX_INSTANCES),
  /** When the first of them was enforced: the start of the metric window. */
  since: z.string(),
  count: z.number().int().min(0),
});
export type WatchList = z.infer<typeof watchListSchema>;

/** Which results the watch covers: instances this execution switched from optional to required and proved. */
export function watchListOf(results: readonly InstanceResult[]): WatchList {
  const enforced = results.filter((r) => guardSetRequired(r.enforcement) && r.enforcedAt);
  const since = enforced.map((r) => r.enforcedAt as string).sort()[0] ?? new Date(0).toISOString();
  return { instanceIds: enforced.map((r) => r.instanceId), since, count: enforced.length };
}

/** The watch list in lists of at most `max` instances, one per schedule; each keeps the window's start. */
export function splitWatchList(watch: WatchList, max = WATCH_LIST_MAX_INSTANCES): WatchList[] {
  const lists: WatchList[] = [];
  for (let i = 0; i < watch.instanceIds.length; i += max) {
    const instanceIds = watch.instanceIds.slice(i, i + max);
    lists.push({ instanceIds, since: watch.since, count: instanceIds.length });
  }
  return lists;
}
