import { AsyncLocalStorage } from "node:async_hooks";
import { CloudWatchClient, GetMetricDataCommand, type GetMetricDataCommandInput } from "@aws-sdk/client-cloudwatch";
import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  type GetItemCommandInput,
  PutItemCommand,
  type PutItemCommandInput,
  QueryCommand,
  type QueryCommandInput,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeImagesCommand,
  type DescribeImagesCommandInput,
  DescribeInstancesCommand,
  type DescribeInstancesCommandInput,
  EC2Client,
  GetInstanceMetadataDefaultsCommand,
  type Instance,
  ModifyInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { CreateScheduleCommand, type CreateScheduleCommandInput, SchedulerClient } from "@aws-sdk/client-scheduler";
import { BatchImportFindingsCommand, GetFindingsCommand, SecurityHubClient } from "@aws-sdk/client-securityhub";
import {
  SendTaskSuccessCommand,
  type SendTaskSuccessCommandInput,
  SFNClient,
  StartExecutionCommand,
  type StartExecutionCommandInput,
} from "@aws-sdk/client-sfn";
import { PublishCommand, type PublishCommandInput, SNSClient } from "@aws-sdk/client-sns";
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import type { Scenario, ScenarioInstance } from "../runner/scenario.js";
import {
  type BucketSpec,
  EC2_REQUEST_BUCKETS,
  EC2_UNFILTERED_DESCRIBE_INSTANCES_BUCKET,
  type Ec2ThrottledApi,
} from "./ec2-throttling.js";
import { type ImdsOptionsView, type RunningImdsEmulator, startImdsEmulator } from "./imds-emulator.js";
import { runLinuxProbe } from "./run-linux-probe.js";
import { findPwsh, runWindowsProbe } from "./run-windows-probe.js";
import { ec28ControlFinding, SimSecurityHub } from "./securityhub.js";

export type { BucketSpec } from "./ec2-throttling.js";

/** One probe the simulated Run Command ran: `real` when the script itself ran (sh, or pwsh for Windows), `computed` when pwsh is missing. */
export interface SimProbeRun {
  instanceId: string;
  platform: "linux" | "windows";
  stdout: string;
  source: "real" | "computed";
}

/**
 * A Lambda invocation the runner crashes right after one of its AWS calls took effect (run-flow.ts,
 * `lambdaCrashesAfterCall`). The invocation runs inside `simCrashPoint.run(...)`: once its `api` call has been
 * answered, the process counts as dead, so no later call of that invocation reaches the account.
 */
export interface SimCrashPoint {
  api: SimApi;
  crashed: boolean;
}
export const simCrashPoint = new AsyncLocalStorage<SimCrashPoint>();

export interface SimFaults {
  /** Throttle each EC2 API on its own bucket, as EC2 documents them (ec2-throttling.ts): RequestLimitExceeded, 503. */
  ec2Throttling?: boolean;
  /** Throttle SendCommand with this bucket (ThrottlingException). */
  sendCommandBucket?: BucketSpec;
  /** Throttle the event ledger's PutItem and Query with this bucket, answering with this DynamoDB code. */
  ledgerThrottling?: { bucket: BucketSpec; code: "ProvisionedThroughputExceededException" | "ThrottlingException" };
  /** The most items one simulated Query returns before it answers with LastEvaluatedKey (DynamoDB's limit is 1 MB). */
  queryPageItems?: number;
  /** Fail this share (0..1) of calls to the named APIs with a 500, deterministically spread. */
  transient5xx?: Partial<Record<SimApi, number>>;
  /** SNS Publish fails with a 500 this many times first. */
  publishFailures?: number;
  /** The event ledger's table answers 500 to the verdicts' PutItem and Query (ClaimEvent still works). */
  ledgerUnavailable?: boolean;
}

export type SimApi =
  | "DescribeInstances"
  | "ModifyInstanceMetadataOptions"
  | "DescribeInstanceInformation"
  | "SendCommand"
  | "GetCommandInvocation"
  | "Publish"
  | "StartExecution"
  | "SendTaskSuccess"
  | "GetMetricData"
  | "GetInstanceMetadataDefaults"
  | "ModifyInstanceMetadataDefaults"
  | "DescribeImages"
  | "PutItem"
  | "GetItem"
  | "Query"
  | "CreateSchedule"
  | "BatchImportFindings"
  | "GetFindings";

interface SimInstanceState {
  spec: ScenarioInstance;
  state: ScenarioInstance["state"];
  httpTokens: "optional" | "required";
  httpEndpoint: "enabled" | "disabled";
  /** What the instance's IMDS enforces right now: it follows a modify only once the change is applied. */
  imdsTokens: "optional" | "required";
  /** When the instance's IMDS switched between optional and required: what the CloudWatch metrics integrate. */
  tokenHistory: { at: number; tokens: "optional" | "required" }[];
  applyAt?: number;
  launchedAt: number;
  /** What DescribeInstances says as LaunchTime: EC2 sets it at the launch and again at every start. */
  lastLaunchTime: number;
  registeredAt?: number;
}

interface SimInvocation {
  commandId: string;
  instanceId: string;
  visibleAt: number;
  doneAt: number;
  outcome: "ok" | "failed" | "timed-out";
  stdout?: string;
}

/** A published SNS message as the simulated topic received it. */
export interface SimPublished {
  at: number;
  input: PublishCommandInput;
}

/** A one-off schedule the simulated EventBridge Scheduler holds until it fires (ActionAfterCompletion DELETE). */
export interface SimSchedule {
  name: string;
  groupName: string;
  /** When it fires, epoch milliseconds (its `at()` expression, in UTC). */
  at: number;
  input: CreateScheduleCommandInput;
}

const SCHEDULE_NAME = /^[0-9a-zA-Z_.-]{1,64}$/;
const AT_EXPRESSION = /^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$/;

/** DynamoDB stops a Query's page at 1 MB of items read. */
const QUERY_PAGE_BYTES = 1024 * 1024;

/** The simulated DescribeInstances answers at most this many instances a page, so callers must follow NextToken. */
const DESCRIBE_PAGE_LIMIT = 200;

/** The bucket key of a DescribeInstances with neither filter nor pagination. */
const UNFILTERED_DESCRIBE_INSTANCES = "DescribeInstances (unfiltered, unpaginated)";

class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly spec: BucketSpec,
    now: number,
  ) {
    this.tokens = spec.capacity;
    this.last = now;
  }
  take(now: number): boolean {
    this.tokens = Math.min(this.spec.capacity, this.tokens + ((now - this.last) / 1000) * this.spec.refillPerSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

function awsError(name: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: httpStatusCode >= 500 ? "server" : "client",
    $metadata: { httpStatusCode },
  });
}

/**
 * A stateful simulated AWS account behind the real SDK clients (aws-sdk-client-mock intercepts `send`). Instances
 * have states and metadata options that go `pending` → `applied` after a delay; SSM registration happens on time,
 * late or never; Run Command on a Linux instance runs the very script it was sent with `sh`, against an IMDS emulator
 * on 127.0.0.1 that follows the instance's current, applied options. Time is whatever `Date.now()` says, so the
 * runner can compress it.
 */
export class SimAccount {
  readonly calls: Record<SimApi, number> = {
    DescribeInstances: 0,
    ModifyInstanceMetadataOptions: 0,
    DescribeInstanceInformation: 0,
    SendCommand: 0,
    GetCommandInvocation: 0,
    Publish: 0,
    StartExecution: 0,
    SendTaskSuccess: 0,
    GetMetricData: 0,
    GetInstanceMetadataDefaults: 0,
    ModifyInstanceMetadataDefaults: 0,
    DescribeImages: 0,
    PutItem: 0,
    GetItem: 0,
    Query: 0,
    CreateSchedule: 0,
    BatchImportFindings: 0,
    GetFindings: 0,
  };
  readonly throttled: Record<SimApi, number> = { ...this.calls };
  readonly modifiedInstanceIds: string[] = [];
  readonly published: SimPublished[] = [];
  /** CloudWatch bills GetMetricData by the metric requested (each query), not by the call. */
  metricsRequested = 0;
  readonly probeRuns: SimProbeRun[] = [];
  /**
   * Where pwsh is, if installed: a Windows instance then runs the real probe-windows.ps1 in it; without it, its
   * answers are computed from the same IMDS rules the emulator follows, and the run says so.
   */
  pwsh: string | undefined = findPwsh();
  private readonly instances = new Map<string, SimInstanceState>();
  private readonly invocations = new Map<string, SimInvocation>();
  /** The event ledger table: items by `eventId` then `item` (ClaimEvent's claims, the batches' stored results). */
  private readonly ledger = new Map<string, Map<string, Record<string, AttributeValue>>>();
  private readonly executionNames = new Set<string>();
  private readonly taskTokens = new Map<string, (output: unknown) => void>();
  /** Set by the runner: starts an execution of the state machine, as StartExecution does. */
  onStartExecution: ((name: string, input: unknown) => void) | undefined;
  /** The schedules waiting to fire, by `group/name`. */
  readonly schedules = new Map<string, SimSchedule>();
  /** Every schedule ever created, in order (a fired one is deleted from `schedules`, not from here). */
  readonly schedulesCreated: SimSchedule[] = [];
  /** Set by the runner: fires a schedule at its time, as EventBridge Scheduler does. */
  onCreateSchedule: ((schedule: SimSchedule) => void) | undefined;
  /** One bucket per throttled API (EC2's per-API buckets, SendCommand's, the ledger's), created when first asked. */
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly mocks: { restore(): void }[] = [];
  private bucketsSince: number;
  private realWork = 0;
  private commandSeq = 0;
  private publishFailuresLeft: number;

  /** Which account and region this is (the organization sets its members'): Security Hub checks findings by it. */
  identity = { account: "111122223333", region: "eu-west-1" };
  /** Security Hub CSPM here: the findings imported, and the EC2.8 control findings of this account's instances. */
  readonly securityHub = new SimSecurityHub(
    () => this.identity,
    () =>
      [...this.instances.values()]
        .filter((s) => s.spec.securityHubControl && s.state !== "terminated")
        .map((s) =>
          ec28ControlFinding(
            this.identity.account,
            this.identity.region,
            s.spec.id,
            s.httpTokens,
            new Date(s.launchedAt).toISOString(),
          ),
        ),
  );

  /** The account's IMDS defaults in the simulated region. */
  readonly account: Scenario["account"];
  private readonly images: Scenario["images"];

  constructor(
    instances: readonly ScenarioInstance[],
    private readonly faults: SimFaults = {},
    world: Partial<Pick<Scenario, "account" | "images">> = {},
  ) {
    const now = Date.now();
    this.account = { httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account", ...world.account };
    this.images = world.images ?? {};
    for (const spec of instances) this.addInstance(spec, now);
    this.bucketsSince = now;
    this.publishFailuresLeft = faults.publishFailures ?? 0;
  }

  /** Launches an instance now (what a RunInstances call did). */
  addInstance(spec: ScenarioInstance, now = Date.now()): void {
    const registrationDelay = registrationDelayOf(spec);
    this.instances.set(spec.id, {
      spec,
      state: spec.state,
      httpTokens: spec.httpTokens,
      httpEndpoint: spec.httpEndpoint,
      imdsTokens: spec.httpTokens,
      tokenHistory: [{ at: now - spec.ageHours * 3_600_000, tokens: spec.httpTokens }],
      launchedAt: now,
      lastLaunchTime: now,
      ...(registrationDelay !== undefined ? { registeredAt: now + registrationDelay * 1000 } : {}),
    });
  }

  /** Real (wall-clock) work in flight, such as a probe running in `sh`: simulated time must not jump meanwhile. */
  get realWorkInFlight(): number {
    return this.realWork;
  }

  /** Intercepts every EC2, SSM, CloudWatch, SNS, DynamoDB, Step Functions and Scheduler client in this process. */
  install(): void {
    this.mocks.push(...installSimClients(async () => this));
  }

  /** Answers one API call as this account would: what the installed mocks call, here or through an organization. */
  async handle(api: SimApi, request: unknown): Promise<unknown> {
    const crash = simCrashPoint.getStore();
    if (crash?.crashed) throw new Error(`${api}: never sent, the function's process is gone (simulated crash)`);
    const answer = await this.answer(api, request);
    if (crash && crash.api === api) crash.crashed = true;
    return answer;
  }

  private async answer(api: SimApi, request: unknown): Promise<unknown> {
    // Each private handler declares the input shape it reads; the SDK's command input is that shape.
    const input = request as never;
    switch (api) {
      case "DescribeInstances":
        return this.describeInstances(input);
      case "ModifyInstanceMetadataOptions":
        return this.modifyMetadataOptions(input);
      case "DescribeInstanceInformation":
        return this.describeInstanceInformation(input);
      case "SendCommand":
        return this.sendCommand(input);
      case "GetCommandInvocation":
        return this.getCommandInvocation(input);
      case "DescribeImages":
        return this.describeImages(input);
      case "GetInstanceMetadataDefaults":
        return this.getMetadataDefaults();
      case "ModifyInstanceMetadataDefaults":
        return this.modifyMetadataDefaults(input);
      case "GetMetricData":
        return this.getMetricData(input);
      case "Publish":
        return this.publish(input);
      case "PutItem":
        return this.putItem(input);
      case "GetItem":
        return this.getItem(input);
      case "Query":
        return this.query(input);
      case "StartExecution":
        return this.startExecution(input);
      case "SendTaskSuccess":
        return this.sendTaskSuccess(input);
      case "CreateSchedule":
        return this.createSchedule(input);
      case "BatchImportFindings":
        this.gate("BatchImportFindings", Date.now());
        return this.securityHub.batchImportFindings(input);
      case "GetFindings":
        this.gate("GetFindings", Date.now());
        return this.securityHub.getFindings(input);
    }
  }

  restore(): void {
    for (const m of this.mocks) m.restore();
    this.mocks.length = 0;
  }

  /**
   * A `.waitForTaskToken` task is waiting on this token: the promise settles with the output SendTaskSuccess sends.
   * A token sent back once is refused the second time (TaskTimedOut), as AWS refuses it.
   */
  openTaskToken(token: string): Promise<unknown> {
    return new Promise((resolve) => this.taskTokens.set(token, resolve));
  }

  private async putItem(input: PutItemCommandInput) {
    this.gate("PutItem", Date.now(), "ledger");
    if (this.faults.ledgerUnavailable) throw awsError("InternalServerError", "simulated DynamoDB 500", 500);
    const eventId = input.Item?.eventId?.S;
    const item = input.Item?.item?.S;
    if (!eventId || !item || !input.Item) throw awsError("ValidationException", "The key eventId+item is required");
    const items = this.ledger.get(eventId) ?? new Map<string, Record<string, AttributeValue>>();
    if (input.ConditionExpression !== undefined) {
      // Only the conditions the instance claims, the probe markers and the evidence records use; anything else is a test bug.
      const existing = items.get(item);
      const values = input.ExpressionAttributeValues ?? {};
      const holds =
        input.ConditionExpression === "attribute_not_exists(eventId) OR executionId = :me"
          ? !existing || existing.executionId?.S === values[":me"]?.S
          : input.ConditionExpression === "attribute_not_exists(eventId) OR probeState = :released"
            ? !existing || existing.probeState?.S === values[":released"]?.S
            : input.ConditionExpression === "attribute_not_exists(eventId) OR attempts = :previous"
              ? !existing || existing.attempts?.N === values[":previous"]?.N
              : undefined;
      if (holds === undefined) {
        throw awsError("ValidationException", `The simulation does not evaluate ${input.ConditionExpression}`);
      }
      if (!holds) throw awsError("ConditionalCheckFailedException", "The conditional request failed");
    }
    items.set(item, input.Item);
    this.ledger.set(eventId, items);
    return {};
  }

  /** A consistent read of one ledger item (a suspended batch's progress, a probe's send marker). */
  private async getItem(input: GetItemCommandInput) {
    this.gate("GetItem", Date.now(), "ledger");
    if (this.faults.ledgerUnavailable) throw awsError("InternalServerError", "simulated DynamoDB 500", 500);
    const found = this.ledger.get(input.Key?.eventId?.S ?? "")?.get(input.Key?.item?.S ?? "");
    return found ? { Item: found } : {};
  }

  /**
   * The queries the ledger's readers make: `eventId = :e AND begins_with(item, :prefix)`, in sort-key order, paged
   * as DynamoDB pages: a page stops at 1 MB of items, at `Limit`, or at the scenario's `queryPageItems`, and a page
   * that stopped there carries LastEvaluatedKey even when nothing is left (the next page is then empty).
   */
  private async query(input: QueryCommandInput) {
    this.gate("Query", Date.now(), "ledger");
    if (this.faults.ledgerUnavailable) throw awsError("InternalServerError", "simulated DynamoDB 500", 500);
    const eventId = input.ExpressionAttributeValues?.[":e"]?.S ?? "";
    const prefix = input.ExpressionAttributeValues?.[":prefix"]?.S ?? "";
    const after = input.ExclusiveStartKey?.item?.S;
    const matching = [...(this.ledger.get(eventId)?.entries() ?? [])]
      .filter(([key]) => key.startsWith(prefix) && (after === undefined || key > after))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const limit = Math.min(
      input.Limit ?? Number.POSITIVE_INFINITY,
      this.faults.queryPageItems ?? Number.POSITIVE_INFINITY,
    );
    const items: Record<string, AttributeValue>[] = [];
    let bytes = 0;
    let cut = false;
    for (const [, value] of matching) {
      const size = JSON.stringify(value).length;
      if (items.length >= limit || (items.length > 0 && bytes + size > QUERY_PAGE_BYTES)) {
        cut = true;
        break;
      }
      items.push(value);
      bytes += size;
    }
    if (items.length === limit) cut = true;
    const last = items.at(-1);
    return {
      Items: items,
      Count: items.length,
      ...(cut && last?.eventId && last.item ? { LastEvaluatedKey: { eventId: last.eventId, item: last.item } } : {}),
    };
  }

  /**
   * Applies the effect of what a delivered event reports (someone else's call, or EC2's own state change), so the
   * simulated account is in the state the event describes when the guard looks.
   */
  applyRecordedCall(event: unknown): void {
    const envelope = event as { "detail-type"?: unknown; detail?: Record<string, unknown> } | null;
    const detail = envelope?.detail;
    // EC2's notification that an instance entered pending: a stopped instance was started (whoever's record says so).
    if (envelope?.["detail-type"] === "EC2 Instance State-change Notification" && detail?.state === "pending") {
      if (typeof detail["instance-id"] === "string") this.startInstance(detail["instance-id"]);
      return;
    }
    if (detail?.eventName === "StartInstances" && !detail.errorCode) {
      const items = (detail.responseElements as { instancesSet?: { items?: { instanceId?: unknown }[] } } | undefined)
        ?.instancesSet?.items;
      for (const item of items ?? []) if (typeof item.instanceId === "string") this.startInstance(item.instanceId);
      return;
    }
    if (detail?.eventName === "ModifyInstanceMetadataDefaults" && !detail.errorCode) {
      const params = detail.requestParameters as Record<string, unknown> | undefined;
      const request = (params?.ModifyInstanceMetadataDefaultsRequest ?? params) as Record<string, unknown> | undefined;
      const tokens = request?.HttpTokens;
      if (tokens === "required" || tokens === "optional" || tokens === "no-preference")
        this.account.httpTokens = tokens;
      if (request?.HttpTokensEnforced === "enabled") this.account.httpTokensEnforced = true;
      if (request?.HttpTokensEnforced === "disabled" || request?.HttpTokensEnforced === "no-preference") {
        this.account.httpTokensEnforced = false;
      }
      return;
    }
    if (detail?.eventName !== "ModifyInstanceMetadataOptions" || detail.errorCode) return;
    const params = detail.requestParameters as Record<string, Record<string, unknown> | unknown> | undefined;
    const request = (params?.ModifyInstanceMetadataOptionsRequest ?? params) as Record<string, unknown> | undefined;
    const id = request?.InstanceId ?? request?.instanceId;
    const tokens = request?.HttpTokens ?? request?.httpTokens;
    const instance = typeof id === "string" ? this.instances.get(id) : undefined;
    if (instance && (tokens === "optional" || tokens === "required")) this.setTokens(instance, tokens, Date.now());
  }

  /**
   * Starts a stopped instance (what a StartInstances call did): it runs again, with the metadata options it was
   * given while stopped, and its SSM Agent registers again after the usual delay.
   */
  startInstance(id: string, now = Date.now()): void {
    const s = this.instances.get(id);
    if (!s || (s.state !== "stopped" && s.state !== "stopping")) return;
    s.state = "running";
    s.lastLaunchTime = now;
    if (s.applyAt !== undefined) s.applyAt = now;
    this.tick(s, now);
    const registrationDelay = registrationDelayOf(s.spec);
    s.registeredAt = registrationDelay !== undefined ? now + registrationDelay * 1000 : undefined;
  }

  /** The stored JSON of every ledger item under keys starting with `prefix`, uncounted: what a run reports. */
  ledgerRecords(keyPrefix: string, attribute: string): string[] {
    return [...this.ledger.entries()]
      .filter(([key]) => key.startsWith(keyPrefix))
      .flatMap(([, items]) => [...items.values()].flatMap((item) => (item[attribute]?.S ? [item[attribute].S] : [])));
  }

  /** The instance as the simulation sees it, for tests. */
  instance(id: string): Readonly<SimInstanceState> | undefined {
    const s = this.instances.get(id);
    if (s) this.tick(s, Date.now());
    return s;
  }

  private tick(s: SimInstanceState, now: number): void {
    if (s.applyAt !== undefined && now >= s.applyAt) {
      if (s.imdsTokens !== s.httpTokens) s.tokenHistory.push({ at: s.applyAt, tokens: s.httpTokens });
      s.imdsTokens = s.httpTokens;
      s.applyAt = undefined;
    }
    if (s.spec.terminateAfterSeconds !== undefined && now >= s.launchedAt + s.spec.terminateAfterSeconds * 1000) {
      s.state = "terminated";
    }
  }

  private setTokens(s: SimInstanceState, tokens: "optional" | "required", now: number): void {
    s.httpTokens = tokens;
    s.applyAt = now + s.spec.applyDelaySeconds * 1000;
    this.tick(s, now);
  }

  /** Counts the call, then fails it as AWS would: a configured 5xx, or a throttle when its API's bucket is empty. */
  private gate(api: SimApi, now: number, bucketKey: string = api): void {
    this.calls[api]++;
    const share = this.faults.transient5xx?.[api];
    // Every n-th call fails: deterministic, so a test failure reproduces.
    if (share && share > 0 && this.calls[api] % Math.max(1, Math.round(1 / share)) === 0) {
      throw awsError("InternalError", `${api}: simulated 500`, 500);
    }
    const throttle = this.throttleFor(api, bucketKey);
    if (!throttle) return;
    let bucket = this.buckets.get(bucketKey);
    if (!bucket) {
      // Full since the account was created, as AWS's buckets are when nobody has called.
      bucket = new TokenBucket(throttle.spec, this.bucketsSince);
      this.buckets.set(bucketKey, bucket);
    }
    if (!bucket.take(now)) {
      this.throttled[api]++;
      throw throttle.error();
    }
  }

  /** The bucket an API draws on and the error it answers with when empty, or undefined when it is not throttled. */
  private throttleFor(api: SimApi, bucketKey: string): { spec: BucketSpec; error: () => Error } | undefined {
    if (this.faults.ec2Throttling && api in EC2_REQUEST_BUCKETS) {
      const spec =
        bucketKey === UNFILTERED_DESCRIBE_INSTANCES
          ? EC2_UNFILTERED_DESCRIBE_INSTANCES_BUCKET
          : EC2_REQUEST_BUCKETS[api as Ec2ThrottledApi];
      // EC2 lists RequestLimitExceeded among its server error codes, sent with HTTP 503 (test/contract).
      return { spec, error: () => awsError("RequestLimitExceeded", "Request limit exceeded.", 503) };
    }
    if (api === "SendCommand" && this.faults.sendCommandBucket) {
      return { spec: this.faults.sendCommandBucket, error: () => awsError("ThrottlingException", "Rate exceeded") };
    }
    const ledger = this.faults.ledgerThrottling;
    if ((api === "PutItem" || api === "Query") && ledger) {
      const message =
        ledger.code === "ThrottlingException"
          ? "Throughput exceeds the current throughput limit for your account."
          : "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.";
      // One bucket for the table, reads and writes alike: enough to provoke what the readers must ride out.
      return { spec: ledger.bucket, error: () => awsError(ledger.code, message) };
    }
    return undefined;
  }

  private visible(s: SimInstanceState, now: number): boolean {
    return now >= s.launchedAt + s.spec.visibleAfterSeconds * 1000;
  }

  private async describeInstances(input: DescribeInstancesCommandInput) {
    const now = Date.now();
    const unfiltered = !input.Filters?.length && input.MaxResults === undefined && input.NextToken === undefined;
    this.gate("DescribeInstances", now, unfiltered ? UNFILTERED_DESCRIBE_INSTANCES : "DescribeInstances");
    const idFilter = input.Filters?.find((f) => f.Name === "instance-id")?.Values;
    const tokenFilter = input.Filters?.find((f) => f.Name === "metadata-options.http-tokens")?.Values;
    const stateFilter = input.Filters?.find((f) => f.Name === "instance-state-name")?.Values;
    if (input.InstanceIds?.length && input.MaxResults !== undefined) {
      throw awsError(
        "InvalidParameterCombination",
        "The parameter instancesSet cannot be used with the parameter maxResults",
      );
    }
    if (input.MaxResults !== undefined && (input.MaxResults < 5 || input.MaxResults > 1000)) {
      throw awsError(
        "InvalidParameterValue",
        `Value ( ${input.MaxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
      );
    }
    const wanted = input.InstanceIds?.length ? input.InstanceIds : idFilter;
    const found: Instance[] = [];
    for (const [id, s] of this.instances) {
      if (wanted && !wanted.includes(id)) continue;
      this.tick(s, now);
      if (!this.visible(s, now)) continue;
      if (tokenFilter && !tokenFilter.includes(s.httpTokens)) continue;
      if (stateFilter && !stateFilter.includes(s.state)) continue;
      found.push(this.toInstance(s));
    }
    if (input.InstanceIds?.length) {
      const missing = input.InstanceIds.filter((id) => !found.some((i) => i.InstanceId === id));
      if (missing.length)
        throw awsError("InvalidInstanceID.NotFound", `The instance IDs '${missing.join(", ")}' do not exist`);
    }
    // At most MaxResults a page (and the simulation's own cap), so callers must follow NextToken.
    const size = Math.min(input.MaxResults ?? DESCRIBE_PAGE_LIMIT, DESCRIBE_PAGE_LIMIT);
    const start = input.NextToken ? Number(input.NextToken) : 0;
    const page = found.slice(start, start + size);
    const next = start + size < found.length ? String(start + size) : undefined;
    return { Reservations: page.map((i) => ({ Instances: [i] })), ...(next ? { NextToken: next } : {}) };
  }

  private toInstance(s: SimInstanceState): Instance {
    return {
      InstanceId: s.spec.id,
      ImageId: s.spec.imageId,
      State: { Name: s.state },
      ...(s.spec.platform === "windows" ? { Platform: "Windows" as const } : {}),
      LaunchTime: new Date(s.lastLaunchTime),
      Tags: Object.entries(s.spec.tags).map(([Key, Value]) => ({ Key, Value })),
      MetadataOptions: {
        State: s.applyAt !== undefined ? "pending" : "applied",
        HttpTokens: s.httpTokens,
        HttpEndpoint: s.httpEndpoint,
        HttpPutResponseHopLimit: 2,
        HttpProtocolIpv6: "disabled",
        InstanceMetadataTags: "disabled",
      },
    };
  }

  private async modifyMetadataOptions(input: { InstanceId?: string; HttpTokens?: string }) {
    const now = Date.now();
    this.gate("ModifyInstanceMetadataOptions", now);
    const s = input.InstanceId ? this.instances.get(input.InstanceId) : undefined;
    if (!s || !this.visible(s, now)) {
      throw awsError("InvalidInstanceID.NotFound", `The instance ID '${input.InstanceId}' does not exist`);
    }
    this.tick(s, now);
    if (s.spec.modifyError) throw awsError(s.spec.modifyError, `You are not authorized to perform this operation.`);
    if (s.state === "terminated" || s.state === "shutting-down") {
      throw awsError(
        "IncorrectInstanceState",
        `The instance '${s.spec.id}' is not in a state from which it can be modified.`,
      );
    }
    if (s.httpEndpoint === "disabled" && input.HttpTokens) {
      throw awsError("InvalidParameterCombination", "HttpTokens cannot be set while the HTTP endpoint is disabled.");
    }
    if (input.HttpTokens === "required" || input.HttpTokens === "optional") {
      this.setTokens(s, input.HttpTokens, now);
      this.modifiedInstanceIds.push(s.spec.id);
    }
    return {
      InstanceId: s.spec.id,
      InstanceMetadataOptions: this.toInstance(s).MetadataOptions,
    };
  }

  private online(s: SimInstanceState, now: number): boolean {
    this.tick(s, now);
    return s.state === "running" && s.registeredAt !== undefined && now >= s.registeredAt;
  }

  private async describeInstanceInformation(input: { Filters?: { Key?: string; Values?: string[] }[] }) {
    const now = Date.now();
    this.gate("DescribeInstanceInformation", now);
    const ids = input.Filters?.find((f) => f.Key === "InstanceIds")?.Values ?? [...this.instances.keys()];
    const list = [];
    for (const id of ids) {
      const s = this.instances.get(id);
      if (!s || s.registeredAt === undefined || now < s.registeredAt) continue;
      list.push({
        InstanceId: id,
        PingStatus: this.online(s, now) ? "Online" : "ConnectionLost",
        PlatformType: s.spec.platform === "windows" ? "Windows" : "Linux",
        ResourceType: "EC2Instance",
      });
    }
    return { InstanceInformationList: list };
  }

  private async sendCommand(input: {
    DocumentName?: string;
    InstanceIds?: string[];
    Parameters?: Record<string, string[]>;
  }) {
    const now = Date.now();
    this.gate("SendCommand", now);
    const ids = input.InstanceIds ?? [];
    if (ids.length === 0 || ids.length > 50)
      throw awsError("ValidationException", "InstanceIds must have 1 to 50 items");
    const script = input.Parameters?.commands?.join("\n") ?? "";
    const expectedDocument = (platform: "linux" | "windows") =>
      platform === "windows" ? "AWS-RunPowerShellScript" : "AWS-RunShellScript";
    for (const id of ids) {
      const s = this.instances.get(id);
      if (!s || !this.online(s, now))
        throw awsError("InvalidInstanceId", `Instance ${id} is not in a valid state for the document.`);
      if (input.DocumentName !== expectedDocument(s.spec.platform)) {
        throw awsError(
          "InvalidDocument",
          `Document ${input.DocumentName} does not support platform ${s.spec.platform}`,
        );
      }
    }
    this.commandSeq++;
    const commandId = `00000000-0000-4000-8000-${String(this.commandSeq).padStart(12, "0")}`;
    const runs: Promise<void>[] = [];
    for (const id of ids) {
      const s = this.instances.get(id);
      if (!s) continue;
      const invocation: SimInvocation = {
        commandId,
        instanceId: id,
        visibleAt: now + 1000,
        doneAt: now + (s.spec.runCommand === "timed-out" ? 60_000 : 2000),
        outcome: s.spec.runCommand,
      };
      this.invocations.set(`${commandId}/${id}`, invocation);
      if (s.spec.runCommand === "ok") runs.push(this.runProbe(s, script, invocation));
    }
    // The probes run now, in real time, while simulated time holds still; the invocation shows as InProgress
    // until its simulated completion time.
    this.realWork++;
    try {
      await Promise.all(runs);
    } finally {
      this.realWork--;
    }
    return { Command: { CommandId: commandId, DocumentName: input.DocumentName, Status: "Pending" } };
  }

  private async runProbe(s: SimInstanceState, script: string, invocation: SimInvocation): Promise<void> {
    const platform = s.spec.platform;
    const view = (): ImdsOptionsView => {
      this.tick(s, Date.now());
      return {
        httpTokens: s.spec.imds === "answers-without-token" ? "optional" : s.imdsTokens,
        httpEndpoint: s.httpEndpoint,
      };
    };
    if (platform === "windows" && this.pwsh === undefined) {
      const v = view();
      const v1 = v.httpTokens === "required" ? 401 : 200;
      const v4 =
        v.httpEndpoint === "disabled"
          ? { v1: 403, v1Credentials: 403, token: 403, v2: null }
          : { v1, v1Credentials: v1, token: 200, v2: 200 };
      const v6 = { v1: null, v1Credentials: null, token: null, v2: null };
      invocation.stdout = `${JSON.stringify({ ...v4, client: "HttpWebRequest", v6, answered: ["ipv4"] })}\r\n`;
      this.probeRuns.push({ instanceId: s.spec.id, platform, stdout: invocation.stdout, source: "computed" });
      return;
    }
    // HttpProtocolIpv6 is disabled unless asked for (AWS's default), so the IPv6 endpoint closes every connection.
    const silentV6 = await startImdsEmulator(view, { host: "::1", mode: "reset" });
    const emulators: RunningImdsEmulator[] = [silentV6];
    try {
      let v4 = s.spec.imdsUrl;
      if (v4 === undefined) {
        const emulator = await startImdsEmulator(view);
        emulators.push(emulator);
        v4 = emulator.url;
      }
      const endpoints = { v4, v6: silentV6.url };
      const run =
        platform === "windows" && this.pwsh !== undefined
          ? await runWindowsProbe(this.pwsh, script, endpoints)
          : await runLinuxProbe(script, endpoints);
      invocation.stdout = run.stdout;
    } finally {
      await Promise.all(emulators.map((emulator) => emulator.close()));
    }
    this.probeRuns.push({ instanceId: s.spec.id, platform, stdout: invocation.stdout, source: "real" });
  }

  private async getCommandInvocation(input: { CommandId?: string; InstanceId?: string }) {
    const now = Date.now();
    this.gate("GetCommandInvocation", now);
    const invocation = this.invocations.get(`${input.CommandId}/${input.InstanceId}`);
    if (!invocation || now < invocation.visibleAt) {
      throw awsError("InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist)");
    }
    const base = { CommandId: invocation.commandId, InstanceId: invocation.instanceId };
    if (now < invocation.doneAt) return { ...base, Status: "InProgress", StatusDetails: "InProgress" };
    if (invocation.outcome === "failed") {
      return { ...base, Status: "Failed", StatusDetails: "Failed", ResponseCode: 1, StandardOutputContent: "" };
    }
    if (invocation.outcome === "timed-out") {
      return { ...base, Status: "TimedOut", StatusDetails: "DeliveryTimedOut", StandardOutputContent: "" };
    }
    return {
      ...base,
      Status: "Success",
      StatusDetails: "Success",
      ResponseCode: 0,
      StandardOutputContent: invocation.stdout ?? "",
    };
  }

  private async describeImages(input: DescribeImagesCommandInput) {
    this.gate("DescribeImages", Date.now());
    const ids = input.Filters?.find((f) => f.Name === "image-id")?.Values ?? input.ImageIds ?? [];
    // Every AMI the scenario's instances use exists; ImdsSupport is set only where `images` says v2.0.
    const known = new Set([...this.instances.values()].map((i) => i.spec.imageId));
    return {
      Images: ids
        .filter((id) => known.has(id) || id in this.images)
        .map((id) => ({
          ImageId: id,
          ...(this.images[id]?.imdsSupport === "v2.0" ? { ImdsSupport: "v2.0" as const } : {}),
        })),
    };
  }

  private async getMetadataDefaults() {
    this.gate("GetInstanceMetadataDefaults", Date.now());
    return {
      AccountLevel: {
        ...(this.account.httpTokens !== "no-preference" ? { HttpTokens: this.account.httpTokens } : {}),
        HttpTokensEnforced: this.account.httpTokensEnforced ? ("enabled" as const) : ("disabled" as const),
        ManagedBy: this.account.managedBy,
      },
    };
  }

  private async modifyMetadataDefaults(input: { HttpTokens?: string }) {
    this.gate("ModifyInstanceMetadataDefaults", Date.now());
    if (this.account.managedBy === "declarative-policy") {
      throw awsError("UnsupportedOperation", "The IMDS defaults are managed by a declarative policy.");
    }
    if (input.HttpTokens === "required" || input.HttpTokens === "optional" || input.HttpTokens === "no-preference") {
      this.account.httpTokens = input.HttpTokens;
    }
    return { Return: true };
  }

  /**
   * AWS/EC2 MetadataNoToken and MetadataNoTokenRejected, Sum by InstanceId: the instance's IMDSv1 callers, integrated
   * over the time its IMDS was optional (answered) or required (refused) within the window.
   */
  private async getMetricData(input: GetMetricDataCommandInput) {
    const now = Date.now();
    this.gate("GetMetricData", now);
    this.metricsRequested += input.MetricDataQueries?.length ?? 0;
    const start = input.StartTime ? new Date(input.StartTime).getTime() : now - 3_600_000;
    const end = Math.min(now, input.EndTime ? new Date(input.EndTime).getTime() : now);
    const results = (input.MetricDataQueries ?? []).map((q) => {
      const metric = q.MetricStat?.Metric;
      const id = metric?.Dimensions?.find((d) => d.Name === "InstanceId")?.Value;
      const s = id ? this.instances.get(id) : undefined;
      if (!s || metric?.Namespace !== "AWS/EC2") return { Id: q.Id, Label: q.Label, Values: [], Timestamps: [] };
      this.tick(s, now);
      const counting = metric.MetricName === "MetadataNoTokenRejected" ? "required" : "optional";
      const seconds = this.secondsWithTokens(s, counting, start, end);
      const sum = Math.round((s.spec.imdsV1CallsPerHour * seconds) / 3600);
      return sum > 0
        ? { Id: q.Id, Label: q.Label, Values: [sum], Timestamps: [new Date(start)], StatusCode: "Complete" as const }
        : { Id: q.Id, Label: q.Label, Values: [], Timestamps: [], StatusCode: "Complete" as const };
    });
    return { MetricDataResults: results };
  }

  private secondsWithTokens(s: SimInstanceState, tokens: "optional" | "required", start: number, end: number): number {
    let total = 0;
    s.tokenHistory.forEach((h, i) => {
      if (h.tokens !== tokens || s.httpEndpoint === "disabled") return;
      const until = s.tokenHistory[i + 1]?.at ?? Number.POSITIVE_INFINITY;
      total += Math.max(0, Math.min(until, end) - Math.max(h.at, start));
    });
    return total / 1000;
  }

  private async startExecution(input: StartExecutionCommandInput) {
    const now = Date.now();
    this.gate("StartExecution", now);
    const name = input.name ?? `execution-${this.calls.StartExecution}`;
    if (this.executionNames.has(name)) {
      throw awsError("ExecutionAlreadyExists", `Execution Already Exists: '${input.stateMachineArn}:${name}'`);
    }
    this.executionNames.add(name);
    this.onStartExecution?.(name, JSON.parse(input.input ?? "{}") as unknown);
    return { executionArn: `${input.stateMachineArn}:${name}`, startDate: new Date(now) };
  }

  private async sendTaskSuccess(input: SendTaskSuccessCommandInput) {
    this.gate("SendTaskSuccess", Date.now());
    const resume = input.taskToken ? this.taskTokens.get(input.taskToken) : undefined;
    if (!resume || !input.taskToken) throw awsError("TaskTimedOut", "Task Timed Out: the task is no longer waiting");
    this.taskTokens.delete(input.taskToken);
    resume(JSON.parse(input.output ?? "null") as unknown);
    return {};
  }

  /**
   * CreateSchedule, refusing what EventBridge Scheduler refuses (a name or at() it cannot read, an unknown
   * ActionAfterCompletion, a target without its role), and a target without a dead-letter queue, which AWS accepts
   * but the guard must never send: a watch Scheduler could not deliver would vanish without it.
   */
  private async createSchedule(input: CreateScheduleCommandInput) {
    this.gate("CreateSchedule", Date.now());
    const invalid = (message: string) => awsError("ValidationException", message);
    const groupName = input.GroupName ?? "default";
    if (!input.Name || !SCHEDULE_NAME.test(input.Name)) throw invalid(`Invalid schedule name: ${input.Name}`);
    if (!SCHEDULE_NAME.test(groupName)) throw invalid(`Invalid group name: ${groupName}`);
    const at = AT_EXPRESSION.exec(input.ScheduleExpression ?? "")?.[1];
    if (!at || Number.isNaN(Date.parse(`${at}Z`))) {
      throw invalid(`Invalid Schedule Expression ${input.ScheduleExpression}.`);
    }
    if ((input.ScheduleExpressionTimezone ?? "UTC") !== "UTC") {
      throw invalid("The simulated Scheduler knows only the UTC time zone");
    }
    if (!input.FlexibleTimeWindow?.Mode) throw invalid("FlexibleTimeWindow is required");
    if (input.ActionAfterCompletion !== undefined && !["NONE", "DELETE"].includes(input.ActionAfterCompletion)) {
      throw invalid(`Invalid ActionAfterCompletion ${input.ActionAfterCompletion}`);
    }
    if (!input.Target?.Arn?.startsWith("arn:") || !input.Target.RoleArn?.startsWith("arn:")) {
      throw invalid("Target.Arn and Target.RoleArn are required");
    }
    if (!/^arn:[\w-]+:sqs:/.test(input.Target.DeadLetterConfig?.Arn ?? "")) {
      throw invalid("Target.DeadLetterConfig.Arn must be an SQS queue (the guard's own rule)");
    }
    const key = `${groupName}/${input.Name}`;
    if (this.schedules.has(key)) throw awsError("ConflictException", `Schedule ${input.Name} already exists.`, 409);
    const schedule: SimSchedule = { name: input.Name, groupName, at: Date.parse(`${at}Z`), input };
    this.schedules.set(key, schedule);
    this.schedulesCreated.push(schedule);
    this.onCreateSchedule?.(schedule);
    return { ScheduleArn: `arn:aws:scheduler:eu-west-1:000000000000:schedule/${key}` };
  }

  /** A one-off schedule fired: with ActionAfterCompletion DELETE, Scheduler deletes it (no API call of ours). */
  completeSchedule(schedule: SimSchedule): void {
    if (schedule.input.ActionAfterCompletion === "DELETE")
      this.schedules.delete(`${schedule.groupName}/${schedule.name}`);
  }

  private async publish(input: PublishCommandInput) {
    const now = Date.now();
    this.gate("Publish", now);
    if (this.publishFailuresLeft > 0) {
      this.publishFailuresLeft--;
      throw awsError("InternalErrorException", "simulated SNS 500", 500);
    }
    this.published.push({ at: now, input });
    return { MessageId: `sim-${this.published.length}` };
  }
}

/**
 * Seconds from launch (or start) until the SSM Agent registers: `ssmOnlineAfterSeconds` when the scenario sets it
 * (an agent installed or a profile attached later), otherwise by `ssm`: on time, late, or never.
 */
function registrationDelayOf(spec: ScenarioInstance): number | undefined {
  return spec.ssmOnlineAfterSeconds ?? { online: 30, late: 180, none: undefined }[spec.ssm];
}

/** The simulated service an API belongs to, for routing a call to the account that answers it. */
export type SimService = "ec2" | "ssm" | "cloudwatch" | "sns" | "dynamodb" | "sfn" | "scheduler" | "securityhub";

/** A client as aws-sdk-client-mock's callsFake hands it over: its resolved configuration tells who is calling. */
export interface SimCaller {
  config: { credentials: () => Promise<{ accessKeyId: string }>; region: () => Promise<string> };
}

/** Picks the simulated account that answers a call, from the calling client (its credentials and region). */
export type SimRouter = (service: SimService, caller: () => SimCaller) => Promise<SimAccount>;

/**
 * Intercepts every client of the services the guard uses and hands each call to the account `route` picks: the one
 * account in single-account mode, or (local/sim/sim-organization.ts) the account whose credentials the client holds.
 */
export function installSimClients(route: SimRouter): { restore(): void }[] {
  // getClient answers with the client that called send() last: taken at once, before any await, or a concurrent
  // call from another account's client would be routed as if it were this one.
  const routed = (service: SimService, api: SimApi) => (input: unknown, getClient: () => unknown) => {
    const client = getClient() as SimCaller;
    return route(service, () => client).then((sim) => sim.handle(api, input));
  };
  const ec2 = mockClient(EC2Client);
  ec2.on(DescribeInstancesCommand).callsFake(routed("ec2", "DescribeInstances"));
  ec2.on(ModifyInstanceMetadataOptionsCommand).callsFake(routed("ec2", "ModifyInstanceMetadataOptions"));
  ec2.on(DescribeImagesCommand).callsFake(routed("ec2", "DescribeImages"));
  ec2.on(GetInstanceMetadataDefaultsCommand).callsFake(routed("ec2", "GetInstanceMetadataDefaults"));
  ec2.on(ModifyInstanceMetadataDefaultsCommand).callsFake(routed("ec2", "ModifyInstanceMetadataDefaults"));
  const ssm = mockClient(SSMClient);
  ssm.on(DescribeInstanceInformationCommand).callsFake(routed("ssm", "DescribeInstanceInformation"));
  ssm.on(SendCommandCommand).callsFake(routed("ssm", "SendCommand"));
  ssm.on(GetCommandInvocationCommand).callsFake(routed("ssm", "GetCommandInvocation"));
  const cloudwatch = mockClient(CloudWatchClient);
  cloudwatch.on(GetMetricDataCommand).callsFake(routed("cloudwatch", "GetMetricData"));
  const sns = mockClient(SNSClient);
  sns.on(PublishCommand).callsFake(routed("sns", "Publish"));
  const dynamodb = mockClient(DynamoDBClient);
  dynamodb.on(PutItemCommand).callsFake(routed("dynamodb", "PutItem"));
  dynamodb.on(QueryCommand).callsFake(routed("dynamodb", "Query"));
  dynamodb.on(GetItemCommand).callsFake(routed("dynamodb", "GetItem"));
  const sfn = mockClient(SFNClient);
  sfn.on(StartExecutionCommand).callsFake(routed("sfn", "StartExecution"));
  sfn.on(SendTaskSuccessCommand).callsFake(routed("sfn", "SendTaskSuccess"));
  const scheduler = mockClient(SchedulerClient);
  scheduler.on(CreateScheduleCommand).callsFake(routed("scheduler", "CreateSchedule"));
  // Security Hub answers in the caller's own account: the member's through its spoke session (local/sim/securityhub.ts).
  const securityhub = mockClient(SecurityHubClient);
  securityhub.on(BatchImportFindingsCommand).callsFake(routed("securityhub", "BatchImportFindings"));
  securityhub.on(GetFindingsCommand).callsFake(routed("securityhub", "GetFindings"));
  return [ec2, ssm, cloudwatch, sns, dynamodb, sfn, scheduler, securityhub];
}
