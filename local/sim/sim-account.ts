import { AsyncLocalStorage } from "node:async_hooks";
import { CloudWatchClient, GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  type DescribeInstancesCommandInput,
  EC2Client,
  GetInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { CreateScheduleCommand, SchedulerClient } from "@aws-sdk/client-scheduler";
import { BatchImportFindingsCommand, GetFindingsCommand, SecurityHubClient } from "@aws-sdk/client-securityhub";
import { SendTaskSuccessCommand, SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import {
  CreateDocumentCommand,
  DescribeDocumentCommand,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  GetDocumentCommand,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import type { Scenario, ScenarioInstance } from "../runner/scenario.js";
import { type LedgerFaults, ledgerThrottle, SimLedger } from "./dynamodb.js";
import {
  type BucketSpec,
  EC2_REQUEST_BUCKETS,
  EC2_UNFILTERED_DESCRIBE_INSTANCES_BUCKET,
  type Ec2ThrottledApi,
} from "./ec2-throttling.js";
import { ec28ControlFinding, SimSecurityHub } from "./securityhub.js";
import { SimCloudWatch } from "./sim-cloudwatch.js";
import {
  awsError,
  registrationAt,
  type SimApi,
  type SimContext,
  type SimInstanceState,
  setTokens,
  startInstance,
  tick,
} from "./sim-context.js";
import { SimEc2 } from "./sim-ec2.js";
import { type SimSchedule, SimScheduler } from "./sim-scheduler.js";
import { SimSfn } from "./sim-sfn.js";
import { type SimPublished, SimSns } from "./sim-sns.js";
import { type SimProbeRun, SimSsm } from "./sim-ssm.js";
import { SimRandom, type WeatherKnobs, weatherKnobs } from "./sim-weather.js";
import { LOCAL_STACK_PROBE_DOCUMENT_PREFIX, type SimDocuments } from "./ssm-documents.js";

export type { BucketSpec } from "./ec2-throttling.js";
export type { SimApi } from "./sim-context.js";
export type { SimSchedule } from "./sim-scheduler.js";
export type { SimPublished } from "./sim-sns.js";
export type { SimProbeRun } from "./sim-ssm.js";
export type { WeatherKnobs } from "./sim-weather.js";

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

/** The ledger's faults (`ledgerThrottling`, `queryPageItems`, `ledgerUnavailable`) are documented in dynamodb.ts. */
export interface SimFaults extends LedgerFaults {
  /** Throttle each EC2 API on its own bucket, as EC2 documents them (ec2-throttling.ts): RequestLimitExceeded, 503. */
  ec2Throttling?: boolean;
  /**
   * Someone added a version to the guard's probe documents after the deploy (UpdateDocument): their latest version
   * is no longer this build's probe.
   */
  alteredProbeDocuments?: boolean;
  /** Throttle SendCommand with this bucket (ThrottlingException). */
  sendCommandBucket?: BucketSpec;
  /** Fail this share (0..1) of calls to the named APIs with a 500, deterministically spread. */
  transient5xx?: Partial<Record<SimApi, number>>;
  /** SNS Publish fails with a 500 this many times first. */
  publishFailures?: number;
  /** The seeded randomness of every variable behaviour AWS documents (sim-weather.ts); default: a fixed seed. */
  weather?: Partial<WeatherKnobs>;
  /** Not a fault: every probe's answer computed from the instance's IMDS state, not run (sim-ssm.ts). */
  computedProbes?: boolean;
}

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

/**
 * A stateful simulated AWS account behind the real SDK clients (aws-sdk-client-mock intercepts `send`): the wiring
 * of one module per service (sim-ec2.ts, sim-ssm.ts, sim-cloudwatch.ts, sim-sns.ts, sim-sfn.ts, sim-scheduler.ts;
 * each with its contract table), the account's shared instances, its gate (call counts, faults, throttles) and its
 * one seeded source of randomness (sim-weather.ts). The event ledger's DynamoDB table is answered here. Time is
 * whatever `Date.now()` says, so the runner can compress it.
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
    CreateDocument: 0,
    DescribeDocument: 0,
    GetDocument: 0,
    BatchImportFindings: 0,
    GetFindings: 0,
  };
  readonly throttled: Record<SimApi, number> = { ...this.calls };
  readonly weather: WeatherKnobs;
  readonly ec2: SimEc2;
  readonly ssm: SimSsm;
  readonly cloudwatch: SimCloudWatch;
  readonly sns: SimSns;
  readonly sfn: SimSfn;
  readonly scheduler: SimScheduler;
  private readonly context: SimContext;
  private readonly instances = new Map<string, SimInstanceState>();
  /** The event ledger table, served by dynalite (dynamodb.ts). */
  readonly ledger: SimLedger;
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
  /** One bucket per throttled API (EC2's per-API buckets, SendCommand's, the ledger's), created when first asked. */
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly mocks: { restore(): void }[] = [];
  private bucketsSince: number;

  constructor(
    instances: readonly ScenarioInstance[],
    private readonly faults: SimFaults = {},
    world: Partial<Pick<Scenario, "account" | "images">> = {},
  ) {
    const now = Date.now();
    this.weather = weatherKnobs(faults.weather);
    this.context = {
      instances: this.instances,
      gate: (api, at, bucketKey) => this.gate(api, at, bucketKey),
      random: new SimRandom(this.weather.seed),
      weather: this.weather,
    };
    const account = { httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account", ...world.account };
    this.ec2 = new SimEc2(this.context, account as Scenario["account"], world.images ?? {});
    this.ssm = new SimSsm(this.context, { computedProbes: faults.computedProbes ?? false });
    this.cloudwatch = new SimCloudWatch(this.context);
    this.sns = new SimSns(this.context, faults.publishFailures ?? 0);
    this.sfn = new SimSfn(this.context);
    this.scheduler = new SimScheduler(this.context);
    for (const spec of instances) this.addInstance(spec, now);
    this.bucketsSince = now;
    this.ledger = new SimLedger(faults);
    this.deployProbeDocuments(LOCAL_STACK_PROBE_DOCUMENT_PREFIX);
  }

  /** The account's IMDS defaults in the simulated region. */
  get account(): Scenario["account"] {
    return this.ec2.account;
  }
  get modifiedInstanceIds(): readonly string[] {
    return this.ec2.modifiedInstanceIds;
  }
  /** The account's SSM documents (ssm-documents.ts): the single-account stack's probe documents at first. */
  get documents(): SimDocuments {
    return this.ssm.documents;
  }

  /** What the stack or spoke template does in this account: creates (or updates) the guard's probe documents. */
  deployProbeDocuments(prefix: string): void {
    this.documents.deployGuardDocuments(prefix);
    if (this.faults.alteredProbeDocuments) {
      for (const platform of ["linux", "windows"]) {
        const Name = `${prefix}-${platform}`;
        const content = JSON.parse(this.documents.getDocument({ Name }).Content) as {
          mainSteps: { inputs: { runCommand: string[] } }[];
        };
        for (const step of content.mainSteps) step.inputs.runCommand.push("echo altered");
        this.documents.updateDocument({ Name, Content: JSON.stringify(content) }, true);
      }
    }
  }

  get published(): readonly SimPublished[] {
    return this.sns.published;
  }
  /** CloudWatch bills GetMetricData by the metric requested (each query), not by the call. */
  get metricsRequested(): number {
    return this.cloudwatch.metricsRequested;
  }
  get probeRuns(): readonly SimProbeRun[] {
    return this.ssm.probeRuns;
  }
  /**
   * Where pwsh is, if installed: a Windows instance then runs the real probe-windows.ps1 in it; without it, its
   * answers are computed from the same IMDS rules the emulator follows, and the run says so.
   */
  get pwsh(): string | undefined {
    return this.ssm.pwsh;
  }
  set pwsh(path: string | undefined) {
    this.ssm.pwsh = path;
  }
  /** The schedules waiting to fire, by `group/name`. */
  get schedules(): ReadonlyMap<string, SimSchedule> {
    return this.scheduler.schedules;
  }
  /** Every schedule ever created, in order (a fired one is deleted from `schedules`, not from here). */
  get schedulesCreated(): readonly SimSchedule[] {
    return this.scheduler.schedulesCreated;
  }
  /** Set by the runner: fires a schedule at its time, as EventBridge Scheduler does. */
  set onCreateSchedule(fire: ((schedule: SimSchedule) => void) | undefined) {
    this.scheduler.onCreateSchedule = fire;
  }
  /** Set by the runner: starts an execution of the state machine, as StartExecution does. */
  set onStartExecution(start: ((name: string, input: unknown) => void) | undefined) {
    this.sfn.onStartExecution = start;
  }

  /** Launches an instance now (what a RunInstances call did). */
  addInstance(spec: ScenarioInstance, now = Date.now()): void {
    const registeredAt = registrationAt(this.context, spec, now);
    this.instances.set(spec.id, {
      spec,
      state: spec.state,
      httpTokens: spec.httpTokens,
      httpEndpoint: spec.httpEndpoint,
      imdsTokens: spec.httpTokens,
      tokenHistory: [{ at: now - spec.ageHours * 3_600_000, tokens: spec.httpTokens }],
      launchedAt: now,
      lastLaunchTime: now,
      ...(registeredAt !== undefined ? { registeredAt } : {}),
    });
  }

  /** Real (wall-clock) work in flight, such as a probe running in `sh`: simulated time must not jump meanwhile. */
  get realWorkInFlight(): number {
    return this.ssm.realWorkInFlight + this.ledger.inFlight;
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
    // Each service's handler declares the input shape it reads; the SDK's command input is that shape.
    const input = request as never;
    switch (api) {
      case "DescribeInstances":
        return this.ec2.describeInstances(input, describeBucket(input));
      case "ModifyInstanceMetadataOptions":
        return this.ec2.modifyMetadataOptions(input);
      case "DescribeInstanceInformation":
        return this.ssm.describeInstanceInformation(input);
      case "SendCommand":
        return this.ssm.sendCommand(input);
      case "GetCommandInvocation":
        return this.ssm.getCommandInvocation(input);
      case "DescribeImages":
        return this.ec2.describeImages(input);
      case "GetInstanceMetadataDefaults":
        return this.ec2.getMetadataDefaults();
      case "ModifyInstanceMetadataDefaults":
        return this.ec2.modifyMetadataDefaults(input);
      case "GetMetricData":
        return this.cloudwatch.getMetricData(input);
      case "Publish":
        return this.sns.publish(input);
      case "PutItem":
      case "GetItem":
      case "Query":
        this.gate(api, Date.now(), "ledger");
        return this.ledger.answer(api, request);
      case "StartExecution":
        return this.sfn.startExecution(input);
      case "SendTaskSuccess":
        return this.sfn.sendTaskSuccess(input);
      case "CreateSchedule":
        return this.scheduler.createSchedule(input);
      case "CreateDocument":
        this.gate(api, Date.now());
        return this.documents.createDocument(input);
      case "DescribeDocument":
        this.gate(api, Date.now());
        return this.documents.describeDocument(input);
      case "GetDocument":
        this.gate(api, Date.now());
        return this.documents.getDocument(input);
      case "BatchImportFindings":
        this.gate(api, Date.now());
        return this.securityHub.batchImportFindings(input);
      case "GetFindings":
        this.gate(api, Date.now());
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
    return this.sfn.openTaskToken(token);
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
    if (instance && (tokens === "optional" || tokens === "required"))
      setTokens(this.context, instance, tokens, Date.now());
  }

  /**
   * Starts a stopped instance (what a StartInstances call did): it runs again, with the metadata options it was
   * given while stopped, and its SSM Agent registers again after the usual delay.
   */
  startInstance(id: string, now = Date.now()): void {
    const s = this.instances.get(id);
    if (s) startInstance(this.context, s, now);
  }

  /** The stored JSON of every ledger item whose key starts with `keyPrefix`, uncounted: what a run reports. */
  ledgerRecords(keyPrefix: string, attribute: string): Promise<string[]> {
    return this.ledger.records(keyPrefix, attribute);
  }

  /** The instance as the simulation sees it (the truth, not what a lagging describe shows), for tests. */
  instance(id: string): Readonly<SimInstanceState> | undefined {
    const s = this.instances.get(id);
    if (s) tick(s, Date.now());
    return s;
  }

  /** A one-off schedule fired: with ActionAfterCompletion DELETE, Scheduler deletes it (no API call of ours). */
  completeSchedule(schedule: SimSchedule): void {
    this.scheduler.completeSchedule(schedule);
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
    return ledgerThrottle(this.faults, api);
  }
}

/** The bucket a DescribeInstances draws on: its own for one with neither filter nor pagination. */
function describeBucket(input: DescribeInstancesCommandInput): string {
  const unfiltered = !input.Filters?.length && input.MaxResults === undefined && input.NextToken === undefined;
  return unfiltered ? UNFILTERED_DESCRIBE_INSTANCES : "DescribeInstances";
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
  ssm.on(CreateDocumentCommand).callsFake(routed("ssm", "CreateDocument"));
  ssm.on(DescribeDocumentCommand).callsFake(routed("ssm", "DescribeDocument"));
  ssm.on(GetDocumentCommand).callsFake(routed("ssm", "GetDocument"));
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
