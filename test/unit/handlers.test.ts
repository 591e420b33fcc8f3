import { readFileSync } from "node:fs";
import { GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { PutItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import {
  DescribeInstancesCommand,
  GetInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { PublishCommand, SNSServiceException } from "@aws-sdk/client-sns";
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  GetDocumentCommand,
  SendCommandCommand,
} from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createHandler as createAssessAccount } from "../../functions/assess-account/handler.js";
import { createHandler as createCheckApplied } from "../../functions/check-applied/handler.js";
import { createHandler as createCheckManaged } from "../../functions/check-managed/handler.js";
import { createHandler as createCheckProbe } from "../../functions/check-probe/handler.js";
import { createHandler as createCheckRejected } from "../../functions/check-rejected/handler.js";
import { createHandler as createEnforce } from "../../functions/enforce/handler.js";
import { createHandler as createFinalizeBatch } from "../../functions/finalize-batch/handler.js";
import { createHandler as createNotify } from "../../functions/notify/handler.js";
import { createHandler as createResolveTargets } from "../../functions/resolve-targets/handler.js";
import { createHandler as createSendProbe } from "../../functions/send-probe/handler.js";
import type { Batch, InstanceProgress, InstanceResult } from "../../shared/domain/model.js";
import { GUARD_PROBE_DOCUMENTS } from "../../shared/probes/guard-probe-documents.js";
import type { NotifyConfig } from "../../shared/runtime/config.js";
import { logger } from "../../shared/runtime/logger.js";
import {
  batchFactory,
  cloudWatchMock,
  contractError,
  dynamoMock,
  ec2Instance,
  ec2Mock,
  enforcing,
  eventRef,
  fakeContext,
  fixtureEvent,
  GUARD_PREFIX,
  ID_A,
  ID_B,
  ID_C,
  inSlice,
  instanceIds,
  memoryBatchLedger,
  memoryEnforceIntents,
  memoryProbeSends,
  memoryResultStore,
  reservations,
  resetMocks,
  result,
  SETTINGS,
  SLACK_TOPIC_ARN,
  serviceError,
  snsMock,
  ssmMock,
  TOPIC_ARN,
} from "./support.js";

const NOW = new Date("2026-11-28T10:00:30.000Z");
const now = () => NOW;
const LEDGER_TABLE = "imdsv2-guard-dev-ledger";
const batchOf = batchFactory({ eventId: "evt-h" });

function at(stage: InstanceProgress["stage"], extra: Partial<InstanceProgress> = {}): InstanceProgress {
  return { instanceId: ID_A, stage, notes: [], stageDeadline: "2026-11-28T10:05:00.000Z", ...extra };
}

const EVENT = eventRef({ actor: "arn:aws:iam::123456789012:user/legacy-ci" });

/** What reaches Notify on the happy path: the event's work list, one batch of one instance. */
const VALID_NOTIFY_INPUT = {
  event: EVENT,
  settings: SETTINGS,
  rejected: [],
  batches: [[enforcing(ID_A)]],
};

const PASSED = result(ID_A);

/** The ledger after the Map: batch 0 stored its results. */
function ledgerWith(...batches: InstanceResult[][]) {
  return memoryResultStore({ [EVENT.eventId]: new Map(batches.map((results, index) => [index, results])) });
}

const NOTIFY_CONFIG: NotifyConfig = { topicArn: TOPIC_ARN, slackVerdicts: ["fail"] };

/** A stored batch item as DynamoDB's Query returns it. */
function ledgerItem(batchIndex: number, results: InstanceResult[]) {
  return {
    eventId: { S: EVENT.eventId },
    item: { S: `result#${String(batchIndex).padStart(5, "0")}` },
    results: { S: JSON.stringify(results) },
    expiresAt: { N: "1796000000" },
  };
}

/** The texts of the messages published, by protocol. */
function publishedDefaults(): string[] {
  return snsMock
    .commandCalls(PublishCommand)
    .map((c) => (JSON.parse(c.args[0].input.Message ?? "{}") as { default?: string }).default ?? "");
}

/** A function's exported handler as a new container builds it, with these environment variables. */
async function coldStart<T>(load: () => Promise<T>, env: Record<string, string | undefined>): Promise<T> {
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  vi.resetModules();
  return load();
}

/** Calls a handler, turning a synchronous throw (a cold start that fails) into a rejection, as Lambda reports both. */
async function invoke<T>(call: () => Promise<T>): Promise<T> {
  return call();
}

type BatchHandler = (input: unknown, context: Context) => Promise<unknown>;

const BATCH_STEPS: { step: string; handler: BatchHandler }[] = [
  { step: "Enforce", handler: createEnforce(memoryEnforceIntents().intents, now) },
  { step: "CheckApplied", handler: createCheckApplied(now) },
  { step: "CheckManaged", handler: createCheckManaged(now) },
  { step: "SendProbe", handler: createSendProbe(memoryProbeSends(), "imdsv2-guard-test-probe", now) },
  { step: "CheckProbe", handler: createCheckProbe(now) },
  { step: "FinalizeBatch", handler: createFinalizeBatch(memoryResultStore().store, now) },
];

beforeAll(() => {
  logger.setLogLevel("SILENT");
});

beforeEach(resetMocks);

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("batch step handlers: invalid input", () => {
  it.each(BATCH_STEPS)("$step refuses an instance without instanceId, naming the field", async ({ step, handler }) => {
    // Prepare
    const input = { ...batchOf([at("enforce")]), instances: [{ stage: "enforce", notes: [] }] };

    // Act
    const run = handler(input, fakeContext(step));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableInvalidInputError",
      message: expect.stringContaining("instances.0.instanceId"),
    });
    await expect(run).rejects.toThrow(step);
    expect(ec2Mock.calls().length + ssmMock.calls().length).toBe(0);
  });

  it.each(BATCH_STEPS)(
    "$step refuses an unknown stage and a bad setting, naming both fields",
    async ({ step, handler }) => {
      // Prepare
      const input = {
        ...batchOf([at("enforce")]),
        settings: { ...SETTINGS, mode: "destroy" },
        instances: [{ instanceId: ID_A, stage: "reboot", notes: [] }],
      };

      // Act
      const run = handler(input, fakeContext(step));

      // Assess
      await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
      await expect(run).rejects.toThrow("settings.mode");
      await expect(run).rejects.toThrow("instances.0.stage");
    },
  );

  it.each(BATCH_STEPS)("$step refuses a batch of more than 50 instances", async ({ step, handler }) => {
    // Prepare
    const instances = Array.from({ length: 51 }, (_, n) => ({
      ...at("done"),
      instanceId: instanceIds(51)[n] ?? "",
    }));

    // Act
    const run = handler(batchOf(instances), fakeContext(step));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableInvalidInputError",
      message: expect.stringContaining("instances"),
    });
  });

  it.each(BATCH_STEPS)("$step refuses a batch without its batchIndex, naming the field", async ({ step, handler }) => {
    // Prepare
    const { batchIndex: _batchIndex, ...input } = batchOf([at("enforce")]);

    // Act
    const run = handler(input, fakeContext(step));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableInvalidInputError",
      message: expect.stringContaining("batchIndex"),
    });
    expect(ec2Mock.calls().length + ssmMock.calls().length).toBe(0);
  });

  it.each(BATCH_STEPS)("$step refuses input that is not an object", async ({ step, handler }) => {
    // Prepare
    const input = "not a batch";

    // Act
    const run = handler(input, fakeContext(step));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
  });
});

describe("batch step handlers: valid input reaches the core", () => {
  it("Enforce modifies the instance", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).resolves(reservations(ec2Instance(ID_A)));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await createEnforce(memoryEnforceIntents().intents, now)(
      batchOf([at("enforce")]),
      fakeContext("enforce"),
    );

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand).map((c) => c.args[0].input)).toStrictEqual([
      { InstanceId: ID_A, HttpTokens: "required" },
    ]);
    expect(inSlice(out).instances[0]?.stage).toBe("await-applied");
  });

  it("CheckApplied describes the instance", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).resolves(reservations(ec2Instance(ID_A, { httpTokens: "required" })));

    // Act
    const out = await createCheckApplied(now)(batchOf([at("await-applied")]), fakeContext("check-applied"));

    // Assess
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(1);
    expect(inSlice(out).instances[0]).toMatchObject({ stage: "await-managed", appliedAt: NOW.toISOString() });
  });

  it("CheckManaged asks SSM about the instance", async () => {
    // Prepare
    ssmMock.on(DescribeInstanceInformationCommand).resolves({
      InstanceInformationList: [{ InstanceId: ID_A, PingStatus: "Online", PlatformType: "Linux" }],
    });

    // Act
    const out = await createCheckManaged(now)(batchOf([at("await-managed")]), fakeContext("check-managed"));

    // Assess
    expect(ssmMock.commandCalls(DescribeInstanceInformationCommand)).toHaveLength(1);
    expect(inSlice(out).instances[0]).toMatchObject({ stage: "send-probe", platform: "linux" });
  });

  it("SendProbe sends the probe", async () => {
    // Prepare
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-h" } });
    ssmMock.on(GetDocumentCommand).resolves({
      DocumentVersion: "1",
      Content: JSON.stringify(GUARD_PROBE_DOCUMENTS.windows.content),
    });

    // Act
    const out = await createSendProbe(
      memoryProbeSends(),
      "imdsv2-guard-test-probe",
      now,
    )(batchOf([at("send-probe", { platform: "windows" })]), fakeContext("send-probe"));

    // Assess
    expect(ssmMock.commandCalls(SendCommandCommand)[0]?.args[0].input.DocumentName).toBe(
      "imdsv2-guard-test-probe-windows",
    );
    expect(inSlice(out).instances[0]).toMatchObject({ stage: "await-probe", commandId: "cmd-h" });
  });

  it("CheckProbe reads the probe's result", async () => {
    // Prepare
    ssmMock.on(GetCommandInvocationCommand).resolves({
      Status: "Success",
      StandardOutputContent:
        '{"v1":401,"v1Credentials":401,"token":200,"v2":200,"client":"curl","v6":{"v1":null,"v1Credentials":null,"token":null,"v2":null},"answered":["ipv4"]}\n',
    });

    // Act
    const out = await createCheckProbe(now)(
      batchOf([at("await-probe", { platform: "linux", commandId: "cmd-h" })]),
      fakeContext("check-probe"),
    );

    // Assess
    expect(ssmMock.commandCalls(GetCommandInvocationCommand)[0]?.args[0].input).toEqual({
      CommandId: "cmd-h",
      InstanceId: ID_A,
    });
    expect(inSlice(out).instances[0]?.result?.verdict).toBe("pass");
  });

  it("FinalizeBatch stores one result per instance under the batch's index and returns only the counts", async () => {
    // Prepare
    const { store, puts } = memoryResultStore();
    const input = {
      ...batchOf([at("await-probe"), { ...at("done"), instanceId: ID_B, result: result(ID_B) }], { batchIndex: 3 }),
      failure: { Error: "States.Timeout", Cause: "" },
    };

    // Act
    const out = await createFinalizeBatch(store, now)(input, fakeContext("finalize-batch"));

    // Assess
    expect(puts).toEqual([
      {
        eventId: "evt-h",
        batchIndex: 3,
        results: [expect.objectContaining({ instanceId: ID_A, verdict: "error" }), result(ID_B)],
        expiresAt: Math.floor(NOW.getTime() / 1000) + 7 * 24 * 3600,
      },
    ]);
    expect(out).toEqual({
      batchIndex: 3,
      suspended: false,
      instances: 2,
      counts: { pass: 1, fail: 0, held: 0, unverified: 0, exempt: 0, skipped: 0, error: 1 },
    });
  });

  it("FinalizeBatch fails with the store's error, so the Map counts the batch as failed", async () => {
    // Prepare
    const refused = Object.assign(new Error("PutItem (results): InternalServerError"), {
      name: "RetryableServiceError",
    });
    const store = { put: () => Promise.reject(refused), load: () => Promise.resolve(new Map()) };

    // Act
    const run = createFinalizeBatch(store, now)(batchOf([at("await-probe")]), fakeContext("finalize-batch"));

    // Assess
    await expect(run).rejects.toBe(refused);
  });
});

describe("finalize-batch handler: the ledger", () => {
  it("throws NonRetryableConfigurationError naming LEDGER_TABLE_NAME when it is missing", async () => {
    // Prepare
    const { handler } = await coldStart(() => import("../../functions/finalize-batch/handler.js"), {
      LEDGER_TABLE_NAME: undefined,
    });

    // Act
    const run = invoke(() => handler(batchOf([at("await-probe")]), fakeContext("finalize-batch")));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableConfigurationError",
      message: expect.stringContaining("LEDGER_TABLE_NAME"),
    });
    expect(dynamoMock.calls()).toHaveLength(0);
  });

  it("is retried by the state machine on the retryable errors its PutItem throws (an overwrite is idempotent)", () => {
    // Prepare
    const asl = JSON.parse(readFileSync(new URL("../../infra/state-machine.asl.json", import.meta.url), "utf8")) as {
      States: { ForEachBatch: { ItemProcessor: { States: Record<string, { Retry?: { ErrorEquals: string[] }[] }> } } };
    };

    // Act
    const retried = (asl.States.ForEachBatch.ItemProcessor.States.FinalizeBatch?.Retry ?? []).flatMap(
      (r) => r.ErrorEquals,
    );

    // Assess
    expect(retried).toEqual(expect.arrayContaining(["RetryableThrottlingError", "RetryableServiceError"]));
  });

  it("puts the results into the ledger table once LEDGER_TABLE_NAME is set", async () => {
    // Prepare
    dynamoMock.on(PutItemCommand).resolves({});
    const { handler } = await coldStart(() => import("../../functions/finalize-batch/handler.js"), {
      LEDGER_TABLE_NAME: LEDGER_TABLE,
    });

    // Act
    const out = await handler(batchOf([at("await-probe")], { batchIndex: 12 }), fakeContext("finalize-batch"));

    // Assess
    const put = dynamoMock.commandCalls(PutItemCommand)[0]?.args[0].input;
    expect(put?.TableName).toBe(LEDGER_TABLE);
    expect(put?.Item?.eventId).toEqual({ S: "evt-h" });
    expect(put?.Item?.item).toEqual({ S: "result#00012" });
    expect(out).toMatchObject({ batchIndex: 12, instances: 1 });
  });
});

describe("resolve-targets handler", () => {
  it("resolves a RunInstances event with the configuration it was created with", async () => {
    // Prepare
    const handler = createResolveTargets({ settings: SETTINGS, guardRoleArnPrefix: GUARD_PREFIX, batchSize: 2 }, now);

    // Act
    const out = await handler(fixtureEvent("run-instances.json"), fakeContext("resolve-targets"));

    // Assess
    // Pointers that carry their instances until StoreWorkList has written them to the ledger.
    expect(out.batches.map((b) => [b.batchIndex, b.instances, b.inline.length])).toEqual([
      [0, 2, 2],
      [1, 1, 1],
    ]);
    expect(out.startedAt).toBe(NOW.toISOString());
  });

  it("does not throw on a malformed event", async () => {
    // Prepare
    const handler = createResolveTargets({ settings: SETTINGS, guardRoleArnPrefix: GUARD_PREFIX, batchSize: 50 }, now);

    // Act
    const out = await handler(null, fakeContext("resolve-targets"));

    // Assess
    expect(out.problem).toBeDefined();
    expect(out.notify).toBe(true);
  });

  it("throws NonRetryableConfigurationError naming GUARD_ROLE_ARN_PREFIX when it is missing", async () => {
    // Prepare
    const { handler } = await coldStart(() => import("../../functions/resolve-targets/handler.js"), {
      GUARD_ROLE_ARN_PREFIX: undefined,
      GUARD_MODE: "enforce",
    });

    // Act
    const run = invoke(() => handler(fixtureEvent("run-instances.json"), fakeContext("resolve-targets")));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableConfigurationError",
      message: expect.stringContaining("GUARD_ROLE_ARN_PREFIX"),
    });
  });

  it("throws NonRetryableConfigurationError naming BATCH_SIZE when it is out of range", async () => {
    // Prepare
    const { handler } = await coldStart(() => import("../../functions/resolve-targets/handler.js"), {
      GUARD_ROLE_ARN_PREFIX: GUARD_PREFIX,
      BATCH_SIZE: "500",
      GUARD_MODE: "enforce",
    });

    // Act
    const run = invoke(() => handler(fixtureEvent("run-instances.json"), fakeContext("resolve-targets")));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableConfigurationError",
      message: expect.stringContaining("BATCH_SIZE"),
    });
  });

  it("reads its configuration from the environment once the variables are set", async () => {
    // Prepare
    const { handler } = await coldStart(() => import("../../functions/resolve-targets/handler.js"), {
      GUARD_ROLE_ARN_PREFIX: GUARD_PREFIX,
      GUARD_MODE: "audit",
      BATCH_SIZE: "2",
      EXEMPT_TAG_KEY: "ops:keep-imdsv1",
    });

    // Act
    const resolved = await handler(fixtureEvent("run-instances.json"), fakeContext("resolve-targets"));
    const own = await handler(
      fixtureEvent("modify-instance-metadata-options-by-guard.json"),
      fakeContext("resolve-targets"),
    );

    // Assess
    expect(resolved.batches.map((b) => b.instances)).toEqual([2, 1]);
    expect(resolved.settings).toMatchObject({ mode: "audit", exemptTagKey: "ops:keep-imdsv1" });
    expect(own.ignored).toBeDefined();
    expect(own.notify).toBe(false);
  });
});

describe("notify handler", () => {
  it("publishes the report and returns the verdict and counts", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-1" });
    const handler = createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store);

    // Act
    const out = await handler(VALID_NOTIFY_INPUT, fakeContext("notify"));

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([TOPIC_ARN]);
    expect(out).toMatchObject({ verdict: "pass", messageIds: ["m-1"], counts: { pass: 1 } });
  });

  it("reports a ResolveTargets failure with the raw event", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-2" });
    const handler = createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store);
    const input = {
      resolveFailure: { Error: "NonRetryableConfigurationError", Cause: '{"errorMessage":"Invalid configuration"}' },
      rawEvent: fixtureEvent("run-instances.json"),
    };

    // Act
    const out = await handler(input, fakeContext("notify"));

    // Assess
    expect(out.verdict).toBe("error");
    expect(snsMock.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it("refuses invalid input with NonRetryableInvalidInputError naming the field", async () => {
    // Prepare
    const handler = createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store);
    const input = { ...VALID_NOTIFY_INPUT, settings: { ...SETTINGS, mode: "destroy" } };

    // Act
    const run = handler(input, fakeContext("notify"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
    await expect(run).rejects.toThrow("settings.mode");
    expect(snsMock.calls()).toHaveLength(0);
  });

  it("refuses input that is neither shape", async () => {
    // Prepare
    const handler = createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store);

    // Act
    const run = handler({ hello: "world" }, fakeContext("notify"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
    expect(snsMock.calls()).toHaveLength(0);
  });

  it("throws NonRetryableConfigurationError naming TOPIC_ARN when it is missing", async () => {
    // Prepare
    const { handler } = await coldStart(() => import("../../functions/notify/handler.js"), { TOPIC_ARN: undefined });

    // Act
    const run = invoke(() => handler(VALID_NOTIFY_INPUT, fakeContext("notify")));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableConfigurationError",
      message: expect.stringContaining("TOPIC_ARN"),
    });
    expect(snsMock.calls()).toHaveLength(0);
  });

  it("throws NonRetryableConfigurationError naming LEDGER_TABLE_NAME when it is missing", async () => {
    // Prepare
    const { handler } = await coldStart(() => import("../../functions/notify/handler.js"), {
      TOPIC_ARN: TOPIC_ARN,
      LEDGER_TABLE_NAME: undefined,
    });

    // Act
    const run = invoke(() => handler(VALID_NOTIFY_INPUT, fakeContext("notify")));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableConfigurationError",
      message: expect.stringContaining("LEDGER_TABLE_NAME"),
    });
    expect(snsMock.calls()).toHaveLength(0);
  });

  it("publishes to the configured topics once TOPIC_ARN is set, with the results read from the ledger table", async () => {
    // Prepare
    const slackTopic = SLACK_TOPIC_ARN;
    snsMock.on(PublishCommand).resolves({ MessageId: "m-3" });
    dynamoMock.on(QueryCommand).resolves({ Items: [ledgerItem(0, [PASSED])] });
    const { handler } = await coldStart(() => import("../../functions/notify/handler.js"), {
      TOPIC_ARN: TOPIC_ARN,
      SLACK_TOPIC_ARN: slackTopic,
      SLACK_VERDICTS: "pass, fail",
      LEDGER_TABLE_NAME: LEDGER_TABLE,
    });

    // Act
    const out = await handler(VALID_NOTIFY_INPUT, fakeContext("notify"));

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([TOPIC_ARN, slackTopic]);
    expect(out.messageIds).toEqual(["m-3", "m-3"]);
    expect(out).toMatchObject({ verdict: "pass", counts: { pass: 1, error: 0 } });
    expect(dynamoMock.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({
      TableName: LEDGER_TABLE,
      ExpressionAttributeValues: { ":e": { S: EVENT.eventId }, ":prefix": { S: "result#" } },
      ConsistentRead: true,
    });
  });

  it("treats an empty SLACK_TOPIC_ARN as no Slack topic", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-4" });
    dynamoMock.on(QueryCommand).resolves({ Items: [ledgerItem(0, [PASSED])] });
    const { handler } = await coldStart(() => import("../../functions/notify/handler.js"), {
      TOPIC_ARN: TOPIC_ARN,
      SLACK_TOPIC_ARN: "",
      SLACK_VERDICTS: "pass",
      LEDGER_TABLE_NAME: LEDGER_TABLE,
    });

    // Act
    await handler(VALID_NOTIFY_INPUT, fakeContext("notify"));

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([TOPIC_ARN]);
  });
});

describe("notify handler: results from the ledger", () => {
  it("reports each instance with the result its batch stored, reading the ledger for the event once", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-10" });
    const ledger = ledgerWith([PASSED], [result(ID_B, { verdict: "fail", reason: "IMDSv1 answered (200)." })]);
    const load = vi.spyOn(ledger.store, "load");
    const input = { ...VALID_NOTIFY_INPUT, batches: [[enforcing(ID_A)], [enforcing(ID_B)]] };

    // Act
    const out = await createNotify(NOTIFY_CONFIG, ledger.store)(input, fakeContext("notify"));

    // Assess
    expect(load.mock.calls).toEqual([[EVENT.eventId]]);
    expect(out).toMatchObject({ verdict: "fail", counts: { pass: 1, fail: 1, error: 0 } });
    expect(publishedDefaults()[0]).toContain(`${ID_B}: FAIL - IMDSv1 answered (200).`);
  });

  it("reports every instance of a batch that stored nothing as error, and keeps the other batches' verdicts", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-11" });
    const input = { ...VALID_NOTIFY_INPUT, batches: [[enforcing(ID_A)], [enforcing(ID_B), enforcing(ID_C)]] };

    // Act
    const out = await createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store)(input, fakeContext("notify"));

    // Assess
    expect(out).toMatchObject({ verdict: "error", counts: { pass: 1, error: 2 } });
    const text = publishedDefaults()[0] ?? "";
    for (const id of [ID_B, ID_C]) {
      expect(text).toContain(
        `${id}: ERROR - The flow failed before a verdict: this batch's child execution stored no result`,
      );
    }
    expect(text).toContain(`${ID_A}: PASS`);
  });

  it("reads the instances from the ledger, and reports a failed child's batch as error with its Error and Cause", async () => {
    // Prepare: the state holds pointers; batch 1's entry is AWS's failed-child record, which names its batch only
    // in its Input (a JSON string), placed first: a Distributed Map's result order is not documented.
    snsMock.on(PublishCommand).resolves({ MessageId: "m-15" });
    const work = memoryBatchLedger();
    await work.ledger.putWork(EVENT.eventId, 0, [enforcing(ID_A)], 1796000000);
    await work.ledger.putWork(EVENT.eventId, 1, [enforcing(ID_B), enforcing(ID_C)], 1796000000);
    const record = {
      Error: "States.DataLimitExceeded",
      Cause: 'The state "Enforce" returned "too much" \\ data',
      ExecutionArn: "arn:aws:states:eu-west-1:111122223333:express:guard/child-1:1",
      Input: JSON.stringify({ eventId: EVENT.eventId, item: { batchIndex: 1, instances: 2 } }),
      Name: "child-1",
      Status: "FAILED",
      StartDate: "2026-11-28T10:00:00.000Z",
      StopDate: "2026-11-28T10:00:05.000Z",
      StateMachineArn: "arn:aws:states:eu-west-1:111122223333:stateMachine:guard/ForEachBatch",
    };
    const input = {
      ...VALID_NOTIFY_INPUT,
      targetCount: 3,
      batches: [
        { batchIndex: 0, instances: 1 },
        { batchIndex: 1, instances: 2 },
      ],
      slice: { batches: [record, { batchIndex: 0, suspended: false, instances: 1, counts: { pass: 1 } }] },
    };

    // Act
    const out = await createNotify(
      NOTIFY_CONFIG,
      ledgerWith([PASSED]).store,
      now,
      work.ledger,
    )(input, fakeContext("notify"));

    // Assess
    expect(out).toMatchObject({ verdict: "error", counts: { pass: 1, error: 2 } });
    const text = publishedDefaults()[0] ?? "";
    for (const id of [ID_B, ID_C]) {
      expect(text).toContain(
        `${id}: ERROR - The flow failed before a verdict: this batch's child execution failed: States.DataLimitExceeded`,
      );
    }
    expect(text).toContain(`${ID_A}: PASS`);
  });

  it("names the instances it could not read from the ledger instead of reporting fewer in silence", async () => {
    // Prepare: three instances resolved, but only batch 0's work list is in the ledger.
    snsMock.on(PublishCommand).resolves({ MessageId: "m-16" });
    const work = memoryBatchLedger();
    await work.ledger.putWork(EVENT.eventId, 0, [enforcing(ID_A)], 1796000000);
    const input = {
      ...VALID_NOTIFY_INPUT,
      targetCount: 3,
      batches: [
        { batchIndex: 0, instances: 1 },
        { batchIndex: 1, instances: 2 },
      ],
    };

    // Act
    await createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store, now, work.ledger)(input, fakeContext("notify"));

    // Assess
    expect(publishedDefaults()[0]).toContain("2 of the event's 3 instances are not in this report");
  });

  it("names the Map's failure for the instances without a stored result", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-12" });
    const input = {
      ...VALID_NOTIFY_INPUT,
      batches: [[enforcing(ID_A)], [enforcing(ID_B)]],
      mapFailure: { Error: "States.ItemReaderFailed", Cause: "The Map could not run." },
    };

    // Act
    const out = await createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store)(input, fakeContext("notify"));

    // Assess
    expect(out).toMatchObject({ counts: { pass: 1, error: 1 } });
    expect(publishedDefaults()[0]).toContain(
      `${ID_B}: ERROR - The flow failed before a verdict: States.ItemReaderFailed: The Map could not run.`,
    );
  });

  it("reports an instance its batch's stored results leave out as error, so every instance has one verdict", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-13" });
    const input = { ...VALID_NOTIFY_INPUT, batches: [[enforcing(ID_A), enforcing(ID_B)]] };

    // Act
    const out = await createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store)(input, fakeContext("notify"));

    // Assess
    expect(out).toMatchObject({ verdict: "error", counts: { pass: 1, error: 1 } });
  });

  it("does not read the ledger when the event had no instances", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-14" });
    const ledger = ledgerWith();
    const load = vi.spyOn(ledger.store, "load");

    // Act
    const out = await createNotify(NOTIFY_CONFIG, ledger.store)(
      { ...VALID_NOTIFY_INPUT, batches: [] },
      fakeContext("notify"),
    );

    // Assess
    expect(load).not.toHaveBeenCalled();
    expect(out).toMatchObject({ verdict: "pass", counts: { pass: 0 } });
  });

  it("refuses the old shape, in which the Map wrote results over the work list, naming the field", async () => {
    // Prepare
    const input = { ...VALID_NOTIFY_INPUT, batches: [[PASSED]] };

    // Act
    const run = createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store)(input, fakeContext("notify"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
    await expect(run).rejects.toThrow("batches.0");
    expect(snsMock.calls()).toHaveLength(0);
  });

  it("has no notice when the ledger served every read", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-16" });

    // Act
    await createNotify(NOTIFY_CONFIG, ledgerWith([PASSED]).store)(VALID_NOTIFY_INPUT, fakeContext("notify"));

    // Assess
    expect(publishedDefaults()[0]).not.toContain("Notice:");
  });
});

describe("notify handler: the fallback when the report could not be published", () => {
  const NOTIFY_FAILURE = {
    Error: "NonRetryableAwsError",
    Cause: JSON.stringify({
      errorType: "NonRetryableAwsError",
      errorMessage: "Publish to the alert topic: InvalidParameter: Invalid parameter: Message too long",
    }),
  };

  it("publishes a short error message naming the event and the failure, without reading the ledger", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-20" });
    const ledger = ledgerWith([PASSED]);
    const load = vi.spyOn(ledger.store, "load");
    const input = { notifyFailure: NOTIFY_FAILURE, event: VALID_NOTIFY_INPUT.event };

    // Act
    const out = await createNotify(NOTIFY_CONFIG, ledger.store)(input, fakeContext("notify"));

    // Assess
    expect(load).not.toHaveBeenCalled();
    expect(out).toEqual({ verdict: "alert", messageIds: ["m-20"] });
    const published = snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({
      TopicArn: TOPIC_ARN,
      Subject: "[imdsv2-guard] ERROR: report not published - RunInstances in us-east-1",
      MessageStructure: "json",
      // `alert` passes every email filter: this message is the only sign a report was lost.
      MessageAttributes: {
        verdict: { DataType: "String", StringValue: "alert" },
        verdicts: { DataType: "String.Array", StringValue: '["alert"]' },
      },
    });
    const message = JSON.parse(published[0]?.Message ?? "{}") as { default: string; https: string };
    expect(Object.keys(message).sort()).toEqual(["default", "https"]);
    expect(message.default).toContain(`could not publish its report for RunInstances ${EVENT.eventId} (us-east-1)`);
    expect(message.default).toContain(
      "Why: NonRetryableAwsError: Publish to the alert topic: InvalidParameter: Invalid parameter: Message too long",
    );
    expect(JSON.parse(message.https)).toMatchObject({
      version: "1.0",
      source: "custom",
      content: { textType: "client-markdown", title: expect.stringContaining("report not published") },
    });
  });

  it("sends the fallback to Slack when Slack wants alerts", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-21" });
    const config = { topicArn: TOPIC_ARN, slackTopicArn: SLACK_TOPIC_ARN, slackVerdicts: ["alert"] };
    const input = { notifyFailure: NOTIFY_FAILURE, event: VALID_NOTIFY_INPUT.event };

    // Act
    await createNotify(config, ledgerWith().store)(input, fakeContext("notify"));

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([
      TOPIC_ARN,
      SLACK_TOPIC_ARN,
    ]);
  });

  it("describes the raw event when ResolveTargets could not resolve it, and escapes what it quotes", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-22" });
    const rawEvent = fixtureEvent("run-instances.json") as { detail: Record<string, unknown> };
    rawEvent.detail.eventName = "Run*Instances*\n<!channel>";
    const input = { notifyFailure: { Error: "States.Timeout" }, rawEvent };

    // Act
    await createNotify(NOTIFY_CONFIG, ledgerWith().store)(input, fakeContext("notify"));

    // Assess
    const published = snsMock.commandCalls(PublishCommand)[0]?.args[0].input;
    expect(published?.Subject).toMatch(/^\[imdsv2-guard\] ERROR: report not published - [\x20-\x7e]+$/);
    const message = JSON.parse(published?.Message ?? "{}") as { default: string; https: string };
    expect(message.default.split("\n")).toHaveLength(3);
    expect(message.default).toContain("Why: States.Timeout");
    const description = (JSON.parse(message.https) as { content: { description: string } }).content.description;
    expect(description).not.toContain("<!channel>");
    expect(description).toContain("Run\u2217Instances\u2217 &lt;!channel&gt;");
  });

  it("lets a refused fallback fail with its classified name, so the execution fails and the alarm fires", async () => {
    // Prepare
    snsMock
      .on(PublishCommand)
      .rejects(serviceError(SNSServiceException, "AuthorizationErrorException", 403, "not authorized"));
    const input = { notifyFailure: NOTIFY_FAILURE, event: VALID_NOTIFY_INPUT.event };

    // Act
    const run = createNotify(NOTIFY_CONFIG, ledgerWith().store)(input, fakeContext("notify"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableAwsError" });
  });
});

describe("governance handlers", () => {
  const REJECTED = {
    count: 1,
    instances: [{ instanceId: ID_A, rejectedCalls: 4 }],
    windowStart: "2026-11-28T10:00:30.000Z",
    windowEnd: NOW.toISOString(),
    rollbackPossible: true,
  };

  it("Enforce holds an existing instance that used IMDSv1, reading CloudWatch through the shared client", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).resolves(reservations(ec2Instance(ID_A)));
    cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: "m0", Values: [3] }] });
    const batch: Batch = { ...batchOf([at("enforce")]), trigger: "regression" };

    // Act
    const out = await createEnforce(memoryEnforceIntents().intents, now)(batch, fakeContext("enforce"));

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand)).toHaveLength(0);
    expect(inSlice(out).instances[0]?.result?.verdict).toBe("held");
  });

  it("Enforce refuses a batch without a trigger, naming the field", async () => {
    // Prepare
    const { trigger: _trigger, ...input } = batchOf([at("enforce")]);

    // Act
    const run = createEnforce(memoryEnforceIntents().intents, now)(input, fakeContext("enforce"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
    await expect(run).rejects.toThrow("trigger");
    expect(ec2Mock.calls()).toHaveLength(0);
  });

  it("AssessAccount returns the account posture and reads it once per container within five minutes", async () => {
    // Prepare
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({
      AccountLevel: { HttpTokens: "optional", HttpTokensEnforced: "disabled" },
    });
    let clock = NOW;
    const handler = createAssessAccount(() => clock);

    // Act
    const first = await handler({}, fakeContext("assess-account"));
    clock = new Date(NOW.getTime() + 60_000);
    const second = await handler({}, fakeContext("assess-account"));
    clock = new Date(NOW.getTime() + 5 * 60_000);
    await handler({}, fakeContext("assess-account"));

    // Assess
    expect(first).toEqual({ httpTokens: "optional", httpTokensEnforced: false, managedBy: "account" });
    expect(second).toEqual(first);
    expect(ec2Mock.commandCalls(GetInstanceMetadataDefaultsCommand)).toHaveLength(2);
  });

  it("AssessAccount lets a throttled read fail with its retryable name", async () => {
    // Prepare
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).rejects(contractError("ec2Throttled"));

    // Act
    const run = createAssessAccount(now)({}, fakeContext("assess-account"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "RetryableThrottlingError" });
  });

  it("CheckRejected reads MetadataNoTokenRejected and publishes the alert with the attribute verdict alert, to Slack when it wants alerts", async () => {
    // Prepare
    cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: "m0", Values: [1, 3] }] });
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: { HttpTokensEnforced: "disabled" } });
    snsMock.on(PublishCommand).resolves({ MessageId: "m-6" });
    const topics = { topicArn: TOPIC_ARN, slackTopicArn: SLACK_TOPIC_ARN, slackVerdicts: ["fail", "alert"] };
    const input = { event: EVENT, watch: { instanceIds: [ID_A], since: "2026-11-28T10:00:30.000Z", count: 1 } };

    // Act
    const out = await createCheckRejected(topics, now)(input, fakeContext("check-rejected"));

    // Assess
    const query = cloudWatchMock.commandCalls(GetMetricDataCommand)[0]?.args[0].input.MetricDataQueries?.[0];
    expect(query?.MetricStat?.Metric?.MetricName).toBe("MetadataNoTokenRejected");
    const published = snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(published.map((p) => p.TopicArn)).toEqual([TOPIC_ARN, SLACK_TOPIC_ARN]);
    expect(published[0]?.MessageAttributes?.verdict).toEqual({ DataType: "String", StringValue: "alert" });
    expect(published[0]?.Subject).toContain("ALERT");
    expect(published[0]?.Message).toContain(
      `aws ec2 modify-instance-metadata-options --region us-east-1 --instance-id ${ID_A} --http-tokens optional`,
    );
    expect(out).toEqual({ ...REJECTED, messageIds: ["m-6", "m-6"] });
  });

  it("CheckRejected publishes nothing when nothing was refused", async () => {
    // Prepare
    cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: "m0", Values: [0] }] });
    const input = { event: EVENT, watch: { instanceIds: [ID_A], since: "2026-11-28T10:00:30.000Z", count: 1 } };

    // Act
    const out = await createCheckRejected(NOTIFY_CONFIG, now)(input, fakeContext("check-rejected"));

    // Assess
    expect(out).toMatchObject({ count: 0, messageIds: [] });
    expect(snsMock.calls()).toHaveLength(0);
  });

  it("CheckRejected fails with the retryable name when the alert cannot be published, so Lambda retries it", async () => {
    // Prepare
    cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: "m0", Values: [5] }] });
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: {} });
    snsMock.on(PublishCommand).rejects(serviceError(SNSServiceException, "Throttling", 400, "Rate exceeded"));
    const input = { event: EVENT, watch: { instanceIds: [ID_A], since: "2026-11-28T10:00:30.000Z", count: 1 } };

    // Act
    const run = createCheckRejected(NOTIFY_CONFIG, now)(input, fakeContext("check-rejected"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "RetryableThrottlingError" });
  });

  it("CheckRejected sends the alert to Slack by default (SLACK_VERDICTS includes alert), from its environment", async () => {
    // Prepare
    cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: "m0", Values: [2] }] });
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: {} });
    snsMock.on(PublishCommand).resolves({ MessageId: "m-7" });
    const { handler } = await coldStart(() => import("../../functions/check-rejected/handler.js"), {
      TOPIC_ARN: TOPIC_ARN,
      SLACK_TOPIC_ARN: SLACK_TOPIC_ARN,
      SLACK_VERDICTS: undefined,
    });
    const input = { event: EVENT, watch: { instanceIds: [ID_A], since: "2026-11-28T10:00:30.000Z", count: 1 } };

    // Act
    await handler(input, fakeContext("check-rejected"));

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([
      TOPIC_ARN,
      SLACK_TOPIC_ARN,
    ]);
  });

  it("CheckRejected refuses input without a watch list, naming the field", async () => {
    // Prepare
    const input = { event: EVENT };

    // Act
    const run = createCheckRejected(NOTIFY_CONFIG, now)(input, fakeContext("check-rejected"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
    await expect(run).rejects.toThrow("watch");
    expect(cloudWatchMock.calls()).toHaveLength(0);
  });

  it("Notify returns the watch list of the instances the execution switched to required", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-5" });
    const enforcedAt = "2026-11-28T09:42:40.000Z";
    const stored = [
      result(ID_A, {
        enforcement: { kind: "set-required", was: "optional", evidence: "answered" },
        action: "set HttpTokens=required (was optional)",
        enforcedAt,
      }),
      result(ID_B, { enforcement: { kind: "already-required" }, action: "none: HttpTokens was already required" }),
    ];
    const input = { ...VALID_NOTIFY_INPUT, batches: [[enforcing(ID_A), enforcing(ID_B)]] };

    // Act
    const out = await createNotify(NOTIFY_CONFIG, ledgerWith(stored).store)(input, fakeContext("notify"));

    // Assess
    expect(out).toMatchObject({ verdict: "pass", watch: { since: enforcedAt, count: 1 } });
  });

  it("Notify no longer takes the rejected-calls alert: CheckRejected publishes it", async () => {
    // Prepare
    const handler = createNotify({ topicArn: TOPIC_ARN, slackVerdicts: ["alert"] }, ledgerWith().store);
    const input = { alert: "rejected-calls", event: EVENT, rejected: REJECTED };

    // Act
    const run = handler(input, fakeContext("notify"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
    expect(snsMock.calls()).toHaveLength(0);
  });
});
