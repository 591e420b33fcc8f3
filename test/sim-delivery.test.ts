import { CreateScheduleCommand, type CreateScheduleCommandInput } from "@aws-sdk/client-scheduler";
import { PublishCommand } from "@aws-sdk/client-sns";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LOCAL_WATCH_SCHEDULE, runFlow } from "../local/runner/run-flow.js";
import { SimAccount } from "../local/sim/sim-account.js";
import {
  CLOUDTRAIL_MAX_FIELD_BYTES,
  deliverAsAws,
  EVENTBRIDGE_MAX_ENTRY_BYTES,
  eventBridgeEntryBytes,
} from "../local/sim/sim-eventbridge.js";
import { SCHEDULER_MAX_INPUT_BYTES } from "../local/sim/sim-scheduler.js";
import { SNS_MAX_MESSAGE_BYTES } from "../local/sim/sim-sns.js";
import { scheduler, sns } from "../shared/aws/clients/index.js";
import { instanceIds, runInstancesEvent, scenario } from "./flow/helpers.js";

/**
 * The contract tables of local/sim/sim-sns.ts, sim-scheduler.ts and sim-eventbridge.ts: payload limits ("Amazon SNS
 * quotas", "Quotas for Amazon EventBridge Scheduler", "Amazon EventBridge quotas"), CloudTrail's truncation of an
 * oversized field ("CloudTrail record contents"), and when a flexible schedule fires ("Configuring flexible time
 * windows in EventBridge Scheduler").
 */

const T0 = Date.parse("2026-11-28T09:00:00Z");
const TOPIC = "arn:aws:sns:eu-west-1:111122223333:imdsv2-guard";

describe("the simulated SNS and Scheduler: payload limits", () => {
  let sim: SimAccount;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(T0);
    sim = new SimAccount([]);
    sim.install();
  });
  afterEach(() => {
    sim.restore();
    vi.useRealTimers();
  });

  it("publishes 256 KiB with its attributes, and refuses one byte more with InvalidParameter", async () => {
    // Prepare
    const attributes = { kind: { DataType: "String", StringValue: "report" } };
    const attributeBytes = "kind".length + "String".length + "report".length;
    const message = (n: number) => "x".repeat(n);

    // Act
    await sns.send(
      new PublishCommand({
        TopicArn: TOPIC,
        Message: message(SNS_MAX_MESSAGE_BYTES - attributeBytes),
        MessageAttributes: attributes,
      }),
    );
    const over = sns.send(
      new PublishCommand({
        TopicArn: TOPIC,
        Message: message(SNS_MAX_MESSAGE_BYTES - attributeBytes + 1),
        MessageAttributes: attributes,
      }),
    );

    // Assess
    await expect(over).rejects.toMatchObject({ name: "InvalidParameterException" });
    expect(sim.published).toHaveLength(1);
    expect(SNS_MAX_MESSAGE_BYTES).toBe(262_144);
  });

  const schedule = (input: string, window: CreateScheduleCommandInput["FlexibleTimeWindow"], name = "w-1") =>
    scheduler.send(
      new CreateScheduleCommand({
        Name: name,
        GroupName: LOCAL_WATCH_SCHEDULE.groupName,
        ScheduleExpression: "at(2026-11-28T09:20:00)",
        FlexibleTimeWindow: window,
        ActionAfterCompletion: "DELETE",
        Target: {
          Arn: LOCAL_WATCH_SCHEDULE.targetArn,
          RoleArn: LOCAL_WATCH_SCHEDULE.roleArn,
          Input: input,
          DeadLetterConfig: { Arn: LOCAL_WATCH_SCHEDULE.deadLetterQueueArn },
        },
      }),
    );

  it("refuses a schedule whose target input is over 256 KB", async () => {
    await schedule("x".repeat(SCHEDULER_MAX_INPUT_BYTES), { Mode: "OFF" }, "fits");
    await expect(schedule("x".repeat(SCHEDULER_MAX_INPUT_BYTES + 1), { Mode: "OFF" }, "over")).rejects.toMatchObject({
      name: "ValidationException",
    });
    expect([...sim.schedules.keys()]).toEqual([`${LOCAL_WATCH_SCHEDULE.groupName}/fits`]);
  });

  it("fires a flexible schedule within its window, not on the second; with Mode OFF, on time by default", async () => {
    // Act
    for (let i = 0; i < 20; i++) await schedule("{}", { Mode: "FLEXIBLE", MaximumWindowInMinutes: 15 }, `flex-${i}`);
    await schedule("{}", { Mode: "OFF" }, "off");

    // Assess
    const at = Date.parse("2026-11-28T09:20:00Z");
    const flexible = sim.schedulesCreated.filter((s) => s.name.startsWith("flex-"));
    expect(flexible.every((s) => s.fireAt >= at && s.fireAt <= at + 15 * 60_000)).toBe(true);
    expect(new Set(flexible.map((s) => s.fireAt)).size).toBeGreaterThan(10);
    expect(flexible.some((s) => s.fireAt - at > 60_000)).toBe(true);
    expect(sim.schedulesCreated.find((s) => s.name === "off")?.fireAt).toBe(at);
  });

  it("refuses FLEXIBLE without a window of 1 to 1440 minutes", async () => {
    await expect(schedule("{}", { Mode: "FLEXIBLE" })).rejects.toMatchObject({ name: "ValidationException" });
    await expect(schedule("{}", { Mode: "FLEXIBLE", MaximumWindowInMinutes: 1441 })).rejects.toMatchObject({
      name: "ValidationException",
    });
  });
});

describe("scenario events, delivered as AWS delivers them", () => {
  const bigTags = (bytes: number) => ({
    tagSet: { items: [{ key: "blob", value: "x".repeat(bytes) }] },
  });

  it("truncates a CloudTrail field over the limit to { omitted: true }, and leaves the rest of the record", () => {
    // Prepare
    const [id = ""] = instanceIds(1);
    const event = runInstancesEvent([id]);
    event.detail.responseElements = {
      ...event.detail.responseElements,
      ...bigTags(CLOUDTRAIL_MAX_FIELD_BYTES),
    } as typeof event.detail.responseElements;

    // Act
    const delivery = deliverAsAws(event);

    // Assess
    expect(delivery).toMatchObject({ truncated: ["responseElements"] });
    const delivered = "event" in delivery ? (delivery.event as typeof event) : undefined;
    expect(delivered?.detail.responseElements).toEqual({ omitted: true });
    expect(delivered?.detail.requestParameters).toEqual(event.detail.requestParameters);
    expect(delivered?.detail.eventName).toBe("RunInstances");
  });

  it("delivers a record whose fields fit unchanged", () => {
    const event = runInstancesEvent(instanceIds(3));
    expect(deliverAsAws(event)).toEqual({ event, truncated: [] });
  });

  it("refuses an event over EventBridge's 256 KB entry, counting as PutEvents counts", () => {
    // Prepare: not a CloudTrail record, so nothing truncates it first.
    const event = () => ({
      source: "aws.ec2",
      "detail-type": "EC2 Instance State-change Notification",
      time: "2026-11-28T09:00:00Z",
      resources: ["arn:aws:ec2:eu-west-1:111122223333:instance/i-0a1b2c3d4e5f60001"],
      detail: { pad: "" },
    });
    const base = eventBridgeEntryBytes(event());
    const sized = (total: number) => ({ ...event(), detail: { pad: "x".repeat(total - base) } });

    // Act / Assess
    expect(eventBridgeEntryBytes(sized(EVENTBRIDGE_MAX_ENTRY_BYTES))).toBe(EVENTBRIDGE_MAX_ENTRY_BYTES);
    expect(deliverAsAws(sized(EVENTBRIDGE_MAX_ENTRY_BYTES))).toHaveProperty("event");
    expect(deliverAsAws(sized(EVENTBRIDGE_MAX_ENTRY_BYTES + 1))).toEqual({
      refused: expect.stringContaining("at most 262144 bytes"),
    });
  });

  it("the run reports a refused event, delivers the others, and starts nothing for it", async () => {
    // Prepare
    const [ok = "", big = ""] = instanceIds(2);
    const oversized = {
      source: "aws.ec2",
      "detail-type": "EC2 Instance State-change Notification",
      time: "2026-11-28T09:05:00Z",
      resources: [],
      detail: { "instance-id": big, state: "running", pad: "x".repeat(EVENTBRIDGE_MAX_ENTRY_BYTES) },
    };

    // Act
    const run = await runFlow(
      scenario({ events: [runInstancesEvent([ok]), oversized], instances: [{ id: ok }, { id: big }] }),
    );

    // Assess
    expect(run.refusedDeliveries).toEqual([{ eventIndex: 1, reason: expect.stringContaining("EventBridge refuses") }]);
    expect(run.asyncInvocations.filter((i) => i.eventIndex === 1)).toEqual([]);
    expect(run.reports.flatMap((r) => r.results.map((x) => x.instanceId))).toEqual([ok]);
  });
});
