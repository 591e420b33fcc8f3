import { CreateScheduleCommand, type CreateScheduleCommandInput } from "@aws-sdk/client-scheduler";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LOCAL_WATCH_SCHEDULE } from "../local/runner/run-flow.js";
import { SimAccount } from "../local/sim/sim-account.js";
import { scheduler } from "../shared/aws/clients/index.js";
import { bookWatch } from "../shared/aws/watch-schedule.js";

const WATCH = {
  event: {
    eventId: "e-1",
    eventName: "RunInstances",
    eventTime: "2026-11-28T09:00:00Z",
    actor: "arn:aws:iam::111122223333:user/ci",
    account: "111122223333",
    region: "eu-west-1",
    source: "cloudtrail" as const,
  },
  watch: { instanceIds: ["i-0a1b2c3d4e5f60001"], since: "2026-11-28T09:01:00.000Z", count: 1 },
};
const NOW = new Date("2026-11-28T09:05:00.000Z");

describe("the simulated EventBridge Scheduler: it refuses what AWS would", () => {
  let sim: SimAccount;
  beforeEach(() => {
    sim = new SimAccount([]);
    sim.install();
  });
  afterEach(() => sim.restore());

  const book = () => bookWatch(WATCH, "e-1", 900, { scheduler, config: LOCAL_WATCH_SCHEDULE, now: () => NOW });

  it("holds the watch Notify books until its time, and answers a second CreateSchedule of it with a conflict", async () => {
    // Act
    const first = await book();
    const second = await book();

    // Assess
    expect([first.alreadyBooked, second.alreadyBooked]).toEqual([false, true]);
    expect(sim.calls.CreateSchedule).toBe(2);
    expect([...sim.schedules.values()]).toEqual([
      expect.objectContaining({
        name: first.scheduleName,
        groupName: LOCAL_WATCH_SCHEDULE.groupName,
        at: Date.parse("2026-11-28T09:20:00Z"),
      }),
    ]);
  });

  it.each<[string, (r: CreateScheduleCommandInput) => CreateScheduleCommandInput]>([
    ["an at() with milliseconds", (r) => ({ ...r, ScheduleExpression: "at(2026-11-28T09:20:00.000Z)" })],
    ["a name with a slash", (r) => ({ ...r, Name: "watch/e-1" })],
    ["an unknown ActionAfterCompletion", (r) => ({ ...r, ActionAfterCompletion: "KEEP" as never })],
    [
      "a target without its role",
      (r) => ({ ...r, Target: { ...r.Target, Arn: r.Target?.Arn, RoleArn: undefined } as never }),
    ],
    [
      "a target without a dead-letter queue",
      (r) => ({ ...r, Target: { ...r.Target, DeadLetterConfig: undefined } as never }),
    ],
  ])("refuses %s with a ValidationException", async (_, change) => {
    // Prepare
    const valid: CreateScheduleCommandInput = {
      Name: "imdsv2-guard-watch-1",
      GroupName: LOCAL_WATCH_SCHEDULE.groupName,
      ScheduleExpression: "at(2026-11-28T09:20:00)",
      FlexibleTimeWindow: { Mode: "OFF" },
      ActionAfterCompletion: "DELETE",
      Target: {
        Arn: LOCAL_WATCH_SCHEDULE.targetArn,
        RoleArn: LOCAL_WATCH_SCHEDULE.roleArn,
        Input: "{}",
        DeadLetterConfig: { Arn: LOCAL_WATCH_SCHEDULE.deadLetterQueueArn },
      },
    };
    await scheduler.send(new CreateScheduleCommand({ ...valid, Name: "imdsv2-guard-watch-0" }));

    // Act
    const run = scheduler.send(new CreateScheduleCommand(change(valid)));

    // Assess
    await expect(run).rejects.toMatchObject({ name: "ValidationException" });
    expect(sim.schedules.size).toBe(1);
  });
});
