import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { DescribeRegionsCommand, type EC2Client, type Instance } from "@aws-sdk/client-ec2";
import {
  ExecutionAlreadyExists,
  ListStateMachinesCommand,
  type ListStateMachinesCommandOutput,
  type SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { readAccountPosture } from "../shared/aws/account-defaults.js";
import { describeInstancesWhere } from "../shared/aws/ec2-instances.js";
import { awsErrorCode, classifyAwsError } from "../shared/aws/errors.js";
import { sumImdsMetric } from "../shared/aws/imds-metrics.js";
import type { AccountPosture } from "../shared/domain/account-posture.js";
import { SWEEP_DETAIL_TYPE, SWEEP_SOURCE } from "../shared/domain/event.js";
import { type Exemption, type ExemptionKeys, exemptionOf } from "../shared/domain/exemption.js";

export const AUDIT_SCHEMA = "imdsv2-guard.audit.v1";

/** The guard's state machines are named `imdsv2-guard-<stage>` (infra/orchestration.yml). */
export const STATE_MACHINE_PREFIX = "imdsv2-guard-";

/** As the sweep: 500 ids keep an execution's state far below 256 KiB. */
export const INSTANCES_PER_EXECUTION = 500;

export const DEFAULT_EXEMPTION_KEYS: ExemptionKeys = {
  exemptTagKey: "imdsv2-guard:exempt",
  exemptUntilTagKey: "imdsv2-guard:exempt-until",
};

/** Every state but terminated: a stopped instance that allows IMDSv1 allows it again the moment it starts. */
const LISTED_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"];

const HOUR_MS = 3_600_000;

/** The clients of one region, and the clock. */
export interface AuditClients {
  ec2: EC2Client;
  cloudwatch: CloudWatchClient;
  sfn: SFNClient;
  now: () => Date;
}

/**
 * - `compliant`: HttpTokens=required already;
 * - `ready`: allows IMDSv1, not exempt, and no IMDSv1 call answered in 7 days: enforcing breaks nothing seen;
 * - `imdsv1-in-use`: allows IMDSv1 and something used it within 7 days: fix that software first;
 * - `exempt`: allows IMDSv1 under an exemption that has not lapsed;
 * - `imds-disabled`: the metadata endpoint is off, so there is no IMDSv1 to leak;
 * - `shutting-down`: about to be terminated.
 */
export type Readiness = "compliant" | "ready" | "imdsv1-in-use" | "exempt" | "imds-disabled" | "shutting-down";

export interface AuditedInstance {
  instanceId: string;
  name?: string;
  state: string;
  platform: "linux" | "windows";
  httpTokens: string;
  httpEndpoint: string;
  exemption: Exemption;
  /** AWS/EC2 MetadataNoToken, Sum: IMDSv1 calls the instance's IMDS answered. */
  imdsV1Calls: { last24h: number; last7d: number };
  readiness: Readiness;
}

export interface RegionSummary {
  instances: number;
  requireImdsV2: number;
  allowImdsV1: number;
  imdsDisabled: number;
  exempt: number;
  lapsedExemptions: number;
  imdsV1Use24h: number;
  imdsV1Use7d: number;
  readyToEnforce: string[];
  needsWork: string[];
}

export interface RegionAudit {
  region: string;
  account: AccountPosture;
  instances: AuditedInstance[];
  summary: RegionSummary;
}

export type AuditProgress = { phase: "instances"; instances: number } | { phase: "metrics"; instances: number };

export interface AuditRegionOptions {
  region: string;
  exemptionKeys: ExemptionKeys;
  onProgress?: (progress: AuditProgress) => void;
}

/** Audits one region: the account's IMDS defaults, then every non-terminated instance and its IMDSv1 use. */
export async function auditRegion(clients: AuditClients, options: AuditRegionOptions): Promise<RegionAudit> {
  const now = clients.now();
  const account = await readAccountPosture(clients.ec2);
  const found = await describeInstancesWhere(
    clients.ec2,
    [{ Name: "instance-state-name", Values: LISTED_STATES }],
    (n) => options.onProgress?.({ phase: "instances", instances: n }),
  );
  const ids = found.map((i) => i.InstanceId).filter((id): id is string => id !== undefined);
  options.onProgress?.({ phase: "metrics", instances: ids.length });
  const day = await sumImdsMetric(clients.cloudwatch, "MetadataNoToken", ids, hoursBefore(now, 24), now);
  const week = await sumImdsMetric(clients.cloudwatch, "MetadataNoToken", ids, hoursBefore(now, 24 * 7), now);
  const instances = found
    .filter((i): i is Instance & { InstanceId: string } => i.InstanceId !== undefined)
    .map((i) =>
      auditInstance(i, options.exemptionKeys, now, {
        last24h: Math.round(day.get(i.InstanceId) ?? 0),
        last7d: Math.round(week.get(i.InstanceId) ?? 0),
      }),
    )
    .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  return { region: options.region, account, instances, summary: summarize(instances) };
}

function auditInstance(
  instance: Instance & { InstanceId: string },
  keys: ExemptionKeys,
  now: Date,
  imdsV1Calls: AuditedInstance["imdsV1Calls"],
): AuditedInstance {
  const name = instance.Tags?.find((t) => t.Key === "Name")?.Value;
  const base = {
    instanceId: instance.InstanceId,
    ...(name ? { name } : {}),
    state: instance.State?.Name ?? "unknown",
    // EC2 documents the value as "windows"; the SDK types it "Windows". Either way it is Windows.
    platform: instance.Platform?.toLowerCase() === "windows" ? "windows" : "linux",
    // EC2 leaves MetadataOptions out while an instance is pending; "unknown" is then the honest value.
    httpTokens: instance.MetadataOptions?.HttpTokens ?? "unknown",
    httpEndpoint: instance.MetadataOptions?.HttpEndpoint ?? "unknown",
    exemption: exemptionOf(instance.Tags, keys, now),
    imdsV1Calls,
  } satisfies Omit<AuditedInstance, "readiness">;
  return { ...base, readiness: readinessOf(base) };
}

/** Where an instance stands; see {@link Readiness}. */
export function readinessOf(i: Omit<AuditedInstance, "readiness">): Readiness {
  if (i.state === "shutting-down") return "shutting-down";
  if (i.httpTokens === "required") return "compliant";
  if (i.httpEndpoint === "disabled") return "imds-disabled";
  if (i.exemption.status === "active") return "exempt";
  return i.imdsV1Calls.last7d > 0 ? "imdsv1-in-use" : "ready";
}

/** The counts and the two lists people act on: what can be enforced now, and what needs work first. */
export function summarize(instances: readonly AuditedInstance[]): RegionSummary {
  const count = (p: (i: AuditedInstance) => boolean) => instances.filter(p).length;
  return {
    instances: instances.length,
    requireImdsV2: count((i) => i.httpTokens === "required"),
    allowImdsV1: count((i) => i.httpTokens !== "required" && i.httpEndpoint !== "disabled"),
    imdsDisabled: count((i) => i.httpTokens !== "required" && i.httpEndpoint === "disabled"),
    exempt: count((i) => i.exemption.status === "active"),
    lapsedExemptions: count((i) => i.exemption.status === "lapsed"),
    imdsV1Use24h: count((i) => i.imdsV1Calls.last24h > 0),
    imdsV1Use7d: count((i) => i.imdsV1Calls.last7d > 0),
    readyToEnforce: instances.filter((i) => i.readiness === "ready").map((i) => i.instanceId),
    needsWork: instances.filter((i) => i.readiness === "imdsv1-in-use").map((i) => i.instanceId),
  };
}

/** The regions enabled for the account (DescribeRegions lists only those unless asked for all). */
export async function listEnabledRegions(ec2: EC2Client): Promise<string[]> {
  try {
    const out = await ec2.send(new DescribeRegionsCommand({}));
    return (out.Regions ?? [])
      .filter((r) => r.OptInStatus !== "not-opted-in")
      .map((r) => r.RegionName)
      .filter((name): name is string => name !== undefined)
      .sort();
  } catch (error) {
    throw classifyAwsError(error, "DescribeRegions");
  }
}

/** A state machine to start could not be chosen: none deployed, or several and no way to tell which. */
export class StateMachineNotFoundError extends Error {
  override readonly name = "StateMachineNotFoundError";
}

/** Finds the guard's state machine in the client's region by its name prefix; exactly one must match. */
export async function findGuardStateMachine(sfn: SFNClient, region: string): Promise<string> {
  const matches: string[] = [];
  let nextToken: string | undefined;
  do {
    let page: ListStateMachinesCommandOutput;
    try {
      page = await sfn.send(new ListStateMachinesCommand({ maxResults: 1000, nextToken }));
    } catch (error) {
      throw classifyAwsError(error, "ListStateMachines");
    }
    for (const machine of page.stateMachines ?? []) {
      if (machine.name?.startsWith(STATE_MACHINE_PREFIX) && machine.stateMachineArn) {
        matches.push(machine.stateMachineArn);
      }
    }
    nextToken = page.nextToken;
  } while (nextToken);
  if (matches.length === 1 && matches[0] !== undefined) return matches[0];
  if (matches.length === 0) {
    throw new StateMachineNotFoundError(
      `no state machine named ${STATE_MACHINE_PREFIX}* in ${region}: deploy the guard there, or pass --state-machine-arn`,
    );
  }
  throw new StateMachineNotFoundError(
    `${matches.length} state machines named ${STATE_MACHINE_PREFIX}* in ${region} (${matches.join(", ")}): choose one with --state-machine-arn`,
  );
}

/** `audit-20261128-090512`: names the executions one audit starts, so they are easy to find in the console. */
export function auditIdAt(now: Date): string {
  return `audit-${now.toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-")}`;
}

export interface StartRequest {
  stateMachineArn: string;
  region: string;
  auditId: string;
  accountPosture: AccountPosture;
  instanceIds: readonly string[];
  /** The audit's view of the fleet, for the flow's notification (as the sweep sends it). */
  fleet: { allowingImdsV1: number; exempt: number };
}

export interface StartedExecution {
  name: string;
  executionArn: string;
  instances: number;
  /** StartExecution said an execution of that name exists: this audit was started before. */
  alreadyStarted: boolean;
}

/** What a start did: the executions started before any failure, and the failure if one stopped it. */
export interface StartOutcome {
  executions: StartedExecution[];
  failure?: Error;
}

/**
 * Sends instances through the guard's state machine with the input the reconciliation sweep uses, 500 per
 * execution. The account comes from the state machine's ARN (the flow runs in the account that owns it). A failure
 * stops the start but is returned with the executions already started, so none of them goes unreported.
 */
export async function startEnforcement(
  clients: Pick<AuditClients, "sfn" | "now">,
  request: StartRequest,
): Promise<StartOutcome> {
  const account = request.stateMachineArn.split(":")[4] ?? "";
  const time = clients.now().toISOString();
  const executions: StartedExecution[] = [];
  for (let start = 0, n = 1; start < request.instanceIds.length; start += INSTANCES_PER_EXECUTION, n++) {
    const name = `${request.auditId}-${n}`;
    const instanceIds = request.instanceIds.slice(start, start + INSTANCES_PER_EXECUTION);
    const input = {
      version: "0",
      id: name,
      "detail-type": SWEEP_DETAIL_TYPE,
      source: SWEEP_SOURCE,
      account,
      region: request.region,
      time,
      detail: { sweepId: name, instanceIds, accountPosture: request.accountPosture, fleet: request.fleet },
    };
    const execution = {
      name,
      executionArn: executionArnOf(request.stateMachineArn, name),
      instances: instanceIds.length,
    };
    try {
      const out = await clients.sfn.send(
        new StartExecutionCommand({ stateMachineArn: request.stateMachineArn, name, input: JSON.stringify(input) }),
      );
      executions.push({
        ...execution,
        executionArn: out.executionArn ?? execution.executionArn,
        alreadyStarted: false,
      });
    } catch (error) {
      if (!(error instanceof ExecutionAlreadyExists) && awsErrorCode(error) !== "ExecutionAlreadyExists") {
        return { executions, failure: classifyAwsError(error, "StartExecution") };
      }
      executions.push({ ...execution, alreadyStarted: true });
    }
  }
  return { executions };
}

function executionArnOf(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${name}`;
}

function hoursBefore(date: Date, hours: number): Date {
  return new Date(date.getTime() - hours * HOUR_MS);
}
