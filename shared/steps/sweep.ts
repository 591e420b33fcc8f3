import type { Logger } from "@aws-lambda-powertools/logger";
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { SecurityHubClient } from "@aws-sdk/client-securityhub";
import type { SFNClient } from "@aws-sdk/client-sfn";
import type { SNSClient } from "@aws-sdk/client-sns";
import { readAccountPosture, requireTokensByDefault } from "../aws/account-defaults.js";
import { describeInstancesById, describeInstancesWhere, isGone } from "../aws/ec2-instances.js";
import { awsErrorCode } from "../aws/errors.js";
import type { EvidenceStore } from "../aws/evidence-store.js";
import { startNamedExecution } from "../aws/executions.js";
import type { OrganizationDirectory } from "../aws/organization-directory.js";
import { publish } from "../aws/publish.js";
import { archiveFindings } from "../aws/security-hub.js";
import type { AccountPosture } from "../domain/account-posture.js";
import { membershipRefusal, type SpokeTarget } from "../domain/confused-deputy.js";
import { SWEEP_DETAIL_TYPE, SWEEP_SOURCE } from "../domain/event.js";
import { closeEvidence, type EvidenceRecord, needsReproof } from "../domain/evidence.js";
import { exemptionOf } from "../domain/exemption.js";
import { type OrgSweepRow, orgSweepExecutionName, unreachableRow } from "../domain/org-posture.js";
import { type OrgPostureReport, orgPostureMessage } from "../report/org-posture.js";
import type { OrganizationSweepConfig, SweepConfig } from "../runtime/config.js";
import { mapLimit } from "../runtime/map-limit.js";
import { type RetryPolicy, retryRetryable } from "../runtime/retry.js";

export interface SweepDeps {
  ec2: EC2Client;
  sfn: SFNClient;
  logger: Logger;
  now: () => Date;
  config: SweepConfig;
  /** The evidence records (with `config.evidence`): every doubt among them is proven again. */
  evidence?: EvidenceStore;
  /** Security Hub, to archive the findings of instances found gone (with `config.securityHub`). */
  securityHubFor?: (target: SpokeTarget) => Promise<SecurityHubClient>;
  /** How the reads are retried when AWS throttles or answers 5xx (tests pass a sleep of their own). */
  retry?: Partial<RetryPolicy>;
}

export interface SweepOutcome {
  sweepId: string;
  /** Instances EC2 reports with HttpTokens=optional. */
  found: number;
  /** Of those, skipped because of an exemption that has not lapsed. */
  exempt: number;
  /** Of those, skipped because their IMDS endpoint is off: nothing answers, so nothing leaks. */
  imdsDisabled: number;
  /** Instances already `required` sent again because their evidence is in doubt or old (issue 21). */
  reproved: number;
  /** Evidence records closed because their instance is gone (terminated, or unknown to EC2). */
  closed: number;
  accountPosture: AccountPosture;
  executions: { name: string; instances: number; alreadyStarted: boolean }[];
}

/** The states an instance can be enforced in; terminated ones are gone, and shutting-down ones soon will be. */
const SWEEPABLE_STATES = ["pending", "running", "stopping", "stopped"];

/**
 * The reconciliation sweep: EventBridge delivers events on a best-effort basis, so once a day (and once right after the
 * first deploy, as a backfill of the existing fleet) every instance that still allows IMDSv1 is sent through the same
 * state machine as a launch would be. Execution names are derived from the sweep's time window, so a retried sweep
 * does not start the same work twice (StartExecution with an existing name is refused).
 */
/**
 * A region's posture and sweep are retried on a throttle or a 5xx, a few seconds apart: they only read and start
 * executions by name (a repeat starts nothing twice), and without it one transient 500 would leave the region's
 * instances unswept (an organization's pair reported as an error) until the next day.
 */
const SWEEP_RETRY: RetryPolicy = { attempts: 4, firstDelayMs: 1_000, maxDelayMs: 8_000 };

export async function sweep(deps: SweepDeps, scheduled: { time?: string } = {}): Promise<SweepOutcome> {
  const { config } = deps;
  const now = deps.now();
  const sweepId = sweepIdFor(scheduled, now);
  const retry = <T>(call: () => Promise<T>) => retryRetryable(call, { ...SWEEP_RETRY, ...deps.retry });
  let accountPosture = await retry(() => readAccountPosture(deps.ec2));
  if (config.enforceAccountDefault && config.mode === "enforce") {
    accountPosture = await requireTokensByDefault(deps.ec2, accountPosture);
  }
  const region = await retry(() =>
    sweepRegion(deps.ec2, deps.sfn, config, now, {
      account: config.account,
      region: config.region,
      accountPosture,
      executionName: (n) => `${sweepId}-${n}`,
      // A clean fleet still gets one execution, so the sweep's notification reports the account's posture.
      alwaysOneExecution: true,
      ...(deps.evidence && config.evidence
        ? { evidence: { store: deps.evidence, reproveAfterDays: config.evidence.reproveAfterDays } }
        : {}),
    }),
  );
  const { closedRecords, ...counts } = region;
  if (config.securityHub && deps.securityHubFor && closedRecords.length > 0) {
    await archiveQuietly(closedRecords, sweepId, deps.securityHubFor, deps.logger, now);
  }
  const outcome = { sweepId, ...counts, accountPosture };
  deps.logger.info("Sweep started executions", { ...outcome });
  return outcome;
}

/**
 * Named after the schedule's time, not the clock: Lambda retries a failed scheduled run minutes later with the same
 * event, and the same names then make StartExecution refuse to start the work twice.
 */
function sweepIdFor(scheduled: { time?: string }, now: Date): string {
  const scheduledAt = scheduled.time && !Number.isNaN(Date.parse(scheduled.time)) ? new Date(scheduled.time) : now;
  return `sweep-${scheduledAt.toISOString().slice(0, 16).replace(/[-:T]/g, "")}`;
}

interface RegionSweep {
  found: number;
  exempt: number;
  imdsDisabled: number;
  reproved: number;
  closed: number;
  closedRecords: EvidenceRecord[];
  executions: SweepOutcome["executions"];
}

/** The instances a sweep proves again although EC2 says `required`, and what it read of their HttpTokens. */
interface Reproofs {
  ids: string[];
  recordedHttpTokens: Record<string, string>;
  /** Records closed now: their instances are gone (their findings are archived). */
  closed: EvidenceRecord[];
}

/** EC2 takes up to 200 values in one filter of DescribeInstances ("DescribeInstances", Filters). */
const DESCRIBE_IDS_PER_CALL = 200;

/**
 * Every doubt is checked again. The region's open evidence records are described (200 ids a call): a gone instance's
 * record is closed (EC2 shows a terminated instance for about an hour only, so a daily look is the guard's way to
 * learn of it); of the rest, those not `pass`, or whose proof is older than `reproveAfterDays`, are proven again when
 * running (an `unverified` instance whose SSM Agent came online since is proven now). A stopped one waits for its
 * start, an event of its own. Active exemptions and a disabled endpoint are honoured as for the instances that allow
 * IMDSv1.
 */
async function doubtsToProve(
  ec2: EC2Client,
  config: SweepConfig,
  now: Date,
  where: { account: string; region: string; evidence: { store: EvidenceStore; reproveAfterDays: number } },
  alreadySent: ReadonlySet<string>,
): Promise<Reproofs> {
  const { store, reproveAfterDays } = where.evidence;
  const open = (await store.list(where.account, where.region)).filter(
    (r) => !r.closedAt && !alreadySent.has(r.instanceId),
  );
  const out: Reproofs = { ids: [], recordedHttpTokens: {}, closed: [] };
  for (let start = 0; start < open.length; start += DESCRIBE_IDS_PER_CALL) {
    const chunk = open.slice(start, start + DESCRIBE_IDS_PER_CALL);
    const described = await describeInstancesById(
      ec2,
      chunk.map((r) => r.instanceId),
    );
    for (const record of chunk) {
      const instance = described.get(record.instanceId);
      if (!instance || isGone(instance)) {
        // Closed, not deleted: the record stays for the retention period. A lost race means someone else wrote it.
        const closed = closeEvidence(record, now);
        if (await store.put(closed, record.attempts)) out.closed.push(closed);
        continue;
      }
      if (!needsReproof(record, now, reproveAfterDays)) continue;
      const state = instance.State?.Name ?? "";
      if (state !== "running" && state !== "pending") continue;
      if (instance.MetadataOptions?.HttpEndpoint === "disabled") continue;
      if (exemptionOf(instance.Tags, config, now).status === "active") continue;
      out.ids.push(record.instanceId);
      out.recordedHttpTokens[record.instanceId] = instance.MetadataOptions?.HttpTokens ?? "unknown";
    }
  }
  return out;
}

/**
 * One account and region: the instances that still allow IMDSv1, in executions of `instancesPerExecution`, each
 * named by `executionName` so that a retry asks for the same names.
 */
async function sweepRegion(
  ec2: EC2Client,
  sfn: SFNClient,
  config: SweepConfig,
  now: Date,
  where: {
    account: string;
    region: string;
    accountPosture: AccountPosture;
    executionName: (n: number) => string;
    alwaysOneExecution: boolean;
    evidence?: { store: EvidenceStore; reproveAfterDays: number };
  },
): Promise<RegionSweep> {
  const allowing = await describeInstancesWhere(ec2, [
    { Name: "metadata-options.http-tokens", Values: ["optional"] },
    { Name: "instance-state-name", Values: SWEEPABLE_STATES },
  ]);
  const candidates = allowing.filter((i) => i.MetadataOptions?.HttpEndpoint !== "disabled");
  // Lapsed exemptions go through the flow, which enforces them and says the exemption lapsed.
  const toCheck = candidates.filter((i) => exemptionOf(i.Tags, config, now).status !== "active");
  const allowingIds = toCheck.map((i) => i.InstanceId).filter((id): id is string => id !== undefined);
  const reproofs = where.evidence
    ? await doubtsToProve(ec2, config, now, { ...where, evidence: where.evidence }, new Set(allowingIds))
    : { ids: [], recordedHttpTokens: {}, closed: [] };
  const ids = [...allowingIds, ...reproofs.ids];
  const executions: SweepOutcome["executions"] = [];
  for (
    let start = 0, n = 1;
    start < ids.length || (n === 1 && where.alwaysOneExecution);
    start += config.instancesPerExecution, n++
  ) {
    const chunk = ids.slice(start, start + config.instancesPerExecution);
    const name = where.executionName(n);
    const recorded = Object.fromEntries(
      chunk.flatMap((id) => (reproofs.recordedHttpTokens[id] ? [[id, reproofs.recordedHttpTokens[id]]] : [])),
    );
    const input = {
      version: "0",
      id: name,
      "detail-type": SWEEP_DETAIL_TYPE,
      source: SWEEP_SOURCE,
      account: where.account,
      region: where.region,
      time: now.toISOString(),
      detail: {
        sweepId: name,
        instanceIds: chunk,
        accountPosture: where.accountPosture,
        fleet: { allowingImdsV1: candidates.length, exempt: candidates.length - toCheck.length },
        // Re-proofs only: what the sweep read of their HttpTokens (the others were selected as `optional`).
        ...(Object.keys(recorded).length > 0 ? { recordedHttpTokens: recorded } : {}),
      },
    };
    const started = await startNamedExecution(sfn, config.stateMachineArn, name, input);
    executions.push({ name, instances: chunk.length, alreadyStarted: started === "already-started" });
  }
  return {
    found: allowing.length,
    exempt: candidates.length - toCheck.length,
    imdsDisabled: allowing.length - candidates.length,
    reproved: reproofs.ids.length,
    closed: reproofs.closed.length,
    closedRecords: reproofs.closed,
    executions,
  };
}

export interface OrganizationSweepDeps {
  sfn: SFNClient;
  sns: SNSClient;
  logger: Logger;
  now: () => Date;
  config: SweepConfig & { organization: OrganizationSweepConfig };
  /** The organization's accounts: Organizations ListAccounts (delegated administration) or the configured list. */
  directory: OrganizationDirectory;
  /** EC2 in a member account and region, through the spoke role (shared/aws/spoke-credentials.ts). */
  ec2For: (target: SpokeTarget) => Promise<EC2Client>;
  /** The hub's evidence records of every member account and region (with `config.evidence`). */
  evidence?: EvidenceStore;
  /** Security Hub in a member account and region, through the spoke role (with `config.securityHub`). */
  securityHubFor?: (target: SpokeTarget) => Promise<SecurityHubClient>;
  /** How a pair's reads are retried when AWS throttles or answers 5xx (tests pass a sleep of their own). */
  retry?: Partial<RetryPolicy>;
}

export interface OrganizationSweepOutcome {
  sweepId: string;
  organization: true;
  rows: OrgSweepRow[];
  messageIds: string[];
}

/**
 * The organization sweep: every account of the organization × every configured region, a bounded number at a
 * time. In each it assumes the spoke role (session `imdsv2-guard-<sweepId>`, so the member's CloudTrail says it
 * was the sweep), reads the IMDS defaults and the instances that still allow IMDSv1, and starts executions for
 * them as the single-account sweep does, named per account, region and window. An account or region it cannot
 * enter is a row that says why; it never stops the others. One posture report per run goes to the alert topic.
 * The account defaults are not changed here: the spoke role may not, and the organization's lever is the EC2
 * declarative policy the report recommends.
 */
export async function sweepOrganization(
  deps: OrganizationSweepDeps,
  scheduled: { time?: string } = {},
): Promise<OrganizationSweepOutcome> {
  const { config } = deps;
  const org = config.organization;
  const now = deps.now();
  const sweepId = sweepIdFor(scheduled, now);
  // The directory failing is the one failure that concerns every account: the run fails, Lambda retries it, and
  // the failure queue and its alarm say so (a retry starts nothing twice: same names).
  const accounts = (await deps.directory.accounts()).filter((a) => a.status === undefined || a.status === "ACTIVE");
  const pairs = accounts.flatMap((a) => org.regions.map((region) => ({ account: a, region })));
  const rows = await mapLimit(pairs, org.concurrency, async ({ account, region }): Promise<OrgSweepRow> => {
    const base = { account: account.id, ...(account.name ? { accountName: account.name } : {}), region };
    const refusal = await allowListRefusal(account.id, org, deps.directory);
    if (refusal) return { ...base, status: "outside-allow-list", reason: refusal };
    let ec2: EC2Client;
    try {
      ec2 = await deps.ec2For({ account: account.id, region, eventId: sweepId });
    } catch (error) {
      return { ...base, ...unreachableRow("assume-role", codeOf(error), messageOf(error)) };
    }
    const retry = <T>(call: () => Promise<T>) => retryRetryable(call, { ...SWEEP_RETRY, ...deps.retry });
    try {
      const posture = await retry(() => readAccountPosture(ec2));
      const swept = await retry(() =>
        sweepRegion(ec2, deps.sfn, config, now, {
          account: account.id,
          region,
          accountPosture: posture,
          executionName: (n) => orgSweepExecutionName(sweepId, account.id, region, n),
          // The posture report covers clean pairs: no execution per clean account and region every day.
          alwaysOneExecution: false,
          ...(deps.evidence && config.evidence
            ? { evidence: { store: deps.evidence, reproveAfterDays: config.evidence.reproveAfterDays } }
            : {}),
        }),
      );
      if (config.securityHub && deps.securityHubFor && swept.closedRecords.length > 0) {
        await archiveQuietly(swept.closedRecords, sweepId, deps.securityHubFor, deps.logger, now);
      }
      const allowingImdsV1 = swept.found - swept.imdsDisabled;
      return {
        ...base,
        status: "swept",
        posture,
        allowingImdsV1,
        exempt: swept.exempt,
        sentToGuard: allowingImdsV1 - swept.exempt,
        executions: swept.executions,
      };
    } catch (error) {
      // The hub's own call: not the member's drift. Executions already started stay started; a retry names them again.
      if ((error as { api?: unknown } | null)?.api === "StartExecution") {
        return { ...base, status: "error", reason: `the hub could not start the execution: ${messageOf(error)}` };
      }
      return { ...base, ...unreachableRow("call", codeOf(error), messageOf(error)) };
    }
  });
  const report: OrgPostureReport = {
    sweepId,
    organizationId: org.id,
    generatedAt: now.toISOString(),
    regions: org.regions,
    rows,
  };
  const message = orgPostureMessage(report);
  const verdict = message.MessageAttributes.verdict?.StringValue ?? "alert";
  const messageIds = await publish(message, verdict, { sns: deps.sns, logger: deps.logger, config: org.topics });
  deps.logger.info("Organization sweep", {
    sweepId,
    pairs: rows.length,
    byStatus: Object.fromEntries(
      ["swept", "drift", "error", "outside-allow-list"].map((s) => [s, rows.filter((r) => r.status === s).length]),
    ),
    executions: rows.reduce((n, r) => n + (r.executions?.filter((e) => !e.alreadyStarted).length ?? 0), 0),
    messageIds,
  });
  return { sweepId, organization: true, rows, messageIds };
}

/** The allow-list of the hub (ALLOWED_ACCOUNT_IDS / ALLOWED_OU_IDS), as ResolveTargets applies it to events. */
async function allowListRefusal(
  account: string,
  org: OrganizationSweepConfig,
  directory: OrganizationDirectory,
): Promise<string | undefined> {
  if (org.allowedAccounts.length === 0 && org.allowedOus.length === 0) return undefined;
  // OUs are asked only when the allow-list names some: ListParents per account is the expensive part.
  const membership =
    org.allowedOus.length > 0 ? await directory.membership(account) : { status: "member" as const, ouIds: [] };
  return membershipRefusal(account, membership, org);
}

/** The AWS code of a failure: on the guard's classified errors, or on their cause, or on the SDK's error itself. */
function codeOf(error: unknown): string | undefined {
  const own = (error as { code?: unknown } | null)?.code;
  if (typeof own === "string") return own;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return (cause !== undefined ? awsErrorCode(cause) : undefined) ?? awsErrorCode(error);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Best effort: a finding left ACTIVE for a gone instance is wrong but harmless, and must not fail the sweep (whose
 * retry would start nothing new). The error is logged; the next sweep does not see the closed record again.
 */
async function archiveQuietly(
  closed: readonly EvidenceRecord[],
  sweepId: string,
  securityHubFor: (target: SpokeTarget) => Promise<SecurityHubClient>,
  logger: Logger,
  now: Date,
): Promise<void> {
  try {
    await archiveFindings(closed, sweepId, securityHubFor, now);
  } catch (error) {
    logger.error("Could not archive the findings of gone instances", { error: messageOf(error) });
  }
}
