import * as z from "zod";
import { enforcementSchema } from "./enforcement.js";

/**
 * The data that flows between the steps of the state machine. Each step validates its input against these schemas
 * (Powertools-style "validate at the boundary"), so a malformed hand-off names the field instead of failing deep in
 * a core function.
 */

/**
 * `held`: IMDSv1 was in use on an existing instance, so the guard did not enforce (policy onV1Usage=hold); people
 * decide. Every other verdict is about what the probe proved or why it could not run.
 */
export const VERDICTS = ["pass", "fail", "held", "unverified", "exempt", "skipped", "error"] as const;
export const verdictSchema = z.enum(VERDICTS);
export type Verdict = z.infer<typeof verdictSchema>;

/**
 * Worst first: the verdict of an event is the worst verdict of its instances. How the headline ranks its instances' verdicts, for a security reader: a proven exposure (`fail`: IMDSv1
 * still answers) comes first, above an `error` (the guard could not finish, nothing proven either way).
 */
export const VERDICT_SEVERITY: Record<Verdict, number> = {
  fail: 6,
  error: 5,
  held: 4,
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
  /** An ISO date in this tag ends the exemption: past it, the instance is enforced and the report says so. */
  exemptUntilTagKey: z.string().min(1).max(128),
  /** What to do with an existing instance that used IMDSv1 within the look-back: enforce anyway, or hold. */
  onV1Usage: z.enum(["enforce", "hold"]),
  v1UsageLookbackHours: z
    .number()
    .int()
    .positive()
    .max(24 * 14),
  /** How long to watch MetadataNoTokenRejected after enforcing; 0 switches the watch off. */
  watchRejectedSeconds: z.number().int().min(0).max(86_400),
  /** Import one Security Hub finding per instance at each verdict (issue 21); unset is off. */
  securityHub: z.boolean().optional(),
});
export type FlowSettings = z.infer<typeof flowSettingsSchema>;

/**
 * Why the flow runs for an instance: a launch has no IMDSv1 history to protect; the others may. `start` is a stopped
 * instance started again (StartInstances), `state-change` EC2's trail-free `pending` notification (a launch or a
 * start: the event does not say which, so the safety gate applies), `account-default` a change of the region's
 * IMDS defaults (no instance).
 */
export const triggerSchema = z.enum(["launch", "regression", "sweep", "start", "state-change", "account-default"]);
export type Trigger = z.infer<typeof triggerSchema>;

/**
 * The platform that owns an instance's launch template, read from the tags it puts on every instance: its own
 * template must be fixed where the platform keeps it, or the platform undoes the fix at its next update. Values are
 * tag values, so anyone who can tag an instance chooses them: they are validated before they reach a command.
 */
export const platformOwnerSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("eks-nodegroup"), cluster: z.string(), nodegroup: z.string() }),
  z.object({ kind: z.literal("karpenter"), nodePool: z.string().optional(), nodeClass: z.string().optional() }),
  z.object({ kind: z.literal("elastic-beanstalk"), environment: z.string() }),
  z.object({ kind: z.literal("ec2-fleet"), fleetId: z.string() }),
  z.object({ kind: z.literal("spot-fleet"), requestId: z.string() }),
]);
export type PlatformOwner = z.infer<typeof platformOwnerSchema>;

/** Where a non-compliant instance came from, so the source can be fixed and the next launch needs no remediation. */
export const originSchema = z.object({
  launchTemplateId: z.string().optional(),
  launchTemplateVersion: z.string().optional(),
  autoScalingGroup: z.string().optional(),
  imageId: z.string().optional(),
  /** The AMI's ImdsSupport: "v2.0" makes every launch from it IMDSv2-only; "unset" when it has none. */
  imageImdsSupport: z.string().optional(),
  /** The instance's hop limit, which a launch template fix must keep (containers need 2 with IMDSv2). */
  hopLimit: z.number().int().optional(),
  /** EKS, Karpenter, Elastic Beanstalk, EC2 Fleet or Spot Fleet, when its tags say one launched the instance. */
  owner: platformOwnerSchema.optional(),
});
export type Origin = z.infer<typeof originSchema>;

/** IMDSv1 use seen by CloudWatch (AWS/EC2 MetadataNoToken, Sum) before enforcing. */
export const v1UsageSchema = z.object({ calls: z.number().min(0), hours: z.number().positive() });
export type V1Usage = z.infer<typeof v1UsageSchema>;

/** Who did what, when: kept from the triggering CloudTrail record for the report. */
export const eventRefSchema = z.object({
  eventId: z.string(),
  eventName: z.string(),
  eventTime: z.string(),
  actor: z.string(),
  account: z.string(),
  /** Organization mode: the account's name in the organization, for the report's subject. */
  accountName: z.string().optional(),
  region: z.string(),
  source: z.enum(["cloudtrail", "sweep", "state-change"]),
  /** The launch template a RunInstances call named, as the request gave it. */
  launchTemplate: z
    .object({ id: z.string().optional(), name: z.string().optional(), version: z.string().optional() })
    .optional(),
});
export type EventRef = z.infer<typeof eventRefSchema>;

export const platformSchema = z.enum(["linux", "windows"]);
export type Platform = z.infer<typeof platformSchema>;

const probeStatusSchema = z.number().int().nullable();

/** What one metadata endpoint answered: token-less GETs of the listing and the credentials path, the token PUT, a GET with the token. */
export const endpointReadingSchema = z.object({
  v1: probeStatusSchema,
  v1Credentials: probeStatusSchema,
  token: probeStatusSchema,
  v2: probeStatusSchema,
});
export type EndpointReading = z.infer<typeof endpointReadingSchema>;

/**
 * One line of JSON printed by either probe script. `null` means nothing answered that request. `v1`, `token` and `v2`
 * are the IPv4 endpoint's, as they always were; `v1Credentials` is its second token-less path, `v6` the IPv6
 * endpoint, `answered` which endpoints answered at all. The later fields are optional only so that a reading from an
 * older probe still parses: the verdict treats their absence as not proven.
 */
export const probeReadingSchema = z.object({
  v1: probeStatusSchema,
  v1Credentials: probeStatusSchema.optional(),
  token: probeStatusSchema,
  v2: probeStatusSchema,
  client: z.string().max(64),
  v6: endpointReadingSchema.optional(),
  answered: z
    .array(z.enum(["ipv4", "ipv6"]))
    .max(2)
    .optional(),
});
export type ProbeReading = z.infer<typeof probeReadingSchema>;

/** The single verdict an instance ends with. */
export const instanceResultSchema = z.object({
  instanceId: z.string(),
  /** Where the instance is: the event envelope's account and region (set when the report is built). */
  account: z.string().optional(),
  region: z.string().optional(),
  verdict: verdictSchema,
  reason: z.string(),
  warnings: z.array(z.string()).default([]),
  platform: platformSchema.optional(),
  reading: probeReadingSchema.optional(),
  origin: originSchema.optional(),
  v1Usage: v1UsageSchema.optional(),
  /** What Enforce did, as data: the watch after enforcing and the root cause decide from it. */
  enforcement: enforcementSchema.optional(),
  /** The sentence for people, derived from `enforcement` (describeEnforcement), e.g. "set HttpTokens=required (was optional)". */
  action: z.string().optional(),
  enforcedAt: z.string().optional(),
  /** Seconds from the flow's start until MetadataOptions.State=applied was observed. */
  secondsToApplied: z.number().optional(),
  secondsToVerdict: z.number().optional(),
  /** SHA-256 of the probe document that produced `reading`, when SendProbe knows it (kept in the evidence). */
  probeDocumentHash: z.string().optional(),
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

/** The batch steps of a round, in the order a round runs them (routeAfter, shared/domain/batch.ts). */
export const ROUND_STEP_NAMES = ["enforce", "check-applied", "check-managed", "send-probe", "check-probe"] as const;

export const instanceProgressSchema = z.object({
  instanceId: z.string(),
  stage: stageSchema,
  /** What Enforce did, as data; the result's `action` sentence is derived from it. */
  enforcement: enforcementSchema.optional(),
  /**
   * HttpTokens as the triggering event recorded it before the guard acted: RunInstances' responseElements carry it
   * per instance, a ModifyInstanceMetadataOptions call names it, a sweep selected the instance because it was
   * optional. With the retry count, it tells a change the guard made before a crash from one it found.
   */
  recordedHttpTokens: z.string().max(32).optional(),
  notes: z.array(z.string()).default([]),
  /** Times, ISO 8601, of the milestones the report shows. */
  firstNotFoundAt: z.string().optional(),
  enforcedAt: z.string().optional(),
  appliedAt: z.string().optional(),
  stageDeadline: z.string().optional(),
  platform: platformSchema.optional(),
  commandId: z.string().optional(),
  /** SSM refused a SendCommand for this instance's chunk as a whole: send to it on its own. */
  sendAlone: z.boolean().optional(),
  /** A modify was answered with a 5xx: it may have taken effect, and if so the guard made the change. */
  modifyOutcomeUnknown: z.boolean().optional(),
  /**
   * The modify was throttled (it did not take effect) after a describe decided it was needed: what that describe
   * said, so the next round sends the modify again without describing again. In a storm, re-describing before every
   * retried modify spends EC2's DescribeInstances bucket, which the CheckApplied reads of every other instance need.
   */
  modifyRefused: z.object({ was: z.string(), state: z.string() }).optional(),
  /**
   * CheckApplied read HttpTokens `optional` after the guard set `required`: since when, and how many reads in a row.
   * EC2's describes are eventually consistent, so one such read proves nothing; a revert is concluded only when the
   * reads go on past the consistency window (shared/steps/check-applied.ts).
   */
  optionalReads: z.object({ since: z.string(), count: z.number().int().positive() }).optional(),
  origin: originSchema.optional(),
  v1Usage: v1UsageSchema.optional(),
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
  /** The event envelope's account and region: where this batch's instances are (organization mode acts there). */
  account: z.string().optional(),
  region: z.string().optional(),
  /** The event's ledger key (ResolveTargets' dedupe key), under which FinalizeBatch stores the results. */
  ledgerKey: z.string().optional(),
  /** The batch's position in the event's work list: where FinalizeBatch stores its results. */
  batchIndex: z.number().int().min(0),
  trigger: triggerSchema,
  settings: flowSettingsSchema,
  startedAt: z.string(),
  instances: z.array(instanceProgressSchema).min(1).max(50),
  counts: stageCountsSchema.optional(),
  /** How long the Wait state before the next round waits. */
  pollSeconds: z.number().int().min(0).optional(),
  /** Where the batch goes next (routeAfter): the one Choice of each round routes on it and on `waitSeconds`. */
  next: z.enum([...ROUND_STEP_NAMES, "finalize", "suspend"]).optional(),
  /** Seconds to wait before `next`; 0 goes on at once, in the same round. */
  waitSeconds: z.number().int().min(0).optional(),
  /** When this slice's first step ran; null in stored progress, so the next slice starts its own clock. */
  sliceStartedAt: z.string().nullable().optional(),
  /** Set with `next: "suspend"`: where the next slice goes on (the Suspended state keeps it; leaveSlice stores the rest). */
  resume: z
    .object({
      next: z.enum(ROUND_STEP_NAMES),
      waitSeconds: z.number().int().min(0),
      sliceStartedAt: z.null(),
      expiresAt: z.number().int(),
    })
    .optional(),
  /** Consecutive rounds in which AWS throttled this batch; drives the backoff. */
  throttledRounds: z.number().int().min(0).optional(),
  /** Set when storing the results in the ledger failed after retries: FinalizeBatch then returns them inline. */
  storeFailure: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
  /** Set by a Catch: the step that failed after its retries, and why. Finalize turns the unfinished into `error`. */
  failure: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});
export type Batch = z.infer<typeof batchSchema>;

/**
 * What the first task of a slice receives (shared/domain/batch-slices.ts): the batch's place, not its instances,
 * which it reads from the ledger. `work`: a new batch's work list; `slice`: the progress its last slice stored.
 */
export const batchPointerSchema = batchSchema
  .omit({ instances: true, counts: true, resume: true, sliceStartedAt: true })
  .extend({ ledgerKey: z.string(), stored: z.enum(["work", "slice"]) });
export type BatchPointerInput = z.infer<typeof batchPointerSchema>;

/** A batch step's input: the whole batch within a slice, a pointer at its start. */
export const batchInputSchema = z.union([batchSchema, batchPointerSchema]);
export type BatchInput = z.infer<typeof batchInputSchema>;

/** The Catch payload Step Functions hands to the next state. */
export const stepFailureSchema = z.object({ Error: z.string().optional(), Cause: z.string().optional() });
export type StepFailure = z.infer<typeof stepFailureSchema>;

/** What one batch hands back to the Map: only counts, because the results themselves are stored (result-store.ts). */
export const batchSummarySchema = z.object({
  batchIndex: z.number().int().min(0),
  /** Always false here: the batch is done. A suspended slice returns `true` instead (the ASL's Suspended state). */
  suspended: z.literal(false),
  instances: z.number().int().min(0),
  counts: z.record(z.string(), z.number()),
  /**
   * Only when the ledger could not store them: the verdicts themselves, compact enough for the execution's state
   * (passes as ids, the rest with a shortened reason).
   */
  inline: z.object({ passed: z.array(z.string()), others: z.array(instanceResultSchema) }).optional(),
});
export type BatchSummary = z.infer<typeof batchSummarySchema>;
