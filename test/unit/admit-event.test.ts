import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { ExecutionAlreadyExists, SendTaskSuccessCommand, SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { beforeEach, describe, expect, it } from "vitest";
import { executionArnOf, startNamedExecution } from "../../shared/aws/executions.js";
import type { AttributionWaiter, InstanceClaims } from "../../shared/aws/instance-claims.js";
import { resumeTask } from "../../shared/aws/task-tokens.js";
import { RetryableThrottlingError } from "../../shared/domain/errors.js";
import type { EventRef } from "../../shared/domain/model.js";
import { DEFAULT_FLOW_SETTINGS, type ResolveTargetsConfig } from "../../shared/runtime/config.js";
import { retryRetryable } from "../../shared/runtime/retry.js";
import { type AdmitEventDeps, admitEvent, executionNameFor } from "../../shared/steps/admit-event.js";
import { awaitAttribution, handOffAttribution, settleWaiter } from "../../shared/steps/claim-instances.js";
import { resolveTargets } from "../../shared/steps/resolve-targets.js";
import { runInstancesEvent, stateChangeEvent } from "../flow/helpers.js";
import { ec2Instance, ec2Mock, memoryBatchLedger, reservations, resetMocks, sfnMock, silentLogger } from "./support.js";

const NOW = new Date("2026-11-28T09:00:30Z");
const MACHINE = "arn:aws:states:eu-west-1:111122223333:stateMachine:imdsv2-guard-dev";
const ID = "i-0a1b2c3d4e5f60001";
const LAUNCHED = new Date("2026-11-28T09:00:00Z");
const CONFIG: ResolveTargetsConfig = {
  settings: DEFAULT_FLOW_SETTINGS,
  guardRoleArnPrefix: "arn:aws:sts::111122223333:assumed-role/imdsv2-guard-dev-enforce/",
  batchSize: 50,
};

/** The ledger's instance claims, in memory, with DynamoDB's semantics (a retry of the same execution keeps its claim). */
function memoryClaims() {
  const claims = new Map<string, string>();
  const reports = new Map<string, string>();
  const sealed = new Set<string>();
  const attributions = new Map<string, EventRef>();
  const waiters = new Map<string, AttributionWaiter>();
  const store: InstanceClaims = {
    async claim(key, executionId, _expiresAt, reportKey) {
      const holder = claims.get(key);
      if (holder !== undefined && holder !== executionId) return false;
      claims.set(key, executionId);
      if (reportKey) reports.set(key, reportKey);
      return true;
    },
    async holder(key) {
      return reports.get(key);
    },
    async seal(key) {
      sealed.add(key);
    },
    async sealed(key) {
      return sealed.has(key);
    },
    async attribute(reportKey, event) {
      attributions.set(reportKey, event);
    },
    async attribution(reportKey) {
      return attributions.get(reportKey);
    },
    async wait(reportKey, waiter) {
      waiters.set(reportKey, waiter);
    },
    async waiter(reportKey) {
      return waiters.get(reportKey);
    },
  };
  return { store, claims, reports, sealed, attributions, waiters };
}

function deps(overrides: Partial<AdmitEventDeps> = {}) {
  const claims = memoryClaims();
  const started: { name: string; input: Record<string, unknown> }[] = [];
  const resumed: { token: string; outcome: unknown }[] = [];
  const names = new Set<string>();
  const work = memoryBatchLedger();
  const d: AdmitEventDeps = {
    resolve: async (raw) => resolveTargets(raw, CONFIG, NOW),
    claims: claims.store,
    ec2For: async () => new EC2Client({ region: "eu-west-1" }),
    posture: async () => ({ httpTokensEnforced: false }) as never,
    start: async (name, input) => {
      if (names.has(name)) return "already-started";
      names.add(name);
      started.push({ name, input: input as Record<string, unknown> });
      return "started";
    },
    executionArnOf: (name) => executionArnOf(MACHINE, name),
    ledger: work.ledger,
    attribution: {
      claims: claims.store,
      now: () => NOW,
      resume: async (token, outcome) => {
        resumed.push({ token, outcome });
        return true;
      },
    },
    organization: false,
    logger: silentLogger("admit-event"),
    retry: { firstDelayMs: 1, maxDelayMs: 1, sleep: async () => undefined },
    batchSize: 50,
    sleep: async () => undefined,
    ...overrides,
  };
  return { d, claims, started, resumed, work };
}

beforeEach(() => {
  resetMocks();
  ec2Mock.on(DescribeInstancesCommand).resolves(reservations({ ...ec2Instance(ID), LaunchTime: LAUNCHED }));
});

describe("admitEvent: the intake", () => {
  it("starts one execution with the claimed work, named by the event's ledger key", async () => {
    const { d, started, claims } = deps();
    const outcome = await admitEvent(runInstancesEvent([ID], "e-run-1"), d);

    expect(outcome).toMatchObject({ outcome: "started", eventId: "e-run-1", targets: 1 });
    expect(started).toHaveLength(1);
    const [execution] = started;
    expect(execution?.name).toMatch(/^e-[0-9a-f]{48}$/);
    expect(execution?.input).toMatchObject({ admitted: true, targetCount: 1, accountPosture: {} });
    // The claim names the execution about to exist, so a retry of the intake finds its own claim.
    expect([...claims.claims.values()]).toEqual([executionArnOf(MACHINE, execution?.name ?? "")]);
  });

  it("starts the execution with pointers, and leaves the instances in the ledger", async () => {
    // Prepare
    const { d, started, work } = deps();

    // Act
    await admitEvent(runInstancesEvent([ID], "e-run-1"), d);

    // Assess: the state holds each batch's index and size; the instances are the ledger's work#0 item.
    expect(started[0]?.input.batches).toEqual([{ batchIndex: 0, instances: 1 }]);
    expect(await work.ledger.getWork("e-run-1", 0)).toEqual([
      expect.objectContaining({ instanceId: ID, stage: "enforce" }),
    ]);
  });

  it("keys a RunInstances record's claims by the LaunchTime it carries, without reading EC2", async () => {
    const { d, claims } = deps();
    const event = runInstancesEvent([ID], "e-run-1");
    event.detail.responseElements.instancesSet.items = [{ instanceId: ID, launchTime: LAUNCHED.getTime() } as never];
    await admitEvent(event, d);
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(0);
    // The same key the state-change path builds from DescribeInstances' LaunchTime.
    expect([...claims.claims.keys()]).toEqual([`inst#111122223333#eu-west-1#${ID}#${LAUNCHED.toISOString()}`]);
  });

  it("starts nothing for a redelivery: the same name is refused, and the claims stay the first execution's", async () => {
    const { d, started } = deps();
    await admitEvent(runInstancesEvent([ID], "e-run-1"), d);
    const again = await admitEvent(runInstancesEvent([ID], "e-run-1"), d);
    expect(again.outcome).toBe("already-started");
    expect(started).toHaveLength(1);
  });

  it("the record after the state-change: starts nothing, leaves its actor, and resumes the waiting report", async () => {
    const { d, started, resumed, claims } = deps();
    await admitEvent(stateChangeEvent(ID, 2), d);
    const reportKey = (started[0]?.input.dedupe as { key: string } | undefined)?.key ?? "";
    // The state-change execution's AwaitAttribution left its token under its report's key.
    await claims.store.wait(reportKey, { deadline: "2026-11-28T09:15:00Z", taskToken: "token-1" }, 0);

    const outcome = await admitEvent(runInstancesEvent([ID], "e-run-late"), d);

    expect(outcome.outcome).toBe("claimed-elsewhere");
    expect(started).toHaveLength(1);
    expect(claims.attributions.get(reportKey)?.eventId).toBe("e-run-late");
    expect(resumed).toEqual([
      { token: "token-1", outcome: { done: true, record: expect.objectContaining({ eventId: "e-run-late" }) } },
    ]);
  });

  it("the state carries the claims as counts, never their keys", async () => {
    const { d, started } = deps();
    await admitEvent(stateChangeEvent(ID, 2), d);
    expect(started[0]?.input.instanceClaims).toEqual({ claimed: 1, elsewhere: 0 });
  });

  it("an ignored call starts nothing and claims nothing", async () => {
    const { d, started, claims } = deps();
    const event = runInstancesEvent([ID]);
    (event.detail as Record<string, unknown>).errorCode = "UnauthorizedOperation";
    expect((await admitEvent(event, d)).outcome).toBe("ignored");
    expect(started).toEqual([]);
    expect(claims.claims.size).toBe(0);
  });

  it("an event it cannot resolve still starts an execution, which reports the failure", async () => {
    const { d, started } = deps({
      resolve: async () => {
        throw new Error("config broken");
      },
    });
    const outcome = await admitEvent({ some: "event" }, d);
    expect(outcome.outcome).toBe("started");
    expect(started[0]?.input).toEqual({
      admitted: true,
      resolveFailure: { Error: "Error", Cause: "config broken" },
      rawEvent: { some: "event" },
    });
  });

  it("goes on without claims when the ledger fails, and the report will say so", async () => {
    const { d, started } = deps();
    d.claims = { ...d.claims, claim: async () => Promise.reject(new Error("ledger down")) };
    await admitEvent(runInstancesEvent([ID]), d);
    expect(started[0]?.input).toMatchObject({ instanceClaimFailure: { Cause: "ledger down" }, targetCount: 1 });
  });

  it("retries a throttled call, then lets Lambda's asynchronous retries have it", async () => {
    let calls = 0;
    const { d, started } = deps({
      start: async () => {
        calls++;
        throw new RetryableThrottlingError("slow", { api: "StartExecution", code: "ThrottlingException" });
      },
    });
    await expect(admitEvent(runInstancesEvent([ID]), d)).rejects.toThrow(RetryableThrottlingError);
    expect(calls).toBe(5);
    expect(started).toEqual([]);
  });

  it("names executions within Step Functions' rules, the same for the same key", () => {
    const name = executionNameFor("state#111122223333#eu-west-1#i-1#pending#2026-11-28T09:00:00Z");
    expect(name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    expect(executionNameFor("state#111122223333#eu-west-1#i-1#pending#2026-11-28T09:00:00Z")).toBe(name);
    expect(executionNameFor("another key")).not.toBe(name);
  });
});

describe("the attribution hand-off", () => {
  const waiter = { deadline: "2026-11-28T09:15:00Z", taskToken: "t" };
  const record = { eventId: "e-run" } as EventRef;

  it("resumes the report once the record has arrived for it", async () => {
    const { store, attributions } = memoryClaims();
    const resumed: unknown[] = [];
    const attribution = { claims: store, now: () => NOW, resume: async (_: string, o: unknown) => !!resumed.push(o) };
    expect(await settleWaiter("r1", waiter, attribution)).toBe(false);
    attributions.set("r1", record);
    expect(await settleWaiter("r1", waiter, attribution)).toBe(true);
    expect(resumed).toEqual([{ done: true, record }]);
  });

  it("past the deadline, resumes it without the record", async () => {
    const { store } = memoryClaims();
    const resumed: unknown[] = [];
    const late = {
      claims: store,
      now: () => new Date("2026-11-28T10:00:00Z"),
      resume: async (_: string, o: unknown) => !!resumed.push(o),
    };
    await settleWaiter("r1", waiter, late);
    expect(resumed).toEqual([{ done: true, timedOut: true }]);
  });

  it("either order works: the waiter resumes itself when the record came first", async () => {
    const { store, attributions } = memoryClaims();
    const resumed: unknown[] = [];
    const attribution = { claims: store, now: () => NOW, resume: async (_: string, o: unknown) => !!resumed.push(o) };
    attributions.set("r1", record);
    expect(await awaitAttribution("r1", waiter, { ...attribution, expiresAt: 0 })).toEqual({ waiting: false });
    expect(resumed).toHaveLength(1);
  });

  it("the record's side does nothing when no report waits", async () => {
    const { store } = memoryClaims();
    const resumed: unknown[] = [];
    await handOffAttribution("r1", { claims: store, now: () => NOW, resume: async (_, o) => !!resumed.push(o) });
    expect(resumed).toEqual([]);
  });
});

describe("Step Functions calls", () => {
  it("a second StartExecution of the same name is 'already-started', any other error is classified", async () => {
    const sfn = new SFNClient({ region: "eu-west-1" });
    sfnMock.on(StartExecutionCommand).rejectsOnce(new ExecutionAlreadyExists({ message: "exists", $metadata: {} }));
    expect(await startNamedExecution(sfn, MACHINE, "e-1", {})).toBe("already-started");
    sfnMock.on(StartExecutionCommand).rejects(Object.assign(new Error("slow"), { name: "ThrottlingException" }));
    await expect(startNamedExecution(sfn, MACHINE, "e-1", {})).rejects.toThrow(RetryableThrottlingError);
  });

  it("resuming a task that no longer waits is refused quietly; the output goes as JSON", async () => {
    const sfn = new SFNClient({ region: "eu-west-1" });
    sfnMock.on(SendTaskSuccessCommand).resolvesOnce({});
    expect(await resumeTask(sfn, "t", { done: true })).toBe(true);
    expect(sfnMock.commandCalls(SendTaskSuccessCommand)[0]?.args[0].input).toEqual({
      taskToken: "t",
      output: '{"done":true}',
    });
    sfnMock.on(SendTaskSuccessCommand).rejects(Object.assign(new Error("gone"), { name: "TaskTimedOut" }));
    expect(await resumeTask(sfn, "t", {})).toBe(false);
  });

  it("the execution ARN the claims record is the one Step Functions gives the execution", () => {
    expect(executionArnOf(MACHINE, "e-1")).toBe("arn:aws:states:eu-west-1:111122223333:execution:imdsv2-guard-dev:e-1");
  });
});

describe("retryRetryable", () => {
  it("retries only what did not take effect, with capped exponential full-jitter waits", async () => {
    const waits: number[] = [];
    let calls = 0;
    const policy = {
      attempts: 4,
      firstDelayMs: 100,
      maxDelayMs: 250,
      sleep: async (ms: number) => void waits.push(ms),
      random: () => 1,
    };
    await expect(
      retryRetryable(async () => {
        calls++;
        throw new RetryableThrottlingError("slow", { api: "X", code: "Throttling" });
      }, policy),
    ).rejects.toThrow(RetryableThrottlingError);
    expect(calls).toBe(4);
    expect(waits).toEqual([100, 200, 250]);
    calls = 0;
    await expect(
      retryRetryable(async () => {
        calls++;
        throw new Error("not retryable");
      }, policy),
    ).rejects.toThrow("not retryable");
    expect(calls).toBe(1);
  });
});

describe("one launch, one report: the intake gathers a launch", () => {
  const SIBLINGS = ["i-0a1b2c3d4e5f60002", "i-0a1b2c3d4e5f60003"];
  const RESERVATION = "r-0a1b2c3d4e5f60718";
  const inReservation = (...ids: string[]) => ({
    Reservations: [
      { ReservationId: RESERVATION, Instances: ids.map((id) => ({ ...ec2Instance(id), LaunchTime: LAUNCHED })) },
    ],
  });

  beforeEach(() => {
    ec2Mock
      .on(DescribeInstancesCommand)
      .callsFake((input: { Filters?: { Name?: string }[] }) =>
        input.Filters?.some((f) => f.Name === "reservation-id")
          ? inReservation(ID, ...SIBLINGS, "i-0a1b2c3d4e5f60009")
          : inReservation(ID),
      );
  });

  it("the first notification of a launch claims its reservation's instances of the same LaunchTime", async () => {
    const { d, started, claims } = deps();
    // One instance of the reservation was started later: another occurrence, not this launch.
    ec2Mock.on(DescribeInstancesCommand).callsFake((input: { Filters?: { Name?: string }[] }) => {
      if (!input.Filters?.some((f) => f.Name === "reservation-id")) return inReservation(ID);
      const later = { ...ec2Instance("i-0a1b2c3d4e5f60009"), LaunchTime: new Date("2026-11-28T11:00:00Z") };
      const all = inReservation(ID, ...SIBLINGS);
      all.Reservations[0]?.Instances.push(later);
      return all;
    });

    const outcome = await admitEvent(stateChangeEvent(ID, 2), d);

    expect(outcome).toMatchObject({ outcome: "started", targets: 3 });
    expect(started[0]?.input.instanceClaims).toEqual({ claimed: 3, elsewhere: 0 });
    const group = `launch#111122223333#eu-west-1#${RESERVATION}#${LAUNCHED.toISOString()}`;
    expect(claims.sealed.has(group)).toBe(true);
    const filters = ec2Mock.commandCalls(DescribeInstancesCommand).map((c) => c.args[0].input.Filters?.[0]?.Name);
    expect(filters).toEqual(["instance-id", "reservation-id"]);
  });

  it("the launch's other notifications wait for the gathering, then find their instance claimed", async () => {
    const { d, started } = deps();
    await admitEvent(stateChangeEvent(ID, 2), d);
    const second = await admitEvent(stateChangeEvent(SIBLINGS[0] ?? "", 2), d);
    expect(second.outcome).toBe("claimed-elsewhere");
    expect(started).toHaveLength(1);
  });

  it("a notification whose launch is still being gathered waits, bounded, then keeps its instance if unclaimed", async () => {
    const { d, started, claims } = deps();
    const group = `launch#111122223333#eu-west-1#${RESERVATION}#${LAUNCHED.toISOString()}`;
    // Another intake holds the group and never seals it (it crashed): this one waits 8 checks, then goes on alone.
    await claims.store.claim(group, "someone-else", 0);
    const waits: number[] = [];
    d.sleep = async (ms) => {
      waits.push(ms);
    };
    const outcome = await admitEvent(stateChangeEvent(SIBLINGS[0] ?? "", 2), d);
    expect(waits).toHaveLength(8);
    expect(outcome).toMatchObject({ outcome: "started", targets: 1 });
    expect(started).toHaveLength(1);
  });

  it("the record after the gathered launch resumes its one report, once, whatever the number of instances", async () => {
    const { d, resumed, claims, started } = deps();
    await admitEvent(stateChangeEvent(ID, 2), d);
    const reportKey = (started[0]?.input.dedupe as { key: string } | undefined)?.key ?? "";
    await claims.store.wait(reportKey, { deadline: "2026-11-28T09:15:00Z", taskToken: "token-1" }, 0);
    const record = runInstancesEvent([ID, ...SIBLINGS], "e-run-3");
    record.detail.responseElements.instancesSet.items = [ID, ...SIBLINGS].map(
      (instanceId) => ({ instanceId, launchTime: LAUNCHED.getTime() }) as never,
    );
    expect((await admitEvent(record, d)).outcome).toBe("claimed-elsewhere");
    expect(resumed).toHaveLength(1);
    expect(claims.attributions.get(reportKey)?.eventId).toBe("e-run-3");
  });
});

describe("a record without its instance list", () => {
  const truncated = () => {
    const event = runInstancesEvent([], "e-run-trunc") as unknown as {
      detail: { responseElements: unknown; requestParameters: Record<string, unknown> };
    };
    event.detail.responseElements = { omitted: true };
    event.detail.requestParameters = {
      instancesSet: { items: [{ imageId: "ami-0a1b2c3d4e5f60718", minCount: 2, maxCount: 2 }] },
      clientToken: "token-abc",
    };
    return event;
  };

  it("is resolved by its client token: the instances it launched, claimed without a second describe", async () => {
    const { d, started } = deps();
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          ReservationId: "r-0a1b2c3d4e5f60718",
          Instances: [ID, "i-0a1b2c3d4e5f60002"].map((id) => ({ ...ec2Instance(id), LaunchTime: LAUNCHED })),
        },
      ],
    });

    const outcome = await admitEvent(truncated(), d);

    expect(outcome).toMatchObject({ outcome: "started", targets: 2 });
    expect(started[0]?.input.problem).toBeUndefined();
    const calls = ec2Mock.commandCalls(DescribeInstancesCommand).map((c) => c.args[0].input.Filters);
    expect(calls).toEqual([
      [
        { Name: "client-token", Values: ["token-abc"] },
        { Name: "instance-state-name", Values: ["pending", "running"] },
      ],
    ]);
  });

  it("falls back to the launch window and image, and reports the problem when nothing is found", async () => {
    const { d, started } = deps();
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });

    const outcome = await admitEvent(truncated(), d);

    expect(outcome).toMatchObject({ outcome: "started", targets: 0 });
    expect(String(started[0]?.input.problem)).toContain("omitted: true");
    const windowed = ec2Mock.commandCalls(DescribeInstancesCommand)[1]?.args[0].input.Filters;
    expect(windowed).toEqual([
      { Name: "launch-time", Values: ["2026-11-28T08:59*", "2026-11-28T09:00*"] },
      { Name: "instance-state-name", Values: ["pending", "running"] },
      { Name: "image-id", Values: ["ami-0a1b2c3d4e5f60718"] },
    ]);
  });
});

describe("a record found by its window, not named", () => {
  it("gives its actor to no other execution's report: close is not certain", async () => {
    const { d, started, claims } = deps();
    await admitEvent(stateChangeEvent(ID, 2), d);
    const reportKey = (started[0]?.input.dedupe as { key: string } | undefined)?.key ?? "";
    const event = runInstancesEvent([], "e-run-window") as unknown as {
      detail: { responseElements: unknown; requestParameters: Record<string, unknown> };
    };
    event.detail.responseElements = { omitted: true };
    event.detail.requestParameters = {
      instancesSet: { items: [{ imageId: "ami-0a1b2c3d4e5f60718", minCount: 1, maxCount: 1 }] },
    };

    expect((await admitEvent(event, d)).outcome).toBe("claimed-elsewhere");
    expect(claims.attributions.get(reportKey)).toBeUndefined();
  });
});
