import { readFileSync } from "node:fs";
import { Logger } from "@aws-lambda-powertools/logger";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeInstancesCommand,
  type DescribeInstancesCommandOutput,
  EC2Client,
  type Instance,
  type InstanceStateName,
  ModifyInstanceMetadataOptionsCommand,
  type Tag,
} from "@aws-sdk/client-ec2";
import { SchedulerClient } from "@aws-sdk/client-scheduler";
import { SFNClient } from "@aws-sdk/client-sfn";
import { SNSClient } from "@aws-sdk/client-sns";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { cloudwatch, ec2 } from "../../shared/aws/clients/index.js";
import type { EnforceIntents, RecordedIntent } from "../../shared/aws/enforce-intents.js";
import { imageSupportLookup } from "../../shared/aws/image-support.js";
import type { ProbeSendKey, ProbeSends } from "../../shared/aws/probe-sends.js";
import type { ResultStore } from "../../shared/aws/result-store.js";
import type { BatchLedger } from "../../shared/domain/batch-slices.js";
import { describeEnforcement, type Enforcement } from "../../shared/domain/enforcement.js";
import type {
  Batch,
  EventRef,
  FlowSettings,
  InstanceProgress,
  InstanceResult,
  Trigger,
} from "../../shared/domain/model.js";
import { DEFAULT_FLOW_SETTINGS } from "../../shared/runtime/config.js";
import type { EnforceDeps } from "../../shared/steps/enforce.js";
import { contractRowFor } from "../contract/aws-contract.js";

/** Throttling, NotFound and conditional-put errors exactly as the contract table (and the simulator) has them. */
export { contractError } from "../contract/aws-contract.js";

/**
 * What the unit tests share: the SDK mocks, one set of settings and ids, and builders for batches, EC2 instances, AWS
 * errors and Lambda contexts. Vitest loads this module once per test file, so each file has its own mocks; a file
 * resets them with `beforeEach(resetMocks)`.
 */

/** aws-sdk-client-mock stubs of every client the guard uses; they intercept the module-level clients of aws-clients.ts. */
export const ec2Mock = mockClient(EC2Client);
export const ssmMock = mockClient(SSMClient);
export const snsMock = mockClient(SNSClient);
export const cloudWatchMock = mockClient(CloudWatchClient);
export const sfnMock = mockClient(SFNClient);
export const dynamoMock = mockClient(DynamoDBClient);
export const schedulerMock = mockClient(SchedulerClient);

/** The sentence people read for what Enforce did (derived from the typed `enforcement`). */
export function actionOf(progress: { enforcement?: Enforcement | undefined }): string | undefined {
  return progress.enforcement ? describeEnforcement(progress.enforcement) : undefined;
}

export function resetMocks(): void {
  for (const mock of [ec2Mock, ssmMock, snsMock, cloudWatchMock, sfnMock, dynamoMock, schedulerMock]) mock.reset();
}

export const ID_A = "i-0a1b2c3d4e5f60001";
export const ID_B = "i-0a1b2c3d4e5f60002";
export const ID_C = "i-0a1b2c3d4e5f60003";
export const ID_D = "i-0a1b2c3d4e5f60004";

/** `count` distinct, well-formed instance ids. */
export function instanceIds(count: number): string[] {
  return Array.from({ length: count }, (_, n) => `i-0a1b2c3d4e5f${n.toString(16).padStart(5, "0")}`);
}

export const STARTED_AT = "2026-11-28T10:00:00.000Z";
export const TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:imdsv2-guard-alerts";
export const SLACK_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:imdsv2-guard-slack";
export const GUARD_PREFIX = "arn:aws:sts::123456789012:assumed-role/imdsv2-guard-dev-us-east-1-enforce/";

/** ResolveTargets' defaults: what a deploy without overrides judges instances by. */
export const SETTINGS: FlowSettings = DEFAULT_FLOW_SETTINGS;

/** A RunInstances call in us-east-1 by an SSO user, as ResolveTargets describes it. */
export function eventRef(overrides: Partial<EventRef> = {}): EventRef {
  return {
    eventId: "3b2a1c0d-9e8f-4a7b-b6c5-d4e3f2a1b0c9",
    eventName: "RunInstances",
    eventTime: "2026-11-28T09:42:11Z",
    actor:
      "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_PlatformEngineer_0a1b2c3d4e5f6a7b/jane.doe@example.com",
    account: "123456789012",
    region: "us-east-1",
    source: "cloudtrail",
    ...overrides,
  };
}

export interface BatchOptions {
  eventId?: string;
  batchIndex?: number;
  trigger?: Trigger;
  settings?: Partial<FlowSettings>;
  failure?: Batch["failure"];
}

/** A Map item as the ItemSelector builds it; `defaults` apply to every batch the returned function makes. */
export function batchFactory(defaults: BatchOptions = {}) {
  return (instances: InstanceProgress[], options: BatchOptions = {}): Batch => {
    const { settings, failure, ...rest } = { ...defaults, ...options };
    return {
      eventId: rest.eventId ?? "evt-unit",
      batchIndex: rest.batchIndex ?? 0,
      trigger: rest.trigger ?? "launch",
      settings: { ...SETTINGS, ...defaults.settings, ...settings },
      startedAt: STARTED_AT,
      instances,
      ...(failure ? { failure } : {}),
    };
  };
}

/** An instance waiting in the enforce stage, as ResolveTargets hands it over. */
export function enforcing(instanceId: string, extra: Partial<InstanceProgress> = {}): InstanceProgress {
  return { instanceId, stage: "enforce", notes: [], ...extra };
}

/** A result as FinalizeBatch stores it. */
export function result(instanceId: string, extra: Partial<InstanceResult> = {}): InstanceResult {
  return { instanceId, verdict: "pass", reason: "IMDSv1 refused (401).", warnings: [], ...extra };
}

export function only(batch: Batch, instanceId: string): InstanceProgress {
  const found = batch.instances.find((i) => i.instanceId === instanceId);
  if (!found) throw new Error(`${instanceId} is not in the batch`);
  return found;
}

/** The ISO time `seconds` after `base`. */
export function isoAfter(base: Date, seconds: number): string {
  return new Date(base.getTime() + seconds * 1000).toISOString();
}

export interface InstanceShape {
  state?: InstanceStateName;
  httpTokens?: "optional" | "required";
  optionsState?: "pending" | "applied";
  endpoint?: "enabled" | "disabled";
  /** `null`: EC2 did not say. */
  hopLimit?: number | null;
  imageId?: string;
  tags?: Tag[];
}

/** An instance as DescribeInstances returns it: running, IMDSv1 allowed and applied, hop limit 2, unless shaped. */
export function ec2Instance(instanceId: string, shape: InstanceShape = {}): Instance {
  const hopLimit = shape.hopLimit === undefined ? 2 : shape.hopLimit;
  return {
    InstanceId: instanceId,
    ...(shape.imageId ? { ImageId: shape.imageId } : {}),
    State: { Name: shape.state ?? "running" },
    MetadataOptions: {
      State: shape.optionsState ?? "applied",
      HttpTokens: shape.httpTokens ?? "optional",
      ...(hopLimit === null ? {} : { HttpPutResponseHopLimit: hopLimit }),
      HttpEndpoint: shape.endpoint ?? "enabled",
      HttpProtocolIpv6: "disabled",
      InstanceMetadataTags: "disabled",
    },
    Tags: shape.tags ?? [{ Key: "Name", Value: "web" }],
  };
}

/** A DescribeInstances page with these instances in one reservation. */
export function reservations(...instances: Instance[]): Pick<DescribeInstancesCommandOutput, "Reservations"> {
  return { Reservations: [{ Instances: instances }] };
}

/** DescribeInstances answers every call with these instances. */
export function describes(...instances: Instance[]): void {
  ec2Mock.on(DescribeInstancesCommand).resolves(reservations(...instances));
}

/** What each ModifyInstanceMetadataOptions call asked for, in order. */
export function modifyInputs() {
  return ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand).map((c) => c.args[0].input);
}

/** Enforce's collaborators: the mocked clients, a silent logger, the clock, a fresh AMI lookup, empty intents. */
export function enforceDeps(
  now: () => Date,
  imageSupport = imageSupportLookup(),
  intents: EnforceIntents = memoryEnforceIntents().intents,
): EnforceDeps {
  return { ec2, cloudwatch, logger: silentLogger("enforce-test"), now, imageSupport, intents };
}

/**
 * Enforce's intents as a list, kept across calls as the ledger keeps them; `stored` records every intent, and
 * `failing` makes every call throw (the ledger unavailable).
 */
export function memoryEnforceIntents(options: { failing?: Error } = {}) {
  const stored: { eventId: string; batchIndex: number; instances: Record<string, string>; at: string }[] = [];
  const intents: EnforceIntents = {
    async record(scope, instances, at) {
      if (options.failing) throw options.failing;
      stored.push({ ...scope, instances, at: at.toISOString() });
    },
    async recorded(scope) {
      if (options.failing) throw options.failing;
      const found = new Map<string, RecordedIntent>();
      for (const s of stored.filter((i) => i.eventId === scope.eventId && i.batchIndex === scope.batchIndex)) {
        for (const [id, was] of Object.entries(s.instances)) if (!found.has(id)) found.set(id, { was, at: s.at });
      }
      return found;
    },
  };
  return { intents, stored };
}

/** The options every SDK v3 service exception is built from. */
interface ServiceExceptionOptions {
  name: string;
  $fault: "client" | "server";
  $metadata: { httpStatusCode?: number };
  message: string;
}

/**
 * An AWS error as the SDK throws it: `exception` is the client's ServiceException class; 5xx are server faults. A
 * code the contract table knows (throttling, NotFound, conditional failures: test/contract/aws-contract.ts) must
 * come with the table's status, so the mocks cannot drift from it or from the simulator the contract test checks.
 */
export function serviceError<E>(
  exception: new (options: ServiceExceptionOptions) => E,
  name: string,
  status: number | undefined,
  message = `${name} (simulated)`,
): E {
  const row = contractRowFor(exception, name);
  if (row && status !== row.httpStatus) {
    throw new Error(
      `${name} is HTTP ${row.httpStatus} in test/contract/aws-contract.ts, not ${status}: use contractError`,
    );
  }
  return new exception({
    name,
    $fault: status !== undefined && status >= 500 ? "server" : "client",
    $metadata: status === undefined ? {} : { httpStatusCode: status },
    message,
  });
}

/** A Powertools logger that writes nothing. */
export function silentLogger(serviceName: string): Logger {
  return new Logger({ serviceName, logLevel: "SILENT" });
}

/** The Lambda context a function of this name gets. */
export function fakeContext(functionName: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: "256",
    awsRequestId: "c6af9ac6-7b61-4f2e-9a41-93e812345678",
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "2026/11/28/[$LATEST]0123456789abcdef",
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** A CloudTrail record from test/fixtures/events, parsed afresh on every call. */
export function fixtureEvent(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/events/${name}`, import.meta.url), "utf8"));
}

/** The ledger as a map, for tests of the steps around it; `puts` records every call. */
export function memoryResultStore(initial: Record<string, Map<number, InstanceResult[]>> = {}) {
  const batches = new Map(Object.entries(initial));
  const puts: { eventId: string; batchIndex: number; results: InstanceResult[]; expiresAt: number }[] = [];
  const store: ResultStore = {
    async put(eventId, batchIndex, results, expiresAt) {
      puts.push({ eventId, batchIndex, results, expiresAt });
      const forEvent = batches.get(eventId) ?? new Map<number, InstanceResult[]>();
      forEvent.set(batchIndex, results);
      batches.set(eventId, forEvent);
    },
    async load(eventId) {
      return new Map(batches.get(eventId) ?? []);
    },
  };
  return { store, puts };
}

/** SendProbe's markers in memory, with the same contract as the ledger's (shared/aws/probe-sends.ts). */
export function memoryProbeSends(): ProbeSends & { markers: Map<string, { commandId?: string }> } {
  const markers = new Map<string, { commandId?: string }>();
  const id = (key: ProbeSendKey) => [key.ledgerKey, key.batchIndex, key.platform, ...key.instanceIds].join("|");
  return {
    markers,
    async claim(key) {
      const found = markers.get(id(key));
      if (found) return found.commandId ? { claimed: false, commandId: found.commandId } : { claimed: false };
      markers.set(id(key), {});
      return { claimed: true };
    },
    async sent(key, commandId) {
      markers.set(id(key), { commandId });
    },
    async release(key) {
      markers.delete(id(key));
    },
  };
}

/** A batch step's output that stayed in its slice (not suspended to the ledger), so its instances can be read. */
export function inSlice<T extends object>(out: T): Extract<T, { instances: unknown }> {
  if (!("instances" in out)) throw new Error("the step suspended the batch: its instances are in the ledger");
  return out as Extract<T, { instances: unknown }>;
}

/** An in-memory BatchLedger (shared/domain/batch-slices.ts): the work lists and the suspended progress, by key. */
export function memoryBatchLedger() {
  const work = new Map<string, InstanceProgress[]>();
  const progress = new Map<string, Batch>();
  const ledger: BatchLedger = {
    async putWork(ledgerKey, batchIndex, instances) {
      work.set(`${ledgerKey}|${batchIndex}`, structuredClone([...instances]));
    },
    async loadWork(ledgerKey) {
      const found = new Map<number, InstanceProgress[]>();
      for (const [key, instances] of work) {
        const [k, index] = key.split("|");
        if (k === ledgerKey) found.set(Number(index), instances);
      }
      return found;
    },
    async getWork(ledgerKey, batchIndex) {
      return work.get(`${ledgerKey}|${batchIndex}`);
    },
    async putProgress(ledgerKey, batch) {
      progress.set(`${ledgerKey}|${batch.batchIndex}`, structuredClone(batch));
    },
    async getProgress(ledgerKey, batchIndex) {
      return progress.get(`${ledgerKey}|${batchIndex}`);
    },
  };
  return { ledger, work, progress };
}
