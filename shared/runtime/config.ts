import * as z from "zod";
import { NonRetryableConfigurationError } from "../domain/errors.js";
import type { FlowSettings } from "../domain/model.js";

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** The flow's settings as environment variables, each with the default a deploy without overrides gets. */
const flowSettingsEnvSchema = z.object({
  GUARD_MODE: z.enum(["enforce", "audit"]).default("enforce"),
  EXEMPT_TAG_KEY: z.string().min(1).max(128).default("imdsv2-guard:exempt"),
  EXEMPT_UNTIL_TAG_KEY: z.string().min(1).max(128).default("imdsv2-guard:exempt-until"),
  ON_V1_USAGE: z.enum(["enforce", "hold"]).default("hold"),
  V1_USAGE_LOOKBACK_HOURS: z.coerce.number().int().positive().max(336).default(24),
  WATCH_REJECTED_SECONDS: z.coerce.number().int().min(0).max(86_400).default(900),
  APPLY_TIMEOUT_SECONDS: positiveInt(300),
  MANAGED_TIMEOUT_SECONDS: positiveInt(600),
  PROBE_TIMEOUT_SECONDS: positiveInt(300),
  SECURITY_HUB: z.enum(["true", "false"]).default("false"),
});

const resolveTargetsEnvSchema = flowSettingsEnvSchema.extend({
  /** Calls made by an ARN starting with this are the guard's own; they must not trigger it again. */
  GUARD_ROLE_ARN_PREFIX: z.string().startsWith("arn:"),
  BATCH_SIZE: z.coerce.number().int().min(1).max(50).default(50),
  ATTRIBUTION_TIMEOUT_SECONDS: z.coerce.number().int().min(0).max(86_400).default(900),
});

/** How long a report started from a state-change notification waits for the CloudTrail record, by default. */
export const DEFAULT_ATTRIBUTION_TIMEOUT_SECONDS = 900;

export interface ResolveTargetsConfig {
  settings: FlowSettings;
  guardRoleArnPrefix: string;
  batchSize: number;
  /** State-change path: how long the report waits for the CloudTrail record (actor, launch template). */
  attributionTimeoutSeconds?: number;
  /** Set in organization mode (the hub): the checks that keep the guard from acting in an account it should not. */
  organization?: OrganizationConfig;
}

const commaList = (item: z.ZodString) =>
  z
    .string()
    .default("")
    .transform((v) =>
      v
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item));

const organizationEnvSchema = z.object({
  /** Empty: single-account mode. Set: this stack is the hub of this organization. */
  ORGANIZATION_ID: z
    .string()
    .regex(/^(o-[a-z0-9]{10,32})?$/, "must be an organization id (o-...) or empty")
    .default(""),
  SPOKE_ROLE_NAME: z
    .string()
    .regex(/^[\w+=,.@-]{1,64}$/)
    .default("imdsv2-guard-spoke"),
  /** Optional allow-lists: when either is set, an account must be listed or sit under a listed OU. */
  ALLOWED_ACCOUNT_IDS: commaList(z.string().regex(/^\d{12}$/, "must be 12-digit account ids")),
  ALLOWED_OU_IDS: commaList(z.string().regex(/^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$/, "must be OU ids (ou-...)")),
  /**
   * The organization's accounts as `id=name,...`, for a hub that may not call Organizations (no delegated
   * administration or delegation policy). Empty: read them with ListAccounts.
   */
  ORGANIZATION_ACCOUNTS: commaList(z.string().regex(/^\d{12}(=[^,=]{1,50})?$/, "must be id or id=name")),
});

/** Organization mode's settings: the hub's organization, the spoke role's name, the allow-lists. */
export interface OrganizationConfig {
  id: string;
  spokeRoleName: string;
  allowedAccounts: string[];
  allowedOus: string[];
  /** A configured list of the organization's accounts (id and name), instead of Organizations ListAccounts. */
  accounts?: { id: string; name?: string }[];
}

/** Organization mode's settings, or undefined in single-account mode (ORGANIZATION_ID empty or unset). */
export function loadOrganizationConfig(env: NodeJS.ProcessEnv): OrganizationConfig | undefined {
  const e = parseEnv(organizationEnvSchema, env);
  if (!e.ORGANIZATION_ID) return undefined;
  return {
    id: e.ORGANIZATION_ID,
    spokeRoleName: e.SPOKE_ROLE_NAME,
    allowedAccounts: e.ALLOWED_ACCOUNT_IDS,
    allowedOus: e.ALLOWED_OU_IDS,
    ...(e.ORGANIZATION_ACCOUNTS.length > 0
      ? {
          accounts: e.ORGANIZATION_ACCOUNTS.map((entry) => {
            const [id = "", name] = entry.split("=");
            return { id, ...(name ? { name } : {}) };
          }),
        }
      : {}),
  };
}

/**
 * Reads ResolveTargets' settings from the environment. Throws at cold start, naming the variable, so a bad deploy
 * fails every execution loudly (and trips the ExecutionsFailed alarm) instead of judging instances with defaults.
 */
export function loadResolveTargetsConfig(env: NodeJS.ProcessEnv): ResolveTargetsConfig {
  const e = parseEnv(resolveTargetsEnvSchema, env);
  const organization = loadOrganizationConfig(env);
  return {
    settings: settingsOf(e),
    guardRoleArnPrefix: e.GUARD_ROLE_ARN_PREFIX,
    batchSize: e.BATCH_SIZE,
    attributionTimeoutSeconds: e.ATTRIBUTION_TIMEOUT_SECONDS,
    ...(organization ? { organization } : {}),
  };
}

function settingsOf(e: z.infer<typeof flowSettingsEnvSchema>): FlowSettings {
  return {
    mode: e.GUARD_MODE,
    exemptTagKey: e.EXEMPT_TAG_KEY,
    exemptUntilTagKey: e.EXEMPT_UNTIL_TAG_KEY,
    onV1Usage: e.ON_V1_USAGE,
    v1UsageLookbackHours: e.V1_USAGE_LOOKBACK_HOURS,
    watchRejectedSeconds: e.WATCH_REJECTED_SECONDS,
    applyTimeoutSeconds: e.APPLY_TIMEOUT_SECONDS,
    managedTimeoutSeconds: e.MANAGED_TIMEOUT_SECONDS,
    probeTimeoutSeconds: e.PROBE_TIMEOUT_SECONDS,
    securityHub: e.SECURITY_HUB === "true",
  };
}

/** The settings of a deploy without overrides: the environment schema's own defaults, so there is one list of them. */
export const DEFAULT_FLOW_SETTINGS: FlowSettings = settingsOf(flowSettingsEnvSchema.parse({}));

const ledgerEnvSchema = z.object({ LEDGER_TABLE_NAME: z.string().min(3).max(255) });

/** The event ledger's table name (the instance claims, the steps' records and the stored batch results). */
export function loadLedgerTableName(env: NodeJS.ProcessEnv): string {
  return parseEnv(ledgerEnvSchema, env).LEDGER_TABLE_NAME;
}

// SSM document names: 3 to 128 of [a-zA-Z0-9_.-] ("CreateDocument", AWS Systems Manager API Reference); the prefix
// leaves room for "-windows".
const probeDocumentEnvSchema = z.object({ PROBE_DOCUMENT_PREFIX: z.string().regex(/^[a-zA-Z0-9_.-]{3,120}$/) });

/** The prefix of the guard's probe documents in the accounts it probes (shared/probes/probe-document.ts). */
export function loadProbeDocumentPrefix(env: NodeJS.ProcessEnv): string {
  return parseEnv(probeDocumentEnvSchema, env).PROBE_DOCUMENT_PREFIX;
}

/** The intake's settings: ResolveTargets', the ledger it claims instances in, and the state machine it starts. */
export interface AdmitEventConfig extends ResolveTargetsConfig {
  ledgerTableName: string;
  stateMachineArn: string;
}

const admitEventEnvSchema = z.object({
  STATE_MACHINE_ARN: z
    .string()
    .regex(/^arn:[\w-]+:states:[\w-]+:\d{12}:stateMachine:[\w-]+$/, "must be a state machine ARN"),
});

/** Reads the intake's settings from the environment; throws at cold start, naming the variable that is wrong. */
export function loadAdmitEventConfig(env: NodeJS.ProcessEnv): AdmitEventConfig {
  return {
    ...loadResolveTargetsConfig(env),
    ledgerTableName: loadLedgerTableName(env),
    stateMachineArn: parseEnv(admitEventEnvSchema, env).STATE_MACHINE_ARN,
  };
}

const notifyEnvSchema = z.object({
  TOPIC_ARN: z.string().startsWith("arn:"),
  SLACK_TOPIC_ARN: z.string().startsWith("arn:").optional(),
  SLACK_VERDICTS: z.string().default("fail,error,held,unverified,alert"),
  /**
   * Organization mode: `account=topicArn,...`, each account's reports to its own Slack topic (its own Chatbot
   * channel); other accounts go to SLACK_TOPIC_ARN.
   */
  SLACK_ROUTES: z
    .string()
    .default("")
    .transform((v) =>
      v
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^\d{12}=arn:[^,=\s]+$/, "must be account=topicArn entries"))),
});

export interface NotifyConfig {
  topicArn: string;
  slackTopicArn?: string;
  slackVerdicts: string[];
  /** Slack topic by account id (organization mode); an account not listed uses slackTopicArn. */
  slackTopicByAccount?: Record<string, string>;
  /** Where Notify books the watch after enforcing (a one-off EventBridge Scheduler schedule); unset: not booked. */
  watch?: WatchScheduleConfig;
}

/** The one-off schedule that runs CheckRejected after the watch window: its group, role, target and DLQ. */
export interface WatchScheduleConfig {
  groupName: string;
  /** The role EventBridge Scheduler assumes to invoke the target (lambda:InvokeFunction on it). */
  roleArn: string;
  /** The CheckRejected function. */
  targetArn: string;
  /** Where Scheduler puts the event when it cannot invoke the target. */
  deadLetterQueueArn: string;
}

const watchScheduleEnvSchema = z.object({
  WATCH_SCHEDULE_GROUP: z.string().regex(/^[0-9a-zA-Z_.-]{1,64}$/, "must be a schedule group name"),
  WATCH_SCHEDULER_ROLE_ARN: z.string().startsWith("arn:"),
  WATCH_TARGET_ARN: z.string().startsWith("arn:"),
  WATCH_DEAD_LETTER_QUEUE_ARN: z.string().startsWith("arn:"),
});

/**
 * The watch's schedule settings: all four variables, or none (no watch is booked, and the report says so). Some
 * but not all is a broken deploy, named at cold start.
 */
function loadWatchScheduleConfig(env: NodeJS.ProcessEnv): WatchScheduleConfig | undefined {
  const names = Object.keys(watchScheduleEnvSchema.shape) as (keyof typeof watchScheduleEnvSchema.shape)[];
  if (names.every((name) => !env[name])) return undefined;
  const e = parseEnv(watchScheduleEnvSchema, env);
  return {
    groupName: e.WATCH_SCHEDULE_GROUP,
    roleArn: e.WATCH_SCHEDULER_ROLE_ARN,
    targetArn: e.WATCH_TARGET_ARN,
    deadLetterQueueArn: e.WATCH_DEAD_LETTER_QUEUE_ARN,
  };
}

/** Reads the notifier's topics from the environment; throws at cold start when one is missing. */
export function loadNotifyConfig(env: NodeJS.ProcessEnv): NotifyConfig {
  const e = parseEnv(notifyEnvSchema, { ...env, SLACK_TOPIC_ARN: env.SLACK_TOPIC_ARN || undefined });
  const watch = loadWatchScheduleConfig(env);
  return {
    topicArn: e.TOPIC_ARN,
    ...(e.SLACK_TOPIC_ARN ? { slackTopicArn: e.SLACK_TOPIC_ARN } : {}),
    slackVerdicts: e.SLACK_VERDICTS.split(",")
      .map((v) => v.trim())
      .filter(Boolean),
    ...(e.SLACK_ROUTES.length > 0
      ? {
          slackTopicByAccount: Object.fromEntries(
            e.SLACK_ROUTES.map((entry) => [entry.slice(0, 12), entry.slice(13)] as const),
          ),
        }
      : {}),
    ...(watch ? { watch } : {}),
  };
}

/** Parses a function's environment, naming every wrong variable in one NonRetryableConfigurationError. */
function parseEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new NonRetryableConfigurationError(`Invalid configuration: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}

/**
 * `field: message; field: message` — the form every boundary error in the guard uses. For a union (Notify accepts
 * two shapes) the closest alternative's issues are named, rather than zod's bare "Invalid input".
 */
export function describeIssues(error: z.ZodError): string {
  return flatIssues(error.issues, [])
    .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
    .join("; ");
}

type Issue = z.core.$ZodIssue;

function flatIssues(issues: readonly Issue[], prefix: PropertyKey[]): { path: PropertyKey[]; message: string }[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      const closest = [...issue.errors].sort((a, b) => a.length - b.length)[0] ?? [];
      return flatIssues(closest, path);
    }
    return [{ path, message: issue.message }];
  });
}

export interface SweepConfig {
  stateMachineArn: string;
  /** In audit mode the sweep changes nothing, not even the account default. */
  mode: "enforce" | "audit";
  exemptTagKey: string;
  exemptUntilTagKey: string;
  /** Set the account's IMDS default to HttpTokens=required (ModifyInstanceMetadataDefaults). */
  enforceAccountDefault: boolean;
  /** Instances per execution: 500 keeps each execution's state far below 256 KiB and its Map at 10 batches. */
  instancesPerExecution: number;
  account: string;
  region: string;
  /** Organization mode (the hub): sweep every account of the organization in these regions. */
  organization?: OrganizationSweepConfig;
  /** Set: the sweep also proves again every instance whose evidence is in doubt or old (issue 21). */
  evidence?: EvidenceConfig;
  /** Archive the Security Hub findings of instances the sweep finds gone (the flow's `securityHub` setting). */
  securityHub?: boolean;
}

/** The organization sweep's settings: whom it may enter, where, how many at once, and where its report goes. */
export interface OrganizationSweepConfig extends OrganizationConfig {
  /** The regions swept in every account (SWEEP_REGIONS; default: the hub's own region). */
  regions: string[];
  /** Account × region pairs swept at a time. */
  concurrency: number;
  /** The posture report's topics, as Notify's. */
  topics: { topicArn: string; slackTopicArn?: string; slackVerdicts: string[] };
}

const organizationSweepEnvSchema = z.object({
  SWEEP_REGIONS: commaList(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, "must be region names")),
  SWEEP_CONCURRENCY: z.coerce.number().int().min(1).max(50).default(8),
  TOPIC_ARN: z.string().startsWith("arn:"),
  SLACK_TOPIC_ARN: z.string().startsWith("arn:").optional(),
  SLACK_VERDICTS: z.string().default("fail,error,held,unverified,alert"),
});

const sweepEnvSchema = z.object({
  STATE_MACHINE_ARN: z.string().startsWith("arn:"),
  GUARD_MODE: z.enum(["enforce", "audit"]).default("enforce"),
  EXEMPT_TAG_KEY: z.string().min(1).max(128).default("imdsv2-guard:exempt"),
  EXEMPT_UNTIL_TAG_KEY: z.string().min(1).max(128).default("imdsv2-guard:exempt-until"),
  ENFORCE_ACCOUNT_DEFAULT: z.enum(["true", "false"]).default("false"),
  INSTANCES_PER_EXECUTION: z.coerce.number().int().min(1).max(1000).default(500),
  SECURITY_HUB: z.enum(["true", "false"]).default("false"),
  AWS_REGION: z.string().min(1),
  ACCOUNT_ID: z.string().regex(/^\d{12}$/),
});

/** Reads the sweep's settings from the environment; throws at cold start when one is missing. */
export function loadSweepConfig(env: NodeJS.ProcessEnv): SweepConfig {
  const e = parseEnv(sweepEnvSchema, env);
  const organization = loadOrganizationConfig(env);
  const evidence = loadEvidenceConfig(env);
  return {
    stateMachineArn: e.STATE_MACHINE_ARN,
    mode: e.GUARD_MODE,
    exemptTagKey: e.EXEMPT_TAG_KEY,
    exemptUntilTagKey: e.EXEMPT_UNTIL_TAG_KEY,
    enforceAccountDefault: e.ENFORCE_ACCOUNT_DEFAULT === "true",
    instancesPerExecution: e.INSTANCES_PER_EXECUTION,
    account: e.ACCOUNT_ID,
    region: e.AWS_REGION,
    ...(organization ? { organization: loadOrganizationSweepConfig(env, organization, e.AWS_REGION) } : {}),
    ...(evidence ? { evidence } : {}),
    securityHub: e.SECURITY_HUB === "true",
  };
}

function loadOrganizationSweepConfig(
  env: NodeJS.ProcessEnv,
  organization: OrganizationConfig,
  hubRegion: string,
): OrganizationSweepConfig {
  const o = parseEnv(organizationSweepEnvSchema, { ...env, SLACK_TOPIC_ARN: env.SLACK_TOPIC_ARN || undefined });
  return {
    ...organization,
    regions: o.SWEEP_REGIONS.length > 0 ? [...new Set(o.SWEEP_REGIONS)] : [hubRegion],
    concurrency: o.SWEEP_CONCURRENCY,
    topics: {
      topicArn: o.TOPIC_ARN,
      ...(o.SLACK_TOPIC_ARN ? { slackTopicArn: o.SLACK_TOPIC_ARN } : {}),
      slackVerdicts: o.SLACK_VERDICTS.split(",")
        .map((v) => v.trim())
        .filter(Boolean),
    },
  };
}

export interface GuardAccountDefaultConfig {
  /** In audit mode the guard never changes the account default. */
  mode: "enforce" | "audit";
  /** Set a weakened default back to HttpTokens=required (the same switch as the sweep's). */
  enforceAccountDefault: boolean;
}

const guardAccountDefaultEnvSchema = z.object({
  GUARD_MODE: z.enum(["enforce", "audit"]).default("enforce"),
  ENFORCE_ACCOUNT_DEFAULT: z.enum(["true", "false"]).default("false"),
});

/** Reads GuardAccountDefault's settings from the environment; throws at cold start when one is wrong. */
export function loadGuardAccountDefaultConfig(env: NodeJS.ProcessEnv): GuardAccountDefaultConfig {
  const e = parseEnv(guardAccountDefaultEnvSchema, env);
  return { mode: e.GUARD_MODE, enforceAccountDefault: e.ENFORCE_ACCOUNT_DEFAULT === "true" };
}

const evidenceEnvSchema = z.object({
  /** How long a closed evidence record (a terminated instance's) stays in the ledger. */
  EVIDENCE_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  /** A pass whose proof is older than this is proven again by the sweep. */
  REPROVE_AFTER_DAYS: z.coerce.number().int().min(1).max(365).default(30),
});

/** Where the standing truth of each instance is kept and how long (issue 21): the ledger's evidence records. */
export interface EvidenceConfig {
  tableName: string;
  retentionDays: number;
  reproveAfterDays: number;
}

/**
 * The evidence settings, or undefined when the function has no ledger (LEDGER_TABLE_NAME unset): an older stack's
 * sweep then selects what it always selected.
 */
export function loadEvidenceConfig(env: NodeJS.ProcessEnv): EvidenceConfig | undefined {
  if (!env.LEDGER_TABLE_NAME) return undefined;
  const e = parseEnv(evidenceEnvSchema, env);
  return {
    tableName: loadLedgerTableName(env),
    retentionDays: e.EVIDENCE_RETENTION_DAYS,
    reproveAfterDays: e.REPROVE_AFTER_DAYS,
  };
}
