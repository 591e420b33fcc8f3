import { readFileSync } from "node:fs";
import { CloudWatchClient, GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import {
  DescribeInstancesCommand,
  EC2Client,
  EC2ServiceException,
  GetInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
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
import { logger } from "../../shared/logger.js";
import type { Batch, FlowSettings, InstanceProgress } from "../../shared/model.js";

const ec2Mock = mockClient(EC2Client);
const ssmMock = mockClient(SSMClient);
const snsMock = mockClient(SNSClient);
const cloudWatchMock = mockClient(CloudWatchClient);

const STARTED_AT = "2026-11-28T10:00:00.000Z";
const NOW = new Date("2026-11-28T10:00:30.000Z");
const now = () => NOW;
const ID_A = "i-0a1b2c3d4e5f60001";
const GUARD_PREFIX = "arn:aws:sts::123456789012:assumed-role/imdsv2-guard-dev-us-east-1-enforce/";
const TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:imdsv2-guard-alerts";
const SETTINGS: FlowSettings = {
  mode: "enforce",
  exemptTagKey: "imdsv2-guard:exempt",
  applyTimeoutSeconds: 300,
  managedTimeoutSeconds: 600,
  probeTimeoutSeconds: 300,
  exemptUntilTagKey: "imdsv2-guard:exempt-until",
  onV1Usage: "hold",
  v1UsageLookbackHours: 24,
  watchRejectedSeconds: 900,
};

function fakeContext(functionName: string): Context {
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

function batchOf(instances: InstanceProgress[]): Batch {
  return { eventId: "evt-h", trigger: "launch", settings: SETTINGS, startedAt: STARTED_AT, instances };
}

function at(stage: InstanceProgress["stage"], extra: Partial<InstanceProgress> = {}): InstanceProgress {
  return { instanceId: ID_A, stage, notes: [], stageDeadline: "2026-11-28T10:05:00.000Z", ...extra };
}

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/events/${name}`, import.meta.url), "utf8"));
}

const VALID_NOTIFY_INPUT = {
  event: {
    eventId: "3b2a1c0d-9e8f-4a7b-b6c5-d4e3f2a1b0c9",
    eventName: "RunInstances",
    eventTime: "2026-11-28T09:42:11Z",
    actor: "arn:aws:iam::123456789012:user/legacy-ci",
    account: "123456789012",
    region: "us-east-1",
    source: "cloudtrail",
  },
  settings: SETTINGS,
  rejected: [],
  batches: [[{ instanceId: ID_A, verdict: "pass", reason: "IMDSv1 refused (401).", warnings: [] }]],
};

/** Calls a handler, turning a synchronous throw (a cold start that fails) into a rejection, as Lambda reports both. */
async function invoke<T>(call: () => Promise<T>): Promise<T> {
  return call();
}

type BatchHandler = (input: unknown, context: Context) => Promise<unknown>;

const BATCH_STEPS: { step: string; handler: BatchHandler }[] = [
  { step: "Enforce", handler: createEnforce(now) },
  { step: "CheckApplied", handler: createCheckApplied(now) },
  { step: "CheckManaged", handler: createCheckManaged(now) },
  { step: "SendProbe", handler: createSendProbe(now) },
  { step: "CheckProbe", handler: createCheckProbe(now) },
  { step: "FinalizeBatch", handler: createFinalizeBatch(now) },
];

beforeAll(() => {
  logger.setLogLevel("SILENT");
});

beforeEach(() => {
  ec2Mock.reset();
  ssmMock.reset();
  snsMock.reset();
  cloudWatchMock.reset();
});

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
      instanceId: `i-0a1b2c3d4e5f${n.toString(16).padStart(5, "0")}`,
    }));

    // Act
    const run = handler(batchOf(instances), fakeContext(step));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableInvalidInputError",
      message: expect.stringContaining("instances"),
    });
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
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            {
              InstanceId: ID_A,
              State: { Name: "running" },
              MetadataOptions: { HttpTokens: "optional", State: "applied" },
            },
          ],
        },
      ],
    });
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await createEnforce(now)(batchOf([at("enforce")]), fakeContext("enforce"));

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand).map((c) => c.args[0].input)).toStrictEqual([
      { InstanceId: ID_A, HttpTokens: "required" },
    ]);
    expect(out.instances[0]?.stage).toBe("await-applied");
  });

  it("CheckApplied describes the instance", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            {
              InstanceId: ID_A,
              State: { Name: "running" },
              MetadataOptions: { HttpTokens: "required", State: "applied" },
            },
          ],
        },
      ],
    });

    // Act
    const out = await createCheckApplied(now)(batchOf([at("await-applied")]), fakeContext("check-applied"));

    // Assess
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(1);
    expect(out.instances[0]).toMatchObject({ stage: "await-managed", appliedAt: NOW.toISOString() });
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
    expect(out.instances[0]).toMatchObject({ stage: "send-probe", platform: "linux" });
  });

  it("SendProbe sends the probe", async () => {
    // Prepare
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-h" } });

    // Act
    const out = await createSendProbe(now)(
      batchOf([at("send-probe", { platform: "windows" })]),
      fakeContext("send-probe"),
    );

    // Assess
    expect(ssmMock.commandCalls(SendCommandCommand)[0]?.args[0].input.DocumentName).toBe("AWS-RunPowerShellScript");
    expect(out.instances[0]).toMatchObject({ stage: "await-probe", commandId: "cmd-h" });
  });

  it("CheckProbe reads the probe's result", async () => {
    // Prepare
    ssmMock.on(GetCommandInvocationCommand).resolves({
      Status: "Success",
      StandardOutputContent: '{"v1":401,"token":200,"v2":200,"client":"curl"}\n',
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
    expect(out.instances[0]?.result?.verdict).toBe("pass");
  });

  it("FinalizeBatch returns one result per instance", async () => {
    // Prepare
    const input = { ...batchOf([at("await-probe")]), failure: { Error: "States.Timeout", Cause: "" } };

    // Act
    const out = await createFinalizeBatch(now)(input, fakeContext("finalize-batch"));

    // Assess
    expect(out).toEqual([expect.objectContaining({ instanceId: ID_A, verdict: "error" })]);
  });
});

describe("resolve-targets handler", () => {
  it("resolves a RunInstances event with the configuration it was created with", async () => {
    // Prepare
    const handler = createResolveTargets({ settings: SETTINGS, guardRoleArnPrefix: GUARD_PREFIX, batchSize: 2 }, now);

    // Act
    const out = await handler(fixture("run-instances.json"), fakeContext("resolve-targets"));

    // Assess
    expect(out.batches.map((b) => b.length)).toEqual([2, 1]);
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
    vi.stubEnv("GUARD_ROLE_ARN_PREFIX", undefined);
    vi.stubEnv("GUARD_MODE", "enforce");
    vi.resetModules();
    const { handler } = await import("../../functions/resolve-targets/handler.js");

    // Act
    const run = invoke(() => handler(fixture("run-instances.json"), fakeContext("resolve-targets")));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableConfigurationError",
      message: expect.stringContaining("GUARD_ROLE_ARN_PREFIX"),
    });
  });

  it("throws NonRetryableConfigurationError naming BATCH_SIZE when it is out of range", async () => {
    // Prepare
    vi.stubEnv("GUARD_ROLE_ARN_PREFIX", GUARD_PREFIX);
    vi.stubEnv("BATCH_SIZE", "500");
    vi.stubEnv("GUARD_MODE", "enforce");
    vi.resetModules();
    const { handler } = await import("../../functions/resolve-targets/handler.js");

    // Act
    const run = invoke(() => handler(fixture("run-instances.json"), fakeContext("resolve-targets")));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableConfigurationError",
      message: expect.stringContaining("BATCH_SIZE"),
    });
  });

  it("reads its configuration from the environment once the variables are set", async () => {
    // Prepare
    vi.stubEnv("GUARD_ROLE_ARN_PREFIX", GUARD_PREFIX);
    vi.stubEnv("GUARD_MODE", "audit");
    vi.stubEnv("BATCH_SIZE", "2");
    vi.stubEnv("EXEMPT_TAG_KEY", "ops:keep-imdsv1");
    vi.resetModules();
    const { handler } = await import("../../functions/resolve-targets/handler.js");

    // Act
    const resolved = await handler(fixture("run-instances.json"), fakeContext("resolve-targets"));
    const own = await handler(
      fixture("modify-instance-metadata-options-by-guard.json"),
      fakeContext("resolve-targets"),
    );

    // Assess
    expect(resolved.batches.map((b) => b.length)).toEqual([2, 1]);
    expect(resolved.settings).toMatchObject({ mode: "audit", exemptTagKey: "ops:keep-imdsv1" });
    expect(own.ignored).toBeDefined();
    expect(own.notify).toBe(false);
  });
});

describe("notify handler", () => {
  it("publishes the report and returns the verdict and counts", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-1" });
    const handler = createNotify({ topicArn: TOPIC_ARN, slackVerdicts: ["fail"] });

    // Act
    const out = await handler(VALID_NOTIFY_INPUT, fakeContext("notify"));

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([TOPIC_ARN]);
    expect(out).toMatchObject({ verdict: "pass", messageIds: ["m-1"], counts: { pass: 1 } });
  });

  it("reports a ResolveTargets failure with the raw event", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-2" });
    const handler = createNotify({ topicArn: TOPIC_ARN, slackVerdicts: ["fail"] });
    const input = {
      resolveFailure: { Error: "NonRetryableConfigurationError", Cause: '{"errorMessage":"Invalid configuration"}' },
      rawEvent: fixture("run-instances.json"),
    };

    // Act
    const out = await handler(input, fakeContext("notify"));

    // Assess
    expect(out.verdict).toBe("error");
    expect(snsMock.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it("refuses invalid input with NonRetryableInvalidInputError naming the field", async () => {
    // Prepare
    const handler = createNotify({ topicArn: TOPIC_ARN, slackVerdicts: ["fail"] });
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
    const handler = createNotify({ topicArn: TOPIC_ARN, slackVerdicts: ["fail"] });

    // Act
    const run = handler({ hello: "world" }, fakeContext("notify"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
    expect(snsMock.calls()).toHaveLength(0);
  });

  it("throws NonRetryableConfigurationError naming TOPIC_ARN when it is missing", async () => {
    // Prepare
    vi.stubEnv("TOPIC_ARN", undefined);
    vi.resetModules();
    const { handler } = await import("../../functions/notify/handler.js");

    // Act
    const run = invoke(() => handler(VALID_NOTIFY_INPUT, fakeContext("notify")));

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableConfigurationError",
      message: expect.stringContaining("TOPIC_ARN"),
    });
    expect(snsMock.calls()).toHaveLength(0);
  });

  it("publishes to the configured topics once TOPIC_ARN is set", async () => {
    // Prepare
    const slackTopic = "arn:aws:sns:us-east-1:123456789012:imdsv2-guard-slack";
    vi.stubEnv("TOPIC_ARN", TOPIC_ARN);
    vi.stubEnv("SLACK_TOPIC_ARN", slackTopic);
    vi.stubEnv("SLACK_VERDICTS", "pass, fail");
    vi.resetModules();
    snsMock.on(PublishCommand).resolves({ MessageId: "m-3" });
    const { handler } = await import("../../functions/notify/handler.js");

    // Act
    const out = await handler(VALID_NOTIFY_INPUT, fakeContext("notify"));

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([TOPIC_ARN, slackTopic]);
    expect(out.messageIds).toEqual(["m-3", "m-3"]);
  });

  it("treats an empty SLACK_TOPIC_ARN as no Slack topic", async () => {
    // Prepare
    vi.stubEnv("TOPIC_ARN", TOPIC_ARN);
    vi.stubEnv("SLACK_TOPIC_ARN", "");
    vi.stubEnv("SLACK_VERDICTS", "pass");
    vi.resetModules();
    snsMock.on(PublishCommand).resolves({ MessageId: "m-4" });
    const { handler } = await import("../../functions/notify/handler.js");

    // Act
    await handler(VALID_NOTIFY_INPUT, fakeContext("notify"));

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([TOPIC_ARN]);
  });
});

describe("governance handlers", () => {
  const EVENT = VALID_NOTIFY_INPUT.event;
  const REJECTED = {
    count: 1,
    instances: [{ instanceId: ID_A, rejectedCalls: 4 }],
    windowStart: "2026-11-28T10:00:30.000Z",
    windowEnd: NOW.toISOString(),
    rollbackPossible: true,
  };

  it("Enforce holds an existing instance that used IMDSv1, reading CloudWatch through the shared client", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [
        { Instances: [{ InstanceId: ID_A, State: { Name: "running" }, MetadataOptions: { HttpTokens: "optional" } }] },
      ],
    });
    cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: "m0", Values: [3] }] });
    const batch: Batch = { ...batchOf([at("enforce")]), trigger: "regression" };

    // Act
    const out = await createEnforce(now)(batch, fakeContext("enforce"));

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand)).toHaveLength(0);
    expect(out.instances[0]?.result?.verdict).toBe("held");
  });

  it("Enforce refuses a batch without a trigger, naming the field", async () => {
    // Prepare
    const { trigger: _trigger, ...input } = batchOf([at("enforce")]);

    // Act
    const run = createEnforce(now)(input, fakeContext("enforce"));

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
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).rejects(
      new EC2ServiceException({
        name: "RequestLimitExceeded",
        $fault: "client",
        $metadata: { httpStatusCode: 503 },
        message: "Request limit exceeded.",
      }),
    );

    // Act
    const run = createAssessAccount(now)({}, fakeContext("assess-account"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "RetryableThrottlingError" });
  });

  it("CheckRejected reads MetadataNoTokenRejected for the watched instances", async () => {
    // Prepare
    cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: "m0", Values: [1, 3] }] });
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: { HttpTokensEnforced: "enabled" } });
    const input = { event: EVENT, watch: { instanceIds: [ID_A], since: "2026-11-28T10:00:30.000Z", count: 1 } };

    // Act
    const out = await createCheckRejected(now)(input, fakeContext("check-rejected"));

    // Assess
    const query = cloudWatchMock.commandCalls(GetMetricDataCommand)[0]?.args[0].input.MetricDataQueries?.[0];
    expect(query?.MetricStat?.Metric?.MetricName).toBe("MetadataNoTokenRejected");
    expect(out).toEqual({ ...REJECTED, rollbackPossible: false });
  });

  it("CheckRejected refuses input without a watch list, naming the field", async () => {
    // Prepare
    const input = { event: EVENT };

    // Act
    const run = createCheckRejected(now)(input, fakeContext("check-rejected"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
    await expect(run).rejects.toThrow("watch");
    expect(cloudWatchMock.calls()).toHaveLength(0);
  });

  it("Notify returns the watch list of the instances the execution switched to required", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-5" });
    const enforcedAt = "2026-11-28T09:42:40.000Z";
    const input = {
      ...VALID_NOTIFY_INPUT,
      batches: [
        [
          {
            instanceId: ID_A,
            verdict: "pass",
            reason: "IMDSv1 refused (401).",
            warnings: [],
            action: "set HttpTokens=required (was optional)",
            enforcedAt,
          },
          {
            instanceId: "i-0a1b2c3d4e5f60002",
            verdict: "pass",
            reason: "IMDSv1 refused (401).",
            warnings: [],
            action: "none: HttpTokens was already required",
          },
        ],
      ],
    };

    // Act
    const out = await createNotify({ topicArn: TOPIC_ARN, slackVerdicts: ["fail"] })(input, fakeContext("notify"));

    // Assess
    expect(out).toMatchObject({ verdict: "pass", watch: { instanceIds: [ID_A], since: enforcedAt, count: 1 } });
  });

  it("Notify publishes the rejected-calls alert with the attribute verdict alert, to Slack when it wants alerts", async () => {
    // Prepare
    const slackTopic = "arn:aws:sns:us-east-1:123456789012:imdsv2-guard-slack";
    snsMock.on(PublishCommand).resolves({ MessageId: "m-6" });
    const handler = createNotify({ topicArn: TOPIC_ARN, slackTopicArn: slackTopic, slackVerdicts: ["fail", "alert"] });
    const input = { alert: "rejected-calls", event: EVENT, rejected: REJECTED };

    // Act
    const out = await handler(input, fakeContext("notify"));

    // Assess
    const published = snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(published.map((p) => p.TopicArn)).toEqual([TOPIC_ARN, slackTopic]);
    expect(published[0]?.MessageAttributes?.verdict).toEqual({ DataType: "String", StringValue: "alert" });
    expect(published[0]?.Subject).toContain("ALERT");
    expect(published[0]?.Message).toContain(
      `aws ec2 modify-instance-metadata-options --region us-east-1 --instance-id ${ID_A} --http-tokens optional`,
    );
    expect(out).toEqual({ verdict: "alert", messageIds: ["m-6", "m-6"] });
  });

  it("Notify sends the alert to Slack by default (SLACK_VERDICTS includes alert and held)", async () => {
    // Prepare
    const slackTopic = "arn:aws:sns:us-east-1:123456789012:imdsv2-guard-slack";
    vi.stubEnv("TOPIC_ARN", TOPIC_ARN);
    vi.stubEnv("SLACK_TOPIC_ARN", slackTopic);
    vi.stubEnv("SLACK_VERDICTS", undefined);
    vi.resetModules();
    snsMock.on(PublishCommand).resolves({ MessageId: "m-7" });
    const { handler } = await import("../../functions/notify/handler.js");

    // Act
    await handler({ alert: "rejected-calls", event: EVENT, rejected: REJECTED }, fakeContext("notify"));

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([TOPIC_ARN, slackTopic]);
  });

  it("Notify refuses an alert whose rejected calls are malformed, naming the field", async () => {
    // Prepare
    const handler = createNotify({ topicArn: TOPIC_ARN, slackVerdicts: ["alert"] });
    const input = { alert: "rejected-calls", event: EVENT, rejected: { ...REJECTED, rollbackPossible: "yes" } };

    // Act
    const run = handler(input, fakeContext("notify"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableInvalidInputError" });
    await expect(run).rejects.toThrow("rejected.rollbackPossible");
    expect(snsMock.calls()).toHaveLength(0);
  });
});
