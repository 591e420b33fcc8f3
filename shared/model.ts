import { z } from "zod";

/**
 * The data that flows between the steps of the state machine. Each step validates its input against these schemas
 * (Powertools-style "validate at the boundary"), so a malformed hand-off names the field instead of failing deep in
 * a core function.
 */

export const VERDICTS = ["pass", "fail", "unverified", "exempt", "skipped", "error"] as const;
export const verdictSchema = z.enum(VERDICTS);
export type Verdict = z.infer<typeof verdictSchema>;

/** Worst first: the verdict of an event is the worst verdict of its instances. */
export const VERDICT_SEVERITY: Record<Verdict, number> = {
  error: 5,
  fail: 4,
  unverified: 3,
  exempt: 2,
  skipped: 1,
  pass: 0,
};

export const INSTANCE_ID_PATTERN = /^i-[0-9a-f]{8,17}$/;
export const instanceIdSchema = z.string().regex(INSTANCE_ID_PATTERN, "must match ^i-[0-9a-f]{8,17}$");

/** Settings snapshot taken once per execution by ResolveTargets, so one event is judged by one configuration. */
export const flowSettingsSchema = z.object({
  mode: z.enum(["enforce", "audit"]),
  exemptTagKey: z.string().min(1).max(128),
  applyTimeoutSeconds: z.number().int().positive(),
  managedTimeoutSeconds: z.number().int().positive(),
  probeTimeoutSeconds: z.number().int().positive(),
});
export type FlowSettings = z.infer<typeof flowSettingsSchema>;

/** Who did what, when: kept from the triggering CloudTrail record for the report. */
export const eventRefSchema = z.object({
  eventId: z.string(),
  eventName: z.string(),
  eventTime: z.string(),
  actor: z.string(),
  account: z.string(),
  region: z.string(),
  source: z.enum(["cloudtrail", "sweep"]),
});
export type EventRef = z.infer<typeof eventRefSchema>;

export const platformSchema = z.enum(["linux", "windows"]);
export type Platform = z.infer<typeof platformSchema>;

/** What Enforce found and did. `action` is what the Choice state after it routes on. */
export const enforceOutcomeSchema = z.object({
  action: z.enum(["modified", "already-required", "endpoint-disabled", "would-modify", "exempt", "skipped"]),
  detail: z.string(),
  httpTokensBefore: z.string().optional(),
  instanceState: z.string().optional(),
  /** ISO time by which the change must show as applied before the instance is reported unverified. */
  applyDeadline: z.string().optional(),
  enforcedAt: z.string().optional(),
});
export type EnforceOutcome = z.infer<typeof enforceOutcomeSchema>;

export const appliedCheckSchema = z.object({
  status: z.enum(["applied", "pending", "timed-out", "gone"]),
  detail: z.string(),
  appliedAt: z.string().optional(),
});
export type AppliedCheck = z.infer<typeof appliedCheckSchema>;

export const managedCheckSchema = z.object({
  status: z.enum(["online", "waiting", "timed-out", "stopped", "gone"]),
  detail: z.string(),
  platform: platformSchema.optional(),
  deadline: z.string(),
});
export type ManagedCheck = z.infer<typeof managedCheckSchema>;

/** One line of JSON printed by either probe script. `null` means nothing answered that request. */
export const probeReadingSchema = z.object({
  v1: z.number().int().nullable(),
  token: z.number().int().nullable(),
  v2: z.number().int().nullable(),
  client: z.string(),
});
export type ProbeReading = z.infer<typeof probeReadingSchema>;

export const probeCheckSchema = z.object({
  status: z.enum(["sent", "running", "done", "failed", "timed-out"]),
  commandId: z.string(),
  deadline: z.string(),
  detail: z.string(),
  reading: probeReadingSchema.optional(),
});
export type ProbeCheck = z.infer<typeof probeCheckSchema>;

/** The per-instance record that travels through the Map iteration; each step adds its own field. */
export const instanceProgressSchema = z.object({
  instanceId: z.string(),
  eventId: z.string(),
  settings: flowSettingsSchema,
  startedAt: z.string(),
  enforce: enforceOutcomeSchema.optional(),
  applied: appliedCheckSchema.optional(),
  managed: managedCheckSchema.optional(),
  probe: probeCheckSchema.optional(),
});
export type InstanceProgress = z.infer<typeof instanceProgressSchema>;

/** The single verdict an instance ends with. */
export const instanceResultSchema = z.object({
  instanceId: z.string(),
  verdict: verdictSchema,
  reason: z.string(),
  warnings: z.array(z.string()).default([]),
  platform: platformSchema.optional(),
  reading: probeReadingSchema.optional(),
  /** Seconds from the flow's start to MetadataOptions.State=applied, when it was observed. */
  secondsToApplied: z.number().optional(),
  secondsToVerdict: z.number().optional(),
});
export type InstanceResult = z.infer<typeof instanceResultSchema>;
