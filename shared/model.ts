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

/** One line of JSON printed by either probe script. `null` means nothing answered that request. */
export const probeReadingSchema = z.object({
  v1: z.number().int().nullable(),
  token: z.number().int().nullable(),
  v2: z.number().int().nullable(),
  client: z.string().max(64),
});
export type ProbeReading = z.infer<typeof probeReadingSchema>;

/** The single verdict an instance ends with. */
export const instanceResultSchema = z.object({
  instanceId: z.string(),
  verdict: verdictSchema,
  reason: z.string(),
  warnings: z.array(z.string()).default([]),
  platform: platformSchema.optional(),
  reading: probeReadingSchema.optional(),
  /** Seconds from the flow's start until MetadataOptions.State=applied was observed. */
  secondsToApplied: z.number().optional(),
  secondsToVerdict: z.number().optional(),
});
export type InstanceResult = z.infer<typeof instanceResultSchema>;

/**
 * Where an instance is in the flow. Each step acts only on the instances in its stage and passes the others through,
 * so a batch of up to 50 instances shares one DescribeInstances, one DescribeInstanceInformation and one SendCommand
 * per round instead of one per instance (EC2 and SSM throttle per account, and SendCommand takes 50 targets).
 */
export const STAGES = ["enforce", "await-applied", "await-managed", "send-probe", "await-probe", "done"] as const;
export const stageSchema = z.enum(STAGES);
export type Stage = z.infer<typeof stageSchema>;

export const instanceProgressSchema = z.object({
  instanceId: z.string(),
  stage: stageSchema,
  /** What Enforce did: shown in the report ("set HttpTokens=required", "already required", "audit: would set"...). */
  action: z.string().optional(),
  notes: z.array(z.string()).default([]),
  /** Times, ISO 8601, of the milestones the report shows. */
  firstNotFoundAt: z.string().optional(),
  enforcedAt: z.string().optional(),
  appliedAt: z.string().optional(),
  stageDeadline: z.string().optional(),
  platform: platformSchema.optional(),
  commandId: z.string().optional(),
  result: instanceResultSchema.optional(),
});
export type InstanceProgress = z.infer<typeof instanceProgressSchema>;

export const stageCountsSchema = z.object({
  enforce: z.number().int(),
  awaitApplied: z.number().int(),
  awaitManaged: z.number().int(),
  sendProbe: z.number().int(),
  awaitProbe: z.number().int(),
  done: z.number().int(),
});
export type StageCounts = z.infer<typeof stageCountsSchema>;

/** One Map item: a batch of instances from one event, and what the Choice states route on (`counts`). */
export const batchSchema = z.object({
  eventId: z.string(),
  settings: flowSettingsSchema,
  startedAt: z.string(),
  instances: z.array(instanceProgressSchema).min(1).max(50),
  counts: stageCountsSchema.optional(),
  /** How long the Wait state before the next round waits. */
  pollSeconds: z.number().int().min(0).optional(),
  /** Consecutive rounds in which AWS throttled this batch; drives the backoff. */
  throttledRounds: z.number().int().min(0).optional(),
  /** Set by a Catch: the step that failed after its retries, and why. Finalize turns the unfinished into `error`. */
  failure: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});
export type Batch = z.infer<typeof batchSchema>;

/** The Catch payload Step Functions hands to the next state. */
export const stepFailureSchema = z.object({ Error: z.string().optional(), Cause: z.string().optional() });
export type StepFailure = z.infer<typeof stepFailureSchema>;
