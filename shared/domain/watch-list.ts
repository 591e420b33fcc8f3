import * as z from "zod";
import { guardSetRequired } from "./enforcement.js";
import type { InstanceResult } from "./model.js";

/** The instances the guard switched to IMDSv2 in one execution: what the watch after enforcing looks at. */
export const watchListSchema = z.object({
  instanceIds: z.array(z.string()).max(5000),
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
