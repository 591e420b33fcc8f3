import { CloudWatchServiceException, GetMetricDataCommand, type MetricDataResult } from "@aws-sdk/client-cloudwatch";
import { GetInstanceMetadataDefaultsCommand } from "@aws-sdk/client-ec2";
import { CreateScheduleCommand, SchedulerServiceException } from "@aws-sdk/client-scheduler";
import { PublishCommand } from "@aws-sdk/client-sns";
import { beforeEach, describe, expect, it } from "vitest";
import * as z from "zod";
import { createHandler as createNotify } from "../../functions/notify/handler.js";
import { cloudwatch, ec2, scheduler } from "../../shared/aws/clients/index.js";
import { bookWatch, watchScheduleName } from "../../shared/aws/watch-schedule.js";
import type { EventRef, InstanceResult } from "../../shared/domain/model.js";
import { watchListOf } from "../../shared/domain/watch-list.js";
import { type RejectedAlertInput, rejectedCallsMessage } from "../../shared/report/rejected-calls.js";
import type { NotifyConfig, WatchScheduleConfig } from "../../shared/runtime/config.js";
import {
  type CheckRejectedInput,
  checkRejectedCalls,
  checkRejectedInputSchema as watchInputSchema,
} from "../../shared/steps/check-rejected.js";
import {
  cloudWatchMock,
  ec2Mock,
  enforcing,
  eventRef,
  fakeContext,
  ID_A,
  ID_B,
  ID_C,
  memoryResultStore,
  resetMocks,
  SETTINGS,
  schedulerMock,
  serviceError,
  silentLogger,
  snsMock,
  TOPIC_ARN,
} from "./support.js";

const logger = silentLogger("watch-test");

const SINCE = "2026-11-28T10:01:00.000Z";
const NOW = new Date("2026-11-28T10:20:00.000Z");

const EVENT: EventRef = eventRef({
  eventName: "ModifyInstanceMetadataOptions",
  eventTime: "2026-11-28T09:58:11Z",
  actor: "arn:aws:iam::123456789012:user/legacy-ci",
  region: "eu-west-1",
});

function result(instanceId: string, extra: Partial<InstanceResult>): InstanceResult {
  return { instanceId, verdict: "pass", reason: "r", warnings: [], ...extra };
}

function rejectedCalls(...perInstance: number[][]): void {
  const results: MetricDataResult[] = perInstance.map((values, n) => ({
    Id: `m${n}`,
    StatusCode: "Complete",
    Values: values,
  }));
  cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results });
}

function watchInput(instanceIds: string[]): CheckRejectedInput {
  return { event: EVENT, watch: { instanceIds, since: SINCE, count: instanceIds.length } };
}

function deps() {
  return { cloudwatch, ec2, logger, now: () => NOW };
}

function alert(
  rejected: Partial<RejectedAlertInput["rejected"]> = {},
  event: Partial<EventRef> = {},
): RejectedAlertInput {
  return {
    event: { ...EVENT, ...event },
    rejected: {
      count: 2,
      instances: [
        { instanceId: ID_A, rejectedCalls: 12 },
        { instanceId: ID_B, rejectedCalls: 1 },
      ],
      windowStart: SINCE,
      windowEnd: NOW.toISOString(),
      rollbackPossible: true,
      ...rejected,
    },
  };
}

const protocolsSchema = z.strictObject({
  default: z.string(),
  https: z.string(),
  sqs: z.string(),
  lambda: z.string(),
});
const chatbotSchema = z.looseObject({
  content: z.looseObject({ title: z.string(), description: z.string(), nextSteps: z.array(z.string()) }),
});

function protocols(input: RejectedAlertInput) {
  return protocolsSchema.parse(JSON.parse(rejectedCallsMessage(input).Message));
}

const rollback = (id: string, region = "eu-west-1") =>
  `aws ec2 modify-instance-metadata-options --region ${region} --instance-id ${id} --http-tokens optional`;

beforeEach(resetMocks);

describe("watchListOf", () => {
  it("keeps only the instances this execution switched to required, from the earliest enforcement", () => {
    // Prepare
    const results = [
      result(ID_A, {
        enforcement: { kind: "set-required", was: "optional", evidence: "answered" },
        action: "set HttpTokens=required (was optional)",
        enforcedAt: "2026-11-28T10:03:00.000Z",
      }),
      result(ID_B, {
        verdict: "unverified",
        enforcement: { kind: "set-required", was: "optional", evidence: "answered" },
        action: "set HttpTokens=required (was optional)",
        enforcedAt: "2026-11-28T10:01:00.000Z",
      }),
      result(ID_C, { enforcement: { kind: "already-required" }, action: "none: HttpTokens was already required" }),
      result("i-0a1b2c3d4e5f60004", {
        enforcement: { kind: "would-set-required", was: "optional" },
        action: "audit: would set HttpTokens=required (now optional)",
      }),
      result("i-0a1b2c3d4e5f60005", { verdict: "held", enforcement: { kind: "held" }, action: "none: held" }),
      result("i-0a1b2c3d4e5f60006", { verdict: "exempt", enforcement: { kind: "exempt" }, action: "none: exempt" }),
      result("i-0a1b2c3d4e5f60007", { verdict: "error" }),
    ];

    // Act
    const watch = watchListOf(results);

    // Assess
    expect(watch).toEqual({ instanceIds: [ID_A, ID_B], since: "2026-11-28T10:01:00.000Z", count: 2 });
  });

  it("has nothing to watch when nothing was switched", () => {
    // Prepare
    const results = [
      result(ID_A, { enforcement: { kind: "already-required" }, action: "none: HttpTokens was already required" }),
    ];

    // Act
    const watch = watchListOf(results);

    // Assess
    expect(watch.count).toBe(0);
    expect(watch.instanceIds).toEqual([]);
  });
});

describe("checkRejectedCalls", () => {
  it("sums MetadataNoTokenRejected per instance over [since, now] with one GetMetricData", async () => {
    // Prepare
    rejectedCalls([], [2, 3], [0]);
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: { HttpTokens: "optional" } });

    // Act
    const out = await checkRejectedCalls(watchInput([ID_A, ID_B, ID_C]), deps());

    // Assess
    const calls = cloudWatchMock.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.StartTime).toEqual(new Date(SINCE));
    expect(calls[0]?.EndTime).toEqual(NOW);
    const queries = calls[0]?.MetricDataQueries ?? [];
    expect(queries).toHaveLength(3);
    for (const [n, id] of [ID_A, ID_B, ID_C].entries()) {
      expect(queries[n]?.MetricStat).toMatchObject({
        Metric: {
          Namespace: "AWS/EC2",
          MetricName: "MetadataNoTokenRejected",
          Dimensions: [{ Name: "InstanceId", Value: id }],
        },
        Stat: "Sum",
      });
      expect((queries[n]?.MetricStat?.Period ?? 0) % 60).toBe(0);
    }
    expect(out).toEqual({
      count: 1,
      instances: [{ instanceId: ID_B, rejectedCalls: 5 }],
      windowStart: SINCE,
      windowEnd: NOW.toISOString(),
      rollbackPossible: true,
    });
  });

  it("follows NextToken pages and adds them up", async () => {
    // Prepare
    cloudWatchMock
      .on(GetMetricDataCommand)
      .resolvesOnce({ MetricDataResults: [{ Id: "m0", Values: [1] }], NextToken: "page-2" })
      .resolvesOnce({ MetricDataResults: [{ Id: "m0", Values: [4] }] });
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: { HttpTokens: "optional" } });

    // Act
    const out = await checkRejectedCalls(watchInput([ID_A]), deps());

    // Assess
    const tokens = cloudWatchMock.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input.NextToken);
    expect(tokens).toEqual([undefined, "page-2"]);
    expect(out.instances).toEqual([{ instanceId: ID_A, rejectedCalls: 5 }]);
  });

  it("does not read the account defaults when nothing was refused", async () => {
    // Prepare
    rejectedCalls([], [0, 0]);

    // Act
    const out = await checkRejectedCalls(watchInput([ID_A, ID_B]), deps());

    // Assess
    expect(ec2Mock.commandCalls(GetInstanceMetadataDefaultsCommand)).toHaveLength(0);
    expect(out).toMatchObject({ count: 0, instances: [], rollbackPossible: true });
  });

  it.each([
    { enforced: "enabled", possible: false },
    { enforced: "disabled", possible: true },
    { enforced: undefined, possible: true },
  ] as const)(
    "says rollback is possible: $possible when HttpTokensEnforced is $enforced",
    async ({ enforced, possible }) => {
      // Prepare
      rejectedCalls([7]);
      ec2Mock
        .on(GetInstanceMetadataDefaultsCommand)
        .resolves({ AccountLevel: { HttpTokens: "required", ...(enforced ? { HttpTokensEnforced: enforced } : {}) } });

      // Act
      const out = await checkRejectedCalls(watchInput([ID_A]), deps());

      // Assess
      expect(ec2Mock.commandCalls(GetInstanceMetadataDefaultsCommand)).toHaveLength(1);
      expect(out.rollbackPossible).toBe(possible);
      expect(out.count).toBe(1);
    },
  );

  it.each([
    { code: "Throttling", status: 400, expected: "RetryableThrottlingError" },
    { code: "InternalServiceFault", status: 500, expected: "RetryableServiceError" },
    { code: "AccessDenied", status: 403, expected: "NonRetryableAwsError" },
  ])("throws $expected when GetMetricData fails with $code", async ({ code, status, expected }) => {
    // Prepare
    const cause = new CloudWatchServiceException({
      name: code,
      $fault: status >= 500 ? "server" : "client",
      $metadata: { httpStatusCode: status },
      message: "simulated",
    });
    cloudWatchMock.on(GetMetricDataCommand).rejects(cause);

    // Act
    const run = checkRejectedCalls(watchInput([ID_A]), deps());

    // Assess
    await expect(run).rejects.toMatchObject({
      name: expected,
      message: expect.stringContaining("GetMetricData MetadataNoTokenRejected"),
      cause,
    });
  });
});

describe("rejectedCallsMessage", () => {
  it("has an ASCII subject under 100 characters and the attribute verdict alert", () => {
    // Prepare
    const input = alert();

    // Act
    const message = rejectedCallsMessage(input);

    // Assess
    expect(message.Subject).toMatch(/^[\x20-\x7e]+$/);
    expect(message.Subject.length).toBeLessThan(100);
    expect(message.Subject).toContain("ALERT");
    expect(message.MessageStructure).toBe("json");
    expect(message.MessageAttributes.verdict).toEqual({ DataType: "String", StringValue: "alert" });
    expect(message.MessageAttributes.verdicts).toEqual({ DataType: "String.Array", StringValue: '["alert"]' });
  });

  it("keeps the subject ASCII, on one line and under 100 characters whatever the region holds", () => {
    // Prepare
    const input = alert({ count: 123_456 }, { region: `eu-west-1\nSubject: PASS 🚀 ${"x".repeat(200)}` });

    // Act
    const subject = rejectedCallsMessage(input).Subject;

    // Assess
    expect(subject).toMatch(/^[\x20-\x7e]+$/);
    expect(subject.length).toBeLessThan(100);
  });

  it("gives the exact rollback command for each instance when rollback is possible", () => {
    // Prepare
    const input = alert();

    // Act
    const { default: text, https } = protocols(input);

    // Assess
    for (const body of [text]) {
      const lines = body.split("\n");
      expect(lines).toContain(`  ${rollback(ID_A)}`);
      expect(lines).toContain(`  ${rollback(ID_B)}`);
      expect(body).toContain(`- ${ID_A}: 12 refused IMDSv1 call(s)`);
      expect(body).toContain("To roll back");
      expect(body).toContain(`${SINCE} to ${NOW.toISOString()}`);
    }
    const chatbot = chatbotSchema.parse(JSON.parse(https));
    expect(chatbot.content.nextSteps).toEqual(
      expect.arrayContaining([`\`${rollback(ID_A)}\``, `\`${rollback(ID_B)}\``]),
    );
  });

  it("explains why rollback is impossible, with no rollback command, when HttpTokensEnforced is on", () => {
    // Prepare
    const input = alert({ rollbackPossible: false });

    // Act
    const message = rejectedCallsMessage(input);
    const { default: email, https } = protocols(input);

    // Assess
    expect(message.Message).not.toContain("--http-tokens optional");
    expect(email).toContain("Rollback is impossible");
    expect(email).toContain("HttpTokensEnforced is enabled");
    const chatbot = chatbotSchema.parse(JSON.parse(https));
    expect(chatbot.content.nextSteps).toEqual([expect.stringContaining("Rollback is impossible")]);
  });

  it("carries the counts and the event in the machine copy", () => {
    // Prepare
    const input = alert();

    // Act
    const { sqs, lambda } = protocols(input);

    // Assess
    for (const body of [sqs, lambda]) {
      expect(JSON.parse(body)).toEqual({
        schema: "imdsv2-guard.rejected-calls.v1",
        event: EVENT,
        ...input.rejected,
      });
    }
  });

  it.each([
    "i-0a1b2c3d4e5f60001; rm -rf /",
    "i-0a1b2c3d4e5f60001 --http-tokens optional --region us-east-1",
    "$(curl evil.example)",
    "i-0a1b2c3d4e5f6000`reboot`",
  ])("does not put a hostile instance id (%j) into a command", (hostile) => {
    // Prepare
    const input = alert({
      count: 2,
      instances: [
        { instanceId: ID_A, rejectedCalls: 3 },
        { instanceId: hostile, rejectedCalls: 4 },
      ],
    });

    // Act
    const { default: email, https } = protocols(input);

    // Assess
    const commands = email.split("\n").filter((l) => l.includes("aws ec2"));
    expect(commands).toEqual([`  ${rollback(ID_A)}`]);
    const chatbot = chatbotSchema.parse(JSON.parse(https));
    expect(chatbot.content.nextSteps.filter((s) => s.includes(hostile))).toEqual([]);
    expect(chatbot.content.description.split("\n")).toHaveLength(3);
  });

  it("does not put a malformed region into the rollback command", () => {
    // Prepare
    const input = alert({}, { region: "eu-west-1; rm -rf ~" });

    // Act
    const message = rejectedCallsMessage(input);

    // Assess
    expect(message.Message).not.toContain("--region eu-west-1; rm -rf ~");
  });
});

const WATCH_CONFIG: WatchScheduleConfig = {
  groupName: "imdsv2-guard-dev-watch",
  roleArn: "arn:aws:iam::123456789012:role/imdsv2-guard-dev-watch-scheduler",
  targetArn: "arn:aws:lambda:eu-west-1:123456789012:function:imdsv2-guard-dev-checkRejected",
  deadLetterQueueArn: "arn:aws:sqs:eu-west-1:123456789012:imdsv2-guard-dev-watch-dead-letters",
};

const schedulerError = (name: string, status: number) =>
  serviceError(SchedulerServiceException, name, status, `simulated ${name}`);

describe("bookWatch", () => {
  const booking = () =>
    bookWatch(watchInput([ID_A, ID_B]), "ledger-key-1", 900, {
      scheduler,
      config: WATCH_CONFIG,
      now: () => new Date("2026-11-28T10:20:00.250Z"),
    });

  it("books one one-off schedule that invokes CheckRejected with {event, watch} after the window, then deletes itself", async () => {
    // Prepare
    schedulerMock.on(CreateScheduleCommand).resolves({ ScheduleArn: "arn:aws:scheduler:::schedule/x" });

    // Act
    const out = await booking();

    // Assess
    const calls = schedulerMock.commandCalls(CreateScheduleCommand).map((c) => c.args[0].input);
    expect(calls).toHaveLength(1);
    const request = calls[0];
    expect(request).toMatchObject({
      Name: watchScheduleName("ledger-key-1"),
      GroupName: WATCH_CONFIG.groupName,
      // Now + 900 s, rounded up to the second: never earlier than the window.
      ScheduleExpression: "at(2026-11-28T10:35:01)",
      ScheduleExpressionTimezone: "UTC",
      FlexibleTimeWindow: { Mode: "OFF" },
      ActionAfterCompletion: "DELETE",
      Target: {
        Arn: WATCH_CONFIG.targetArn,
        RoleArn: WATCH_CONFIG.roleArn,
        DeadLetterConfig: { Arn: WATCH_CONFIG.deadLetterQueueArn },
        RetryPolicy: { MaximumEventAgeInSeconds: expect.any(Number), MaximumRetryAttempts: expect.any(Number) },
      },
    });
    expect(JSON.parse(request?.Target?.Input ?? "{}")).toEqual(watchInput([ID_A, ID_B]));
    expect(out).toEqual({ scheduleName: request?.Name, at: "2026-11-28T10:35:01", alreadyBooked: false });
  });

  it("names the schedule after the event, within Scheduler's name rules, whatever the key holds", () => {
    // Prepare
    const keys = ["ledger-key-1", "sweep#2026-11-28T09:00:00Z#eu-west-1#o-abc/123", "x".repeat(500)];

    // Act
    const names = keys.map(watchScheduleName);

    // Assess
    for (const name of names) expect(name).toMatch(/^[0-9a-zA-Z_.-]{1,64}$/);
    expect(new Set(names).size).toBe(keys.length);
    expect(watchScheduleName("ledger-key-1")).toBe(names[0]);
  });

  it("takes a ConflictException as booked: an earlier attempt of the same Notify made this schedule", async () => {
    // Prepare
    schedulerMock.on(CreateScheduleCommand).rejects(schedulerError("ConflictException", 409));

    // Act
    const out = await booking();

    // Assess
    expect(out).toMatchObject({ scheduleName: watchScheduleName("ledger-key-1"), alreadyBooked: true });
  });

  it.each([
    { code: "ThrottlingException", status: 400, expected: "RetryableThrottlingError" },
    { code: "InternalServerException", status: 500, expected: "RetryableServiceError" },
    { code: "ValidationException", status: 400, expected: "NonRetryableAwsError" },
  ])("throws $expected when CreateSchedule fails with $code", async ({ code, status, expected }) => {
    // Prepare
    schedulerMock.on(CreateScheduleCommand).rejects(schedulerError(code, status));

    // Act
    const run = booking();

    // Assess
    await expect(run).rejects.toMatchObject({ name: expected, message: expect.stringContaining("CreateSchedule") });
  });
});

describe("Notify and the watch after enforcing", () => {
  const enforcedAt = "2026-11-28T10:01:00.000Z";
  const enforced = {
    instanceId: ID_A,
    verdict: "pass" as const,
    reason: "r",
    warnings: [],
    enforcement: { kind: "set-required" as const, was: "optional" as const, evidence: "answered" as const },
    action: "set HttpTokens=required (was optional)",
    enforcedAt,
  };
  const input = {
    event: EVENT,
    settings: SETTINGS,
    rejected: [],
    batches: [[enforcing(ID_A)]],
    dedupe: { key: EVENT.eventId },
  };
  const config: NotifyConfig = { topicArn: TOPIC_ARN, slackVerdicts: ["fail"], watch: WATCH_CONFIG };
  const notify = () =>
    createNotify(config, memoryResultStore({ [EVENT.eventId]: new Map([[0, [enforced]]]) }).store, () => NOW);
  const reportText = () =>
    snsMock
      .commandCalls(PublishCommand)
      .map((c) => (JSON.parse(c.args[0].input.Message ?? "{}") as { default?: string }).default ?? "");

  it("books the watch before it publishes the report, and returns the schedule's name", async () => {
    // Prepare
    const order: string[] = [];
    schedulerMock.on(CreateScheduleCommand).callsFake(() => {
      order.push("CreateSchedule");
      return {};
    });
    snsMock.on(PublishCommand).callsFake(() => {
      order.push("Publish");
      return { MessageId: "m-1" };
    });

    // Act
    const out = await notify()(input, fakeContext("notify"));

    // Assess
    expect(order).toEqual(["CreateSchedule", "Publish"]);
    const booked = schedulerMock.commandCalls(CreateScheduleCommand);
    expect(JSON.parse(booked[0]?.args[0].input.Target?.Input ?? "{}")).toMatchObject({
      event: { eventId: EVENT.eventId },
      watch: { instanceIds: [ID_A], since: enforcedAt, count: 1 },
    });
    expect(out).toMatchObject({
      verdict: "pass",
      watch: { since: enforcedAt, count: 1 },
      watchSchedule: watchScheduleName(EVENT.eventId),
    });
    // The execution's last output: the watch's size, never its instances (they are in the schedule's input).
    expect(out).not.toHaveProperty("watch.instanceIds");
    expect(out).not.toHaveProperty("watchSchedules");
    expect(reportText()[0]).not.toContain("could not be booked");
  });

  it("watches a launch past 5,000 switched instances with one schedule per 5,000, each within Scheduler's input limit", async () => {
    // Prepare: 12,001 instances switched to IMDSv2 in one launch.
    const ids = Array.from({ length: 12_001 }, (_, i) => `i-0${i.toString(16).padStart(16, "0")}`);
    const large = new Map([[0, ids.map((instanceId) => ({ ...enforced, instanceId }))]]);
    const notifyLarge = createNotify(config, memoryResultStore({ [EVENT.eventId]: large }).store, () => NOW);
    schedulerMock.on(CreateScheduleCommand).resolves({});
    snsMock.on(PublishCommand).resolves({ MessageId: "m-1" });

    // Act
    const out = await notifyLarge({ ...input, batches: [ids.map((id) => enforcing(id))] }, fakeContext("notify"));

    // Assess
    const requests = schedulerMock.commandCalls(CreateScheduleCommand).map((c) => c.args[0].input);
    expect(requests.map((r) => r.Name)).toEqual([
      watchScheduleName(EVENT.eventId),
      watchScheduleName(`${EVENT.eventId}#watch-2`),
      watchScheduleName(`${EVENT.eventId}#watch-3`),
    ]);
    const inputs = requests.map((r) => r.Target?.Input ?? "");
    // "Quotas for EventBridge Scheduler": a target's input is at most 256 KB.
    for (const text of inputs) expect(Buffer.byteLength(text)).toBeLessThan(256 * 1024);
    const watched = inputs.map((text) => watchInputSchema.parse(JSON.parse(text)).watch);
    expect(watched.map((w) => w.count)).toEqual([5000, 5000, 2001]);
    expect(watched.flatMap((w) => w.instanceIds)).toEqual(ids);
    expect(out).toMatchObject({ watch: { count: 12_001 }, watchSchedules: 3 });
    expect(out).not.toHaveProperty("watch.instanceIds");
    expect(Buffer.byteLength(JSON.stringify(out))).toBeLessThan(2_000);
  });

  it("says which part of a large launch is unwatched when one of its schedules is refused, and books the rest", async () => {
    // Prepare: 6,000 switched instances, two schedules; Scheduler refuses the second.
    const ids = Array.from({ length: 6_000 }, (_, i) => `i-0${i.toString(16).padStart(16, "0")}`);
    const large = new Map([[0, ids.map((instanceId) => ({ ...enforced, instanceId }))]]);
    const notifyLarge = createNotify(config, memoryResultStore({ [EVENT.eventId]: large }).store, () => NOW);
    schedulerMock
      .on(CreateScheduleCommand)
      .resolvesOnce({})
      .rejectsOnce(serviceError(SchedulerServiceException, "ValidationException", 400, "input too large"));
    snsMock.on(PublishCommand).resolves({ MessageId: "m-1" });

    // Act
    const out = await notifyLarge({ ...input, batches: [ids.map((id) => enforcing(id))] }, fakeContext("notify"));

    // Assess
    expect(schedulerMock.commandCalls(CreateScheduleCommand)).toHaveLength(2);
    expect(out).toMatchObject({
      watchSchedule: watchScheduleName(EVENT.eventId),
      watchNotBooked: expect.stringContaining("ValidationException"),
    });
    expect(reportText()[0]).toMatch(/could not be booked \(.*ValidationException.*\).*the 1000 instance\(s\)/s);
  });

  it("books nothing when the watch is switched off or nothing was switched to IMDSv2", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-1" });
    const off = { ...input, settings: { ...SETTINGS, watchRejectedSeconds: 0 } };
    const nothing = createNotify(config, memoryResultStore({ [EVENT.eventId]: new Map([[0, []]]) }).store);

    // Act
    await notify()(off, fakeContext("notify"));
    await nothing(input, fakeContext("notify"));

    // Assess
    expect(schedulerMock.commandCalls(CreateScheduleCommand)).toHaveLength(0);
    expect(snsMock.commandCalls(PublishCommand)).toHaveLength(2);
  });

  it("fails with the retryable name before publishing anything when Scheduler throttles, so the retry books it", async () => {
    // Prepare
    schedulerMock.on(CreateScheduleCommand).rejects(schedulerError("ThrottlingException", 400));

    // Act
    const run = notify()(input, fakeContext("notify"));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "RetryableThrottlingError" });
    expect(snsMock.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it("still publishes the report when the watch cannot be booked, saying so and why", async () => {
    // Prepare
    schedulerMock
      .on(CreateScheduleCommand)
      .rejects(serviceError(SchedulerServiceException, "AccessDeniedException", 403, "not authorized to iam:PassRole"));
    snsMock.on(PublishCommand).resolves({ MessageId: "m-2" });

    // Act
    const out = await notify()(input, fakeContext("notify"));

    // Assess
    const [text = ""] = reportText();
    expect(text).toMatch(/Notice: The watch for refused IMDSv1 calls after enforcing could not be booked \(/);
    expect(text).toContain("AccessDeniedException");
    expect(text).toContain("iam:PassRole");
    expect(text).toContain("1 instance(s)");
    expect(out).toMatchObject({ verdict: "pass", watchNotBooked: expect.stringContaining("AccessDeniedException") });
    expect(out).not.toHaveProperty("watchSchedule");
  });

  it("says the watch is missing when no schedule is configured", async () => {
    // Prepare
    snsMock.on(PublishCommand).resolves({ MessageId: "m-3" });
    const unconfigured = createNotify(
      { topicArn: TOPIC_ARN, slackVerdicts: ["fail"] },
      memoryResultStore({ [EVENT.eventId]: new Map([[0, [enforced]]]) }).store,
    );

    // Act
    await unconfigured(input, fakeContext("notify"));

    // Assess
    expect(schedulerMock.calls()).toHaveLength(0);
    expect(reportText()[0]).toContain("could not be booked (the watch schedule is not configured");
  });
});
