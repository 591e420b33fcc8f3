import {
  InternalErrorException,
  KMSThrottlingException,
  PublishCommand,
  SNSServiceException,
  ThrottledException,
} from "@aws-sdk/client-sns";
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as z from "zod";
import { publishedBytes, SNS_MAX_MESSAGE_BYTES } from "../../local/sim/sim-sns.js";
import { sns } from "../../shared/aws/clients/index.js";
import type { AccountPosture } from "../../shared/domain/account-posture.js";
import type { EventRef, InstanceResult, Verdict } from "../../shared/domain/model.js";
import { describeOrigin, describePosture } from "../../shared/domain/root-cause.js";
import { ledgerDetail } from "../../shared/report/full-detail.js";
import {
  buildReport,
  chatbotNotification,
  type EventReport,
  type MachineReport,
  machineReport,
  mergeReportParts,
  parseMachineReport,
  plainText,
  type SnsMessage,
  snsMessage,
  snsMessages,
  subjectLine,
} from "../../shared/report/report.js";
import { markdownSafe } from "../../shared/report/text-safety.js";
import type { NotifyConfig } from "../../shared/runtime/config.js";
import { publish, publishReport } from "../../shared/steps/notify.js";
import { eventRef, instanceIds, SLACK_TOPIC_ARN, serviceError, silentLogger, snsMock, TOPIC_ARN } from "./support.js";

const logger = silentLogger("report-test");

const EVENT: EventRef = eventRef();

/** What a tag value could hold: markdown, a Slack mention and a line break, to forge a line of the report. */
const HOSTILE = "*bold* `code` [link](http://x) <!here> _x_ | # \n new line";
/** What Slack's mrkdwn reads as markup: formatting marks, and the reserved characters of links and mentions. */
const MRKDWN_SPECIALS = new Set(["*", "_", "`", "~", "<", ">"]);

function result(instanceId: string, verdict: Verdict, reason = `${verdict} reason`): InstanceResult {
  return { instanceId, verdict, reason, warnings: [] };
}

function reportOf(results: InstanceResult[], event: Partial<EventRef> = {}): EventReport {
  return buildReport({ event: { ...EVENT, ...event }, mode: "enforce", results, rejected: [] });
}

const chatbotSchema = z.object({
  version: z.literal("1.0"),
  source: z.literal("custom"),
  id: z.string().optional(),
  content: z.object({
    textType: z.literal("client-markdown"),
    title: z.string().min(1),
    description: z.string().min(1),
    nextSteps: z.array(z.string()),
    keywords: z.array(z.string()),
  }),
  metadata: z.object({ threadId: z.string().optional(), enableCustomActions: z.boolean().optional() }).optional(),
});

/** Email reads `default`: there is no `email` key, so the text is not carried twice. */
const protocolsSchema = z.strictObject({
  default: z.string(),
  https: z.string(),
  sqs: z.string(),
  lambda: z.string(),
});

function protocols(report: EventReport) {
  return protocolsSchema.parse(JSON.parse(snsMessage(report).Message));
}

function chatbot(report: EventReport) {
  return chatbotSchema.parse(JSON.parse(protocols(report).https));
}

/**
 * Characters Slack would read as markup: formatting marks, `<`/`>`, an `&` that starts no entity Slack asks for, and
 * a markdown link's `](`. Slack has no backslash escape, so a backslash would show as one.
 */
function unescapedSpecials(text: string): string[] {
  const found = [...text].filter((c) => MRKDWN_SPECIALS.has(c) || c === "\\");
  found.push(...(text.replace(/&(amp|lt|gt);/g, "").match(/&/g) ?? []));
  if (text.includes("](")) found.push("](");
  return found;
}

describe("subjectLine", () => {
  it.each([
    { label: "a plain name", eventName: "RunInstances" },
    { label: "line breaks", eventName: "Run\nInstances\r\nSubject: PASS\u2028x" },
    { label: "non-ASCII", eventName: "Ünïcödé 🚀 名前 — ModifyInstanceMetadataOptions" },
    { label: "control characters", eventName: "\u0000\u0007\u001b[31mred\u007f\u0085" },
    { label: "a very long name", eventName: "X".repeat(500) },
  ])("is ASCII, one line and under 100 characters with $label", ({ eventName }) => {
    // Prepare
    const report = reportOf([result("i-0a1b2c3d4e5f60001", "fail")], { eventName });

    // Act
    const subject = subjectLine(report);

    // Assess
    expect(subject).toMatch(/^[\x20-\x7e]+$/);
    expect(subject.length).toBeLessThan(100);
    expect(subject).not.toMatch(/[\r\n]/);
    expect(subject.startsWith("[imdsv2-guard] FAIL: 1 of 1 instance(s)")).toBe(true);
  });

  it("says the event could not be read when it has a problem", () => {
    // Prepare
    const report = buildReport({
      event: EVENT,
      mode: "enforce",
      results: [],
      rejected: [],
      problem: "Event is not an EventBridge event with a `detail` object.",
    });

    // Act
    const subject = subjectLine(report);

    // Assess
    expect(subject).toBe("[imdsv2-guard] ERROR: event could not be read - RunInstances in 123456789012/us-east-1");
  });
});

describe("buildReport", () => {
  it("takes the worst verdict and counts each", () => {
    // Prepare
    const results = [
      result("i-0a1b2c3d4e5f60001", "pass"),
      result("i-0a1b2c3d4e5f60002", "unverified"),
      result("i-0a1b2c3d4e5f60003", "fail"),
      result("i-0a1b2c3d4e5f60004", "pass"),
    ];

    // Act
    const report = reportOf(results);

    // Assess
    expect(report.verdict).toBe("fail");
    expect(report.counts).toEqual({ pass: 2, fail: 1, held: 0, unverified: 1, exempt: 0, skipped: 0, error: 0 });
  });

  it("heads an event with a proven exposure FAIL, even when another instance is an error", () => {
    // Prepare: one instance still answers IMDSv1 (fail), the guard could not finish another (error).
    const report = reportOf([
      result("i-0a1b2c3d4e5f60001", "error"),
      result("i-0a1b2c3d4e5f60002", "fail"),
      result("i-0a1b2c3d4e5f60003", "pass"),
    ]);

    // Act
    const subject = subjectLine(report);
    const title = chatbot(report).content.title;
    const rows = chatbot(report)
      .content.description.split("\n")
      .filter((l) => l.startsWith("• "));

    // Assess
    expect(report.verdict).toBe("fail");
    expect(subject.startsWith("[imdsv2-guard] FAIL: 1 of 3 instance(s)")).toBe(true);
    expect(title).toContain("FAIL");
    expect(rows.map((r) => /\*(\w+)\*/.exec(r)?.[1])).toEqual(["fail", "error", "pass"]);
    expect(snsMessage(report).MessageAttributes.verdict?.StringValue).toBe("fail");
  });

  it("reports rejected instance ids as errors", () => {
    // Prepare
    const rejected = [{ value: '"i-bogus"', reason: "not an instance id (expected ^i-[0-9a-f]{8,17}$)" }];

    // Act
    const report = buildReport({
      event: EVENT,
      mode: "enforce",
      results: [result("i-0a1b2c3d4e5f60001", "pass")],
      rejected,
    });

    // Assess
    expect(report.verdict).toBe("error");
    expect(report.results[1]).toMatchObject({ instanceId: '"i-bogus"', verdict: "error" });
  });
});

describe("snsMessage", () => {
  it("has one format per protocol in a JSON message structure", () => {
    // Prepare
    const report = reportOf([result("i-0a1b2c3d4e5f60001", "pass")]);

    // Act
    const message = snsMessage(report);

    // Assess
    expect(message.MessageStructure).toBe("json");
    expect(Object.keys(JSON.parse(message.Message)).sort()).toEqual(["default", "https", "lambda", "sqs"]);
  });

  it("gives https a valid AWS Chatbot custom notification", () => {
    // Prepare
    const report = reportOf([result("i-0a1b2c3d4e5f60001", "fail"), result("i-0a1b2c3d4e5f60002", "unverified")]);

    // Act
    const notification = chatbot(report);

    // Assess
    expect(notification.content.title).toContain("FAIL");
    expect(notification.content.nextSteps.length).toBeGreaterThan(0);
    expect(notification.content.nextSteps.length).toBeLessThanOrEqual(5);
    expect(notification.content.keywords).toEqual(expect.arrayContaining(["fail", "us-east-1", "123456789012"]));
    expect(notification.content.description).toContain("i-0a1b2c3d4e5f60001");
  });

  it("escapes markdown in a hostile reason so it cannot format or add lines to the description", () => {
    // Prepare
    const benign = reportOf([result("i-0a1b2c3d4e5f60001", "exempt", "vendor agent")]);
    const hostile = reportOf([result("i-0a1b2c3d4e5f60001", "exempt", `Exempt by tag owner: ${HOSTILE}`)]);

    // Act
    const benignLines = chatbot(benign).content.description.split("\n");
    const hostileLines = chatbot(hostile).content.description.split("\n");

    // Assess
    expect(hostileLines).toHaveLength(benignLines.length);
    const row = hostileLines.at(-1) ?? "";
    const prefix = "• `i-0a1b2c3d4e5f60001` *exempt*: ";
    expect(row.startsWith(prefix)).toBe(true);
    const reason = row.slice(prefix.length);
    expect(unescapedSpecials(reason)).toEqual([]);
    for (const shown of [
      "\u2217bold\u2217",
      "'code'",
      "[link] (http://x)",
      "&lt;!here&gt;",
      "\u02cdx\u02cd",
      "|",
      "#",
    ]) {
      expect(reason).toContain(shown);
    }
    expect(reason).toContain("new line");
  });

  it("escapes hostile warnings, event names and actors as well", () => {
    // Prepare
    const report = reportOf([{ ...result("i-0a1b2c3d4e5f60001", "pass"), warnings: [HOSTILE] }], {
      eventName: `Run${HOSTILE}`,
      actor: `arn:aws:iam::123456789012:user/${HOSTILE}`,
    });

    // Act
    const notification = chatbot(report);

    // Assess
    const lines = notification.content.description.split("\n");
    expect(lines).toHaveLength(4);
    expect(notification.content.title).not.toMatch(/[\r\n]/);
    expect(notification.content.title).toContain("\u2217bold\u2217 'code'");
    expect(notification.content.title).toContain("&lt;!here&gt;");
    const actorSpan = /by `([^`]*)` in/.exec(lines[0] ?? "");
    expect(actorSpan?.[1]).toContain("'code'");
    expect(lines[3]).toContain("\u2217bold\u2217");
  });

  it("keeps the email text free of injected lines", () => {
    // Prepare
    const report = reportOf([result("i-0a1b2c3d4e5f60001", "exempt", HOSTILE)]);

    // Act
    const email = protocols(report).default;

    // Assess
    const lines = email.split("\n");
    expect(lines.some((l) => l.trim().startsWith("new line"))).toBe(false);
    expect(lines.find((l) => l.includes("*bold*"))).toContain("new line");
  });

  it("gives sqs and lambda the machine report, which parses back with the same results", () => {
    // Prepare
    const results = [
      { ...result("i-0a1b2c3d4e5f60001", "pass"), reading: { v1: 401, token: 200, v2: 200, client: "curl" } },
      { ...result("i-0a1b2c3d4e5f60002", "error", HOSTILE), warnings: ["w"] },
    ];
    const report = reportOf(results);

    // Act
    const { sqs, lambda } = protocols(report);

    // Assess
    for (const body of [sqs, lambda]) {
      const parsed = z
        .looseObject({ schema: z.string(), verdict: z.string(), results: z.array(z.unknown()), event: z.unknown() })
        .parse(JSON.parse(body));
      expect(parsed.schema).toBe("imdsv2-guard.report.v1");
      expect(parsed.verdict).toBe("error");
      expect(parsed.results).toEqual(results.map((r) => ({ ...r, account: EVENT.account, region: EVENT.region })));
      expect(parsed.event).toEqual(EVENT);
    }
  });

  it("sets the worst verdict and all verdicts as filterable attributes", () => {
    // Prepare
    const report = reportOf([
      result("i-0a1b2c3d4e5f60001", "pass"),
      result("i-0a1b2c3d4e5f60002", "unverified"),
      result("i-0a1b2c3d4e5f60003", "exempt"),
    ]);

    // Act
    const { MessageAttributes } = snsMessage(report);

    // Assess
    expect(MessageAttributes.verdict).toEqual({ DataType: "String", StringValue: "unverified" });
    expect(MessageAttributes.verdicts?.DataType).toBe("String.Array");
    const verdicts = z.array(z.string()).parse(JSON.parse(MessageAttributes.verdicts?.StringValue ?? "null"));
    expect(verdicts.sort()).toEqual(["exempt", "pass", "unverified"]);
  });

  it("still lists the verdict as an attribute when there are no results", () => {
    // Prepare
    const report = buildReport({ event: EVENT, mode: "enforce", results: [], rejected: [], problem: "broken" });

    // Act
    const { MessageAttributes } = snsMessage(report);

    // Assess
    expect(MessageAttributes.verdicts?.StringValue).toBe('["error"]');
  });

  it("stays within SNS's 256 KiB limit for an event of a thousand instances", () => {
    // Prepare
    const results = Array.from({ length: 1000 }, (_, n) => ({
      ...result(
        `i-0a1b2c3d4e5f${n.toString(16).padStart(5, "0")}`,
        "unverified",
        "The SSM Agent was not online within 600 s (it never registered with SSM); the instance needs the agent and an instance profile with AmazonSSMManagedInstanceCore.",
      ),
      secondsToVerdict: 612.4,
    }));
    const report = reportOf(results);

    // Act
    const message = snsMessage(report);

    // Assess
    const attributeBytes = Object.entries(message.MessageAttributes).reduce(
      (sum, [name, a]) =>
        sum + Buffer.byteLength(name) + Buffer.byteLength(a.DataType) + Buffer.byteLength(a.StringValue),
      0,
    );
    const total = Buffer.byteLength(message.Message) + Buffer.byteLength(message.Subject) + attributeBytes;
    expect(total).toBeLessThanOrEqual(256 * 1024);
  });
});

describe("snsMessage: sized in UTF-8 bytes", () => {
  /** A tag value at EC2's limit of 256 characters, each three bytes in UTF-8. */
  const WIDE_TAG = "名前".repeat(128);

  function messageBytes(message: ReturnType<typeof snsMessage>): number {
    const attributeBytes = Object.entries(message.MessageAttributes).reduce(
      (sum, [name, a]) =>
        sum + Buffer.byteLength(name) + Buffer.byteLength(a.DataType) + Buffer.byteLength(a.StringValue),
      0,
    );
    return Buffer.byteLength(message.Message) + Buffer.byteLength(message.Subject) + attributeBytes;
  }

  /** A thousand instances whose reasons and warnings quote multi-byte tag values; every tenth failed. */
  function wideReport(): EventReport {
    const results = instanceIds(1000).map((id, n) => ({
      ...result(
        id,
        n % 10 === 0 ? "fail" : "exempt",
        `Exempt by tag imdsv2-guard:exempt: ${WIDE_TAG}. Nothing was changed.`,
      ),
      warnings: [`Tag Name=${WIDE_TAG}`],
      secondsToVerdict: 12.5,
    }));
    return reportOf(results);
  }

  it("keeps the whole message within SNS's 256 KiB when tag values are multi-byte", () => {
    // Prepare
    const report = wideReport();

    // Act
    const message = snsMessage(report);

    // Assess
    expect(messageBytes(message)).toBeLessThanOrEqual(256 * 1024);
    expect(Buffer.byteLength(message.Message)).toBeLessThanOrEqual(250_000);
    // The first budget alone would not have fitted: the message had to shrink.
    const unshrunk = machineReport(report);
    const text = protocols(report);
    expect(
      Buffer.byteLength(JSON.stringify({ default: text.default, https: text.https, sqs: unshrunk, lambda: unshrunk })),
    ).toBeGreaterThan(256 * 1024);
  });

  it("still lists every instance id exactly once in the machine report, the worst verdicts in full", () => {
    // Prepare
    const report = wideReport();

    // Act
    const { sqs, lambda } = protocols(report);

    // Assess
    expect(lambda).toBe(sqs);
    const parsed = parseMachineReport(sqs);
    expect(parsed.results.map((r) => r.instanceId).sort()).toEqual(instanceIds(1000).sort());
    expect(parsed.counts).toEqual(report.counts);
    expect(parsed.results.filter((r) => r.verdict === "fail")).toHaveLength(100);
    const inFull = parsed.results.filter((r) => r.reason.includes(WIDE_TAG));
    expect(inFull.length).toBeGreaterThan(0);
    expect(inFull.every((r) => r.verdict === "fail" && r.warnings.length === 1)).toBe(true);
    const brief = parsed.results.filter((r) => r.reason.includes("left out of the SNS message"));
    expect(inFull.length + brief.length).toBe(1000);
  });

  it("counts the machine report's budget in bytes, not characters", () => {
    // Prepare
    const results = instanceIds(10).map((id) => result(id, "exempt", WIDE_TAG));
    const report = reportOf(results);
    const oneResultBytes = Buffer.byteLength(JSON.stringify(report.results[0]));
    const budget = oneResultBytes * 3 + 10;

    // Act
    const machine = JSON.parse(machineReport(report, budget)) as { results: unknown[]; briefResults?: unknown[] };

    // Assess
    expect(Math.floor(budget / JSON.stringify(report.results[0]).length)).toBeGreaterThan(3);
    expect(machine.results).toHaveLength(3);
    expect(Buffer.byteLength(JSON.stringify(machine.results))).toBeLessThanOrEqual(budget);
    expect(machine.briefResults).toHaveLength(7);
  });

  it("keeps every result in full when the message fits", () => {
    // Prepare
    const report = reportOf(instanceIds(20).map((id) => result(id, "exempt", WIDE_TAG)));

    // Act
    const parsed = parseMachineReport(protocols(report).sqs);

    // Assess
    expect(parsed.results.every((r) => r.reason === WIDE_TAG)).toBe(true);
    expect(JSON.parse(protocols(report).sqs)).not.toHaveProperty("briefResults");
  });
});

describe("notice", () => {
  const NOTICE =
    "Deduplication was unavailable (DynamoDB.AmazonDynamoDBException: <!here> *down*): a redelivery of this event would be handled again.";

  it("shows a notice in the plain text, the Chatbot description and the machine report, without changing the verdict", () => {
    // Prepare
    const report = buildReport({
      event: EVENT,
      mode: "enforce",
      results: [result("i-0a1b2c3d4e5f60001", "pass")],
      rejected: [],
      notice: NOTICE,
    });

    // Act
    const text = plainText(report);
    const description = chatbot(report).content.description;
    const machine = parseMachineReport(protocols(report).sqs);

    // Assess
    expect(report.verdict).toBe("pass");
    expect(text.split("\n")).toContain(`Notice: ${NOTICE}`);
    const line = description.split("\n").find((l) => l.startsWith("Notice: ")) ?? "";
    expect(line).toBe(`Notice: ${markdownSafe(NOTICE)}`);
    expect(unescapedSpecials(line.slice("Notice: ".length))).toEqual([]);
    expect(machine.notice).toBe(NOTICE);
  });

  it("has no notice line when there is nothing to notice", () => {
    // Prepare
    const report = reportOf([result("i-0a1b2c3d4e5f60001", "pass")]);

    // Act
    const text = plainText(report);

    // Assess
    expect(text).not.toContain("Notice:");
    expect(chatbot(report).content.description).not.toContain("Notice:");
    expect(report).not.toHaveProperty("notice");
  });
});

describe("markdownSafe (what a client-markdown card shows in Slack)", () => {
  it.each([
    { c: "*", shown: "\u2217" },
    { c: "_", shown: "\u02cd" },
    { c: "~", shown: "\u223c" },
    { c: "`", shown: "'" },
    { c: "<", shown: "&lt;" },
    { c: ">", shown: "&gt;" },
    { c: "&", shown: "&amp;" },
  ])("shows $c, which Slack would read as markup, as $shown", ({ c, shown }) => {
    // Act
    const safe = markdownSafe(`a${c}b`);

    // Assess
    expect(safe).toBe(`a${shown}b`);
  });

  it("shows ordinary text as typed, without backslashes", () => {
    // Prepare: what reasons and event lines hold every day.
    const text = "eu-west-1 at 2026-11-28T09:00:00Z (a local metadata proxy?) #42 | 100% ! [x] \\ done.";

    // Act
    const safe = markdownSafe(text);

    // Assess
    expect(safe).toBe(text);
  });

  it("keeps a markdown link from forming", () => {
    // Act + Assess
    expect(markdownSafe("[docs](https://evil.example)")).toBe("[docs] (https://evil.example)");
  });
});

describe("publishReport", () => {
  const config: NotifyConfig = {
    topicArn: TOPIC_ARN,
    slackTopicArn: SLACK_TOPIC_ARN,
    slackVerdicts: ["fail", "error", "unverified"],
  };

  beforeEach(() => {
    snsMock.reset();
    snsMock.on(PublishCommand).resolves({ MessageId: "msg-1" });
  });

  it.each(["fail", "error", "unverified"] as const)(
    "publishes a %s report to the main topic and to Slack",
    async (verdict) => {
      // Prepare
      const report = reportOf([result("i-0a1b2c3d4e5f60001", verdict)]);

      // Act
      const outcome = await publishReport(report, { sns, logger, config });

      // Assess
      const inputs = snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input);
      expect(inputs.map((i) => i.TopicArn)).toEqual([config.topicArn, config.slackTopicArn]);
      expect(inputs[0]).toEqual({ TopicArn: config.topicArn, ...snsMessage(report) });
      expect(inputs[1]?.Message).toBe(inputs[0]?.Message);
      expect(outcome).toEqual({ verdict, messageIds: ["msg-1", "msg-1"] });
    },
  );

  it.each(["pass", "exempt", "skipped"] as const)("publishes a %s report to the main topic only", async (verdict) => {
    // Prepare
    const report = reportOf([result("i-0a1b2c3d4e5f60001", verdict)]);

    // Act
    await publishReport(report, { sns, logger, config });

    // Assess
    const topics = snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn);
    expect(topics).toEqual([config.topicArn]);
  });

  it("publishes to the main topic only when no Slack topic is configured", async () => {
    // Prepare
    const report = reportOf([result("i-0a1b2c3d4e5f60001", "fail")]);
    const withoutSlack: NotifyConfig = { topicArn: config.topicArn, slackVerdicts: ["fail"] };

    // Act
    await publishReport(report, { sns, logger, config: withoutSlack });

    // Assess
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([config.topicArn]);
  });

  it.each([
    {
      label: "a 500",
      cause: new InternalErrorException({ $metadata: { httpStatusCode: 500 }, message: "Internal error" }),
      expected: "RetryableServiceError",
    },
    {
      label: "ThrottledException",
      cause: new ThrottledException({ $metadata: { httpStatusCode: 429 }, message: "Rate exceeded" }),
      expected: "RetryableThrottlingError",
    },
    {
      // The alerts topic is KMS-encrypted (infra/alerting.yml), so Publish is throttled by KMS too.
      label: "KMSThrottlingException",
      cause: new KMSThrottlingException({ $metadata: { httpStatusCode: 400 }, message: "KMS rate exceeded" }),
      expected: "RetryableThrottlingError",
    },
    {
      label: "AuthorizationError",
      cause: serviceError(SNSServiceException, "AuthorizationErrorException", 403, "not authorized"),
      expected: "NonRetryableAwsError",
    },
  ])("throws $expected when SNS answers $label", async ({ cause, expected }) => {
    // Prepare
    snsMock.on(PublishCommand).rejects(cause);
    const report = reportOf([result("i-0a1b2c3d4e5f60001", "pass")]);

    // Act
    const run = publishReport(report, { sns, logger, config });

    // Assess
    await expect(run).rejects.toMatchObject({ name: expected, cause });
  });
});

describe("publish: the alert topic first, Slack best effort", () => {
  const config: NotifyConfig = { topicArn: TOPIC_ARN, slackTopicArn: SLACK_TOPIC_ARN, slackVerdicts: ["fail"] };

  beforeEach(() => {
    snsMock.reset();
    vi.restoreAllMocks();
  });

  it.each([
    {
      label: "a 500",
      cause: new InternalErrorException({ $metadata: { httpStatusCode: 500 }, message: "Internal error" }),
    },
    {
      label: "AuthorizationError",
      cause: serviceError(SNSServiceException, "AuthorizationErrorException", 403, "not authorized"),
    },
  ])("does not throw when Slack's topic answers $label, and publishes to the alert topic once", async ({ cause }) => {
    // Prepare
    snsMock
      .on(PublishCommand, { TopicArn: TOPIC_ARN })
      .resolves({ MessageId: "alert-1" })
      .on(PublishCommand, { TopicArn: SLACK_TOPIC_ARN })
      .rejects(cause);
    const logged = vi.spyOn(logger, "error").mockImplementation(() => undefined);
    const report = reportOf([result("i-0a1b2c3d4e5f60001", "fail")]);

    // Act
    const outcome = await publishReport(report, { sns, logger, config });

    // Assess
    const topics = snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn);
    expect(topics).toEqual([TOPIC_ARN, SLACK_TOPIC_ARN]);
    expect(topics.filter((t) => t === TOPIC_ARN)).toHaveLength(1);
    expect(outcome).toEqual({ verdict: "fail", messageIds: ["alert-1"] });
    expect(logged).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(logged.mock.calls[0])).toContain("Publish to the Slack topic");
  });

  it("throws when the alert topic refuses, and then sends nothing to Slack", async () => {
    // Prepare
    const cause = new ThrottledException({ $metadata: { httpStatusCode: 429 }, message: "Rate exceeded" });
    snsMock.on(PublishCommand, { TopicArn: TOPIC_ARN }).rejects(cause);
    snsMock.on(PublishCommand, { TopicArn: SLACK_TOPIC_ARN }).resolves({ MessageId: "slack-1" });

    // Act
    const run = publish(snsMessage(reportOf([result("i-0a1b2c3d4e5f60001", "fail")])), "fail", {
      sns,
      logger,
      config,
    });

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "RetryableThrottlingError",
      message: expect.stringContaining("Publish to the alert topic"),
      cause,
    });
    expect(snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.TopicArn)).toEqual([TOPIC_ARN]);
  });
});

describe("attribution in every format", () => {
  const LT = "lt-0a1b2c3d4e5f60718";
  const AMI = "ami-0a1b2c3d4e5f60001";
  const POSTURE: AccountPosture = { httpTokens: "optional", httpTokensEnforced: false, managedBy: "account" };
  const ORIGIN = {
    launchTemplateId: LT,
    launchTemplateVersion: "7",
    autoScalingGroup: "web-asg",
    imageId: AMI,
    imageImdsSupport: "unset",
  };
  const ENFORCED: InstanceResult = {
    ...result("i-0a1b2c3d4e5f60001", "pass"),
    enforcement: { kind: "set-required", was: "optional", evidence: "answered" },
    action: "set HttpTokens=required (was optional)",
    enforcedAt: "2026-11-28T09:42:40.000Z",
    origin: ORIGIN,
  };
  const COMPLIANT: InstanceResult = {
    ...result("i-0a1b2c3d4e5f60002", "pass"),
    enforcement: { kind: "already-required" },
    action: "none: HttpTokens was already required",
    origin: { imageId: "ami-0a1b2c3d4e5f60009", imageImdsSupport: "v2.0" },
  };

  function attributed(results: InstanceResult[] = [ENFORCED, COMPLIANT], event: Partial<EventRef> = {}): EventReport {
    return buildReport({
      event: { ...EVENT, launchTemplate: { id: LT, version: "3" }, ...event },
      mode: "enforce",
      results,
      rejected: [],
      trigger: "launch",
      accountPosture: POSTURE,
    });
  }

  it("names the origin, the launch template of the request and the account default in the plain text", () => {
    // Prepare
    const report = attributed();

    // Act
    const text = plainText(report);

    // Assess
    const lines = text.split("\n");
    expect(lines).toContain(`Launch template in the request: ${LT} version 3`);
    expect(lines).toContain("Account: account default HttpTokens=optional, HttpTokensEnforced off, managed by account");
    expect(lines).toContain(
      `    origin: launch template ${LT} v7, Auto Scaling group web-asg, AMI ${AMI} (ImdsSupport unset)`,
    );
    expect(lines.filter((l) => l.trim().startsWith("origin:"))).toHaveLength(1);
    expect(text).toContain(`aws ec2 create-launch-template-version --region us-east-1 --launch-template-id ${LT}`);
    expect(text).toContain(`aws ec2 modify-image-attribute --region us-east-1 --image-id ${AMI} --imds-support v2.0`);
    expect(text).toContain("aws ec2 modify-instance-metadata-defaults --region us-east-1 --http-tokens required");
  });

  it("names them, escaped, in the Chatbot notification, with the source fixes first among the next steps", () => {
    // Prepare
    const report = attributed();

    // Act
    const notification = chatbotSchema.parse(JSON.parse(chatbotNotification(report)));

    // Assess
    const lines = notification.content.description.split("\n");
    expect(lines).toContain(`Launch template: ${markdownSafe(`${LT} version 3`)}`);
    expect(lines).toContain(`Account: ${markdownSafe(describePosture(POSTURE))}`);
    const row = lines.find((l) => l.includes("i-0a1b2c3d4e5f60001")) ?? "";
    expect(row.endsWith(` — origin: ${markdownSafe(describeOrigin(ORIGIN))}`)).toBe(true);
    expect(lines.find((l) => l.includes("i-0a1b2c3d4e5f60002"))).not.toContain("origin");
    expect(notification.content.nextSteps[0]).toContain("`aws ec2 create-launch-template-version");
    expect(notification.content.nextSteps.length).toBeLessThanOrEqual(5);
  });

  it("keeps origin, trigger and accountPosture as fields of the machine report", () => {
    // Prepare
    const report = attributed();

    // Act
    const parsed = parseMachineReport(machineReport(report));

    // Assess
    expect(parsed.accountPosture).toEqual(POSTURE);
    expect(parsed.trigger).toBe("launch");
    expect(parsed.event.launchTemplate).toEqual({ id: LT, version: "3" });
    expect(parsed.results.map((r) => r.origin)).toEqual([ORIGIN, COMPLIANT.origin]);
  });

  it("escapes a hostile launch template name and Auto Scaling group in the Chatbot description", () => {
    // Prepare
    const hostileOrigin = { ...ORIGIN, autoScalingGroup: HOSTILE };
    const report = attributed([{ ...ENFORCED, origin: hostileOrigin }], {
      launchTemplate: { name: HOSTILE, version: "$Latest" },
    });
    const benign = attributed([ENFORCED], { launchTemplate: { name: "web", version: "$Latest" } });

    // Act
    const lines = chatbotSchema.parse(JSON.parse(chatbotNotification(report))).content.description.split("\n");
    const benignLines = chatbotSchema.parse(JSON.parse(chatbotNotification(benign))).content.description.split("\n");

    // Assess
    expect(lines).toHaveLength(benignLines.length);
    const templateLine = lines.find((l) => l.startsWith("Launch template: ")) ?? "";
    expect(unescapedSpecials(templateLine.slice("Launch template: ".length))).toEqual([]);
    const row = lines.find((l) => l.includes(" — origin: ")) ?? "";
    expect(unescapedSpecials(row.slice(row.indexOf(" — origin: ")))).toEqual([]);
  });

  it("shows a hostile Auto Scaling group name in the Chatbot next steps with nothing Slack would format", () => {
    // Prepare
    const group = "<!channel> `x` [link](http://evil.example) *b*";
    const report = attributed([{ ...ENFORCED, origin: { ...ORIGIN, autoScalingGroup: group } }]);

    // Act
    const steps = chatbotSchema.parse(JSON.parse(chatbotNotification(report))).content.nextSteps;

    // Assess
    const fix = steps.find((s) => s.includes("Auto Scaling group(s)")) ?? "";
    expect(fix).toContain('group(s) "??channel? ?x? ?link??http://evil.example? ?b?" at the new version');
    expect(fix.match(/`/g)).toHaveLength(2);
    for (const forbidden of ["<!", "[link]", "](", "*b*"]) expect(fix).not.toContain(forbidden);
  });

  it("keeps a hostile origin on its own line in the plain text", () => {
    // Prepare
    const report = attributed([{ ...ENFORCED, origin: { ...ORIGIN, autoScalingGroup: HOSTILE } }], {
      launchTemplate: { name: HOSTILE },
    });

    // Act
    const lines = plainText(report).split("\n");

    // Assess
    expect(lines.some((l) => l.trim().startsWith("new line"))).toBe(false);
    expect(lines.find((l) => l.startsWith("Launch template in the request: "))).toContain("new line");
  });

  it("reports a sweep's view of the fleet", () => {
    // Prepare
    const report = buildReport({
      event: { ...EVENT, eventName: "ReconciliationSweep", source: "sweep" },
      mode: "enforce",
      results: [],
      rejected: [],
      trigger: "sweep",
      accountPosture: POSTURE,
      fleet: { allowingImdsV1: 12, exempt: 3 },
    });

    // Act
    const text = plainText(report);
    const machine = parseMachineReport(machineReport(report));

    // Assess
    expect(text).toContain("Fleet:   12 instance(s) allow IMDSv1, 3 of them exempt");
    expect(machine.fleet).toEqual({ allowingImdsV1: 12, exempt: 3 });
    expect(report.verdict).toBe("pass");
  });
});

describe("held in reports", () => {
  const HELD: InstanceResult = {
    ...result(
      "i-0a1b2c3d4e5f60002",
      "held",
      "IMDSv1 answered 7 call(s) in the last 24 h (CloudWatch MetadataNoToken), so HttpTokens was not changed (policy onV1Usage=hold).",
    ),
    enforcement: { kind: "held" },
    action: "none: held",
    v1Usage: { calls: 7, hours: 24 },
  };

  it("counts held and ranks it between fail and unverified", () => {
    // Prepare
    const withFail = [result("i-0a1b2c3d4e5f60001", "fail"), HELD, result("i-0a1b2c3d4e5f60003", "unverified")];
    const withoutFail = [result("i-0a1b2c3d4e5f60001", "pass"), HELD, result("i-0a1b2c3d4e5f60003", "unverified")];

    // Act
    const worstIsFail = reportOf(withFail);
    const worstIsHeld = reportOf(withoutFail);

    // Assess
    expect(worstIsFail.verdict).toBe("fail");
    expect(worstIsHeld.verdict).toBe("held");
    expect(worstIsHeld.counts).toEqual({ pass: 1, fail: 0, held: 1, unverified: 1, exempt: 0, skipped: 0, error: 0 });
    expect(subjectLine(worstIsHeld).startsWith("[imdsv2-guard] HELD: 1 of 3 instance(s)")).toBe(true);
    expect(snsMessage(worstIsHeld).MessageAttributes.verdict?.StringValue).toBe("held");
  });

  it("lists instances worst first: fail, held, unverified, pass", () => {
    // Prepare
    const report = reportOf([
      result("i-0a1b2c3d4e5f60004", "pass"),
      result("i-0a1b2c3d4e5f60003", "unverified"),
      HELD,
      result("i-0a1b2c3d4e5f60001", "fail"),
    ]);

    // Act
    const listed = plainText(report)
      .split("\n")
      .filter((l) => l.startsWith("- i-"))
      .map((l) => l.split(":")[1]?.trim().split(" ")[0]);

    // Assess
    expect(listed).toEqual(["FAIL", "HELD", "UNVERIFIED", "PASS"]);
  });

  it("gives held a next step in the email and in Slack", () => {
    // Prepare
    const report = reportOf([HELD]);

    // Act
    const text = plainText(report);
    const notification = chatbot(report);

    // Assess
    expect(text).toContain("Held instances still allow IMDSv1");
    expect(notification.content.nextSteps).toEqual(
      expect.arrayContaining([expect.stringContaining("Held instances still allow IMDSv1")]),
    );
    expect(notification.content.title).toContain("HELD");
  });
});

describe("the email of a large launch: every instance in a table that fits", () => {
  it("lists the 50 worst in detail and the other 150 as one short row each, within 72 columns", () => {
    const ids = instanceIds(200);
    const results = ids.map((id, i) => result(id, i === 7 ? "fail" : "pass"));

    const text = plainText(reportOf(results));

    for (const id of ids) expect(text).toContain(id);
    const table = text.slice(text.indexOf("\nInstance ") + 1);
    expect(table.split("\n")[0]).toMatch(/^Instance\s+Verdict$/);
    for (const line of table.split("\n").slice(0, 151)) expect(line.length).toBeLessThanOrEqual(72);
    // The failing one is in the detailed list, not only in the table.
    expect(text).toContain(`- ${ids[7]}: FAIL`);
    expect(Buffer.byteLength(snsMessage(reportOf(results)).Message)).toBeLessThan(262_144);
  });

  it("tables at most 1,000 rows and counts the rest, so 2,000 instances still fit one SNS message", () => {
    const results = instanceIds(2000).map((id) => result(id, "pass"));
    const text = plainText(reportOf(results));
    expect(text).toContain("(950 more, counted above but not tabled)");
    expect(Buffer.byteLength(snsMessage(reportOf(results)).Message)).toBeLessThan(262_144);
  });
});

describe("snsMessages: a report too large for one SNS message goes out in parts", () => {
  const LEDGER = ledgerDetail("imdsv2-guard-ledger", EVENT.eventId, EVENT.region, 7);
  /** Every tenth instance failed, the rest passed: the verdicts a subscriber must read back, by instance. */
  function launch(n: number): { report: EventReport; verdicts: Map<string, Verdict> } {
    const verdicts = new Map(instanceIds(n).map((id, i): [string, Verdict] => [id, i % 10 === 3 ? "fail" : "pass"]));
    const results = [...verdicts].map(([id, verdict]) =>
      result(id, verdict, verdict === "pass" ? "IMDSv1 refused (401) from inside the instance." : "IMDSv1 answered."),
    );
    const report = buildReport({ event: EVENT, mode: "enforce", results, rejected: [], fullDetail: LEDGER });
    return { report, verdicts };
  }

  /** What SNS counts against its 256 KiB, as the simulated topic measures it, and the subject besides. */
  function sizeOf(message: SnsMessage): number {
    return publishedBytes({ TopicArn: TOPIC_ARN, ...message }) + Buffer.byteLength(message.Subject);
  }

  function machineCopies(message: SnsMessage): MachineReport {
    const { sqs, lambda } = protocolsSchema.parse(JSON.parse(message.Message));
    expect(lambda).toBe(sqs);
    return parseMachineReport(sqs);
  }

  it("sends a report that fits as the one message it always was, with no part", () => {
    // Prepare
    const small = reportOf([result("i-0a1b2c3d4e5f60001", "fail"), result("i-0a1b2c3d4e5f60002", "pass")]);
    // 2,000 instances fit once the machine copies shrink to pairs.
    const shrunk = launch(2000).report;

    // Act
    const messages = [snsMessages(small), snsMessages(shrunk)];

    // Assess
    expect(messages[0]).toEqual([snsMessage(small)]);
    expect(messages[1]).toEqual([snsMessage(shrunk)]);
    expect(messages[1]?.[0]?.MessageAttributes).not.toHaveProperty("part");
    expect(JSON.parse(snsMessage(shrunk).Message).sqs).not.toContain('"part"');
  });

  it.each([5_000, 10_000])(
    "splits %i instances into parts that each fit 262,144 bytes and merge back to every verdict once",
    (n) => {
      // Prepare
      const { report, verdicts } = launch(n);

      // Act
      const parts = snsMessages(report);
      const merged = mergeReportParts(parts.map(machineCopies));

      // Assess
      expect(parts.length).toBeGreaterThan(1);
      expect(sizeOf(snsMessage(report))).toBeGreaterThan(SNS_MAX_MESSAGE_BYTES);
      for (const [i, part] of parts.entries()) {
        expect(sizeOf(part)).toBeLessThanOrEqual(SNS_MAX_MESSAGE_BYTES);
        expect(part.MessageAttributes.part).toEqual({ DataType: "String", StringValue: `${i + 1}/${parts.length}` });
        // The event's attributes on every part, so a subscription's filter takes all of them or none.
        expect(part.MessageAttributes.verdict?.StringValue).toBe("fail");
        expect(part.MessageAttributes.verdicts?.StringValue).toBe('["pass","fail"]');
        expect(part.Subject.length).toBeLessThan(100);
        expect(part.Subject.endsWith(` [part ${i + 1}/${parts.length}]`)).toBe(true);
        const machine = machineCopies(part);
        expect(machine.part).toEqual({ index: i + 1, of: parts.length });
        expect(machine.counts).toEqual(report.counts);
        expect(machine.verdict).toBe("fail");
        chatbotSchema.parse(JSON.parse(protocolsSchema.parse(JSON.parse(part.Message)).https));
        // The fewest parts: each but the last is full, with no room for one more instance's pair.
        if (i < parts.length - 1) expect(sizeOf(part)).toBeGreaterThan(250_000 - 200);
      }
      expect(merged).not.toHaveProperty("part");
      expect(merged.counts).toEqual(report.counts);
      expect(merged.results).toHaveLength(n);
      expect(new Map(merged.results.map((r) => [r.instanceId, r.verdict]))).toEqual(verdicts);
      // Worst first across the parts: every failure comes before any pass.
      const firstPass = merged.results.findIndex((r) => r.verdict === "pass");
      expect(merged.results.slice(firstPass).every((r) => r.verdict === "pass")).toBe(true);
    },
  );

  it("puts the whole event's email and Chatbot card in part 1, and a short text naming its instances in the others", () => {
    // Prepare
    const { report } = launch(10_000);

    // Act
    const parts = snsMessages(report).map((m) => protocolsSchema.parse(JSON.parse(m.Message)));

    // Assess
    const [first, ...later] = parts;
    expect(first?.default.startsWith(plainText(report))).toBe(true);
    expect(first?.default).toContain(`This report is in ${parts.length} SNS messages (event ${EVENT.eventId})`);
    expect(first?.https).toBe(chatbotNotification(report));
    let from = machineCopies(snsMessages(report)[0] as SnsMessage).results.length + 1;
    for (const [i, part] of later.entries()) {
      const carried = parseMachineReport(part.sqs).results.length;
      expect(part.default).toContain(`part ${i + 2} of ${parts.length} of the report on event ${EVENT.eventId}`);
      expect(part.default).toContain(`This part carries instances ${from} to ${from + carried - 1} of 10000`);
      expect(part.default).toContain(LEDGER.command);
      expect(Buffer.byteLength(part.default)).toBeLessThan(2_000);
      from += carried;
    }
    expect(from).toBe(10_001);
  });

  it("says which part is missing, and refuses parts of two events", () => {
    // Prepare
    const parts = snsMessages(launch(10_000).report).map(machineCopies);
    const [first, second, ...rest] = parts;
    if (!first || !second) throw new Error("expected at least two parts");
    const otherEvent = { ...second, event: { ...second.event, eventId: "another-event" } };

    // Act + Assess
    expect(() => mergeReportParts([first, ...rest])).toThrow(
      `Event ${EVENT.eventId}: its report is in ${parts.length} parts and part(s) 2 are missing`,
    );
    expect(() => mergeReportParts([first, otherEvent, ...rest])).toThrow(
      `Report parts of different events: ${EVENT.eventId} and another-event`,
    );
    expect(() => mergeReportParts([])).toThrow("No report to merge");
  });

  it("counts a part published twice (a retried Notify) once", () => {
    // Prepare
    const parts = snsMessages(launch(5_000).report).map(machineCopies);

    // Act
    const merged = mergeReportParts([...parts, ...parts.slice(0, 1)]);

    // Assess
    expect(merged.results).toHaveLength(5_000);
  });

  it("publishes every part to the alert topic in order, and only part 1 to Slack", async () => {
    // Prepare
    const config: NotifyConfig = { topicArn: TOPIC_ARN, slackTopicArn: SLACK_TOPIC_ARN, slackVerdicts: ["fail"] };
    snsMock.reset();
    let n = 0;
    snsMock.on(PublishCommand).callsFake(() => ({ MessageId: `msg-${++n}` }));
    const { report } = launch(10_000);
    const expected = snsMessages(report);

    // Act
    const outcome = await publishReport(report, { sns, logger, config });

    // Assess
    const inputs = snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(inputs.filter((i) => i.TopicArn === TOPIC_ARN)).toEqual(
      expected.map((m) => ({ TopicArn: TOPIC_ARN, ...m })),
    );
    expect(inputs.filter((i) => i.TopicArn === SLACK_TOPIC_ARN)).toEqual([
      { TopicArn: SLACK_TOPIC_ARN, ...expected[0] },
    ]);
    expect(outcome).toEqual({ verdict: "fail", messageIds: inputs.map((_, i) => `msg-${i + 1}`) });
  });

  it("throws when a later part is refused, after the earlier ones went out (the retried Notify sends them again)", async () => {
    // Prepare
    const config: NotifyConfig = { topicArn: TOPIC_ARN, slackVerdicts: [] };
    snsMock.reset();
    snsMock
      .on(PublishCommand)
      .resolvesOnce({ MessageId: "msg-1" })
      .rejects(new InternalErrorException({ $metadata: { httpStatusCode: 500 }, message: "Internal error" }));

    // Act
    const run = publishReport(launch(5_000).report, { sns, logger, config });

    // Assess
    await expect(run).rejects.toMatchObject({ name: "RetryableServiceError" });
    const sent = snsMock.commandCalls(PublishCommand).map((c) => c.args[0].input.MessageAttributes?.part?.StringValue);
    expect(sent).toEqual(["1/2", "2/2"]);
  });
});
