import { CloudWatchServiceException, GetMetricDataCommand, type MetricDataResult } from "@aws-sdk/client-cloudwatch";
import { ModifyInstanceMetadataOptionsCommand } from "@aws-sdk/client-ec2";
import { beforeEach, describe, expect, it } from "vitest";
import type { Trigger } from "../../shared/domain/model.js";
import { type EnforceDeps, enforceBatch } from "../../shared/steps/enforce.js";
import {
  actionOf,
  batchFactory,
  cloudWatchMock,
  contractError,
  describes,
  ec2Instance,
  ec2Mock,
  enforceDeps,
  enforcing,
  ID_A,
  ID_B,
  ID_C,
  isoAfter,
  modifyInputs,
  only,
  resetMocks,
  SETTINGS,
  serviceError,
} from "./support.js";

const NOW = new Date("2026-11-28T10:00:30.000Z");
const batchOf = batchFactory({ eventId: "evt-gate" });
const cloudWatchError = (name: string, status: number) => serviceError(CloudWatchServiceException, name, status);

const EXISTING: Trigger[] = ["regression", "sweep"];

function deps(now: () => Date = () => NOW): EnforceDeps {
  return enforceDeps(now);
}

/** MetadataNoToken datapoints per instance, in query order (m0, m1, ...), as GetMetricData returns them. */
function v1Calls(...perInstance: { id: string; values: number[] }[]): void {
  const results: MetricDataResult[] = perInstance.map(({ id, values }, n) => ({
    Id: `m${n}`,
    Label: id,
    StatusCode: "Complete",
    Values: values,
    Timestamps: values.map(() => new Date(NOW.getTime() - 3_600_000)),
  }));
  cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: results });
}

function metricCalls() {
  return cloudWatchMock.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input);
}

beforeEach(resetMocks);

describe("safety gate: launches", () => {
  it("never reads MetadataNoToken for a launch, even with onV1Usage=hold, and enforces", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    v1Calls({ id: ID_A, values: [50] });

    // Act
    const out = await enforceBatch(
      batchOf([enforcing(ID_A)], { trigger: "launch", settings: { onV1Usage: "hold" } }),
      deps(),
    );

    // Assess
    expect(cloudWatchMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    expect(modifyInputs()).toStrictEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
    expect(only(out, ID_A)).toMatchObject({
      stage: "await-applied",
      enforcement: { kind: "set-required", was: "optional", evidence: "answered" },
    });
    expect(only(out, ID_A).v1Usage).toBeUndefined();
  });
});

describe.each(EXISTING)("safety gate: trigger %s", (trigger) => {
  it("asks CloudWatch for MetadataNoToken per instance over the look-back, in one call", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    v1Calls({ id: ID_A, values: [] }, { id: ID_B, values: [] });

    // Act
    await enforceBatch(
      batchOf([enforcing(ID_A), enforcing(ID_B)], { trigger, settings: { v1UsageLookbackHours: 6 } }),
      deps(),
    );

    // Assess
    const calls = metricCalls();
    expect(calls).toHaveLength(1);
    expect(calls[0]?.StartTime).toEqual(new Date(NOW.getTime() - 6 * 3_600_000));
    expect(calls[0]?.EndTime).toEqual(NOW);
    const queries = calls[0]?.MetricDataQueries ?? [];
    expect(queries.map((q) => q.MetricStat?.Metric)).toEqual([
      { Namespace: "AWS/EC2", MetricName: "MetadataNoToken", Dimensions: [{ Name: "InstanceId", Value: ID_A }] },
      { Namespace: "AWS/EC2", MetricName: "MetadataNoToken", Dimensions: [{ Name: "InstanceId", Value: ID_B }] },
    ]);
    expect(queries.every((q) => q.MetricStat?.Stat === "Sum")).toBe(true);
  });

  it("holds an instance that used IMDSv1 with onV1Usage=hold, naming the count and window, and modifies nothing", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    v1Calls({ id: ID_A, values: [3, 4] });

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger, settings: { onV1Usage: "hold" } }), deps());

    // Assess
    expect(modifyInputs()).toEqual([]);
    const progress = only(out, ID_A);
    expect(progress.stage).toBe("done");
    expect(actionOf(progress)).toBe("none: held");
    expect(progress.enforcedAt).toBeUndefined();
    expect(progress.result).toMatchObject({ verdict: "held", v1Usage: { calls: 7, hours: 24 } });
    expect(progress.result?.reason).toContain("7 call(s)");
    expect(progress.result?.reason).toContain("last 24 h");
    expect(progress.result?.reason).toContain("MetadataNoToken");
    expect(progress.result?.reason).toContain("onV1Usage=hold");
  });

  it("enforces an instance that used IMDSv1 with onV1Usage=enforce, noting the use", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    v1Calls({ id: ID_A, values: [12] });

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger, settings: { onV1Usage: "enforce" } }), deps());

    // Assess
    expect(modifyInputs()).toStrictEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
    const progress = only(out, ID_A);
    expect(progress).toMatchObject({ stage: "await-applied", v1Usage: { calls: 12, hours: 24 } });
    expect(progress.notes).toEqual([expect.stringContaining("12 call(s) in the last 24 h")]);
    expect(progress.notes[0]).toContain("onV1Usage=enforce");
  });

  it("enforces an instance with no IMDSv1 use, without a note", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    v1Calls({ id: ID_A, values: [0, 0] }, { id: ID_B, values: [] });

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)], { trigger }), deps());

    // Assess
    expect(modifyInputs()).toStrictEqual([
      { InstanceId: ID_A, HttpTokens: "required" },
      { InstanceId: ID_B, HttpTokens: "required" },
    ]);
    for (const id of [ID_A, ID_B]) {
      expect(only(out, id)).toMatchObject({ stage: "await-applied", v1Usage: { calls: 0, hours: 24 }, notes: [] });
    }
  });

  it("enforces an instance CloudWatch returns no series for (EC2 publishes nothing while nothing happens)", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    cloudWatchMock.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger }), deps());

    // Assess
    expect(modifyInputs()).toStrictEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
    expect(only(out, ID_A).v1Usage).toEqual({ calls: 0, hours: 24 });
  });

  it("holds only the instance that used IMDSv1 and enforces the rest of the batch", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B), ec2Instance(ID_C));
    v1Calls({ id: ID_A, values: [] }, { id: ID_B, values: [1] }, { id: ID_C, values: [] });

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B), enforcing(ID_C)], { trigger }), deps());

    // Assess
    expect(modifyInputs()).toStrictEqual([
      { InstanceId: ID_A, HttpTokens: "required" },
      { InstanceId: ID_C, HttpTokens: "required" },
    ]);
    expect(only(out, ID_B).result?.verdict).toBe("held");
    expect(out.counts).toMatchObject({ awaitApplied: 2, done: 1 });
  });

  it("holds in audit mode too, and still modifies nothing", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    v1Calls({ id: ID_A, values: [2] }, { id: ID_B, values: [] });

    // Act
    const out = await enforceBatch(
      batchOf([enforcing(ID_A), enforcing(ID_B)], { trigger, settings: { mode: "audit" } }),
      deps(),
    );

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand)).toHaveLength(0);
    expect(only(out, ID_A).result?.verdict).toBe("held");
    expect(actionOf(only(out, ID_B))).toBe("audit: would set HttpTokens=required (now optional)");
  });

  it("does not read the metric for instances that need no change", async () => {
    // Prepare
    describes(
      ec2Instance(ID_A, { httpTokens: "required" }),
      ec2Instance(ID_B, { state: "terminated" }),
      ec2Instance(ID_C, { tags: [{ Key: SETTINGS.exemptTagKey, Value: "vendor agent" }] }),
    );

    // Act
    await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B), enforcing(ID_C)], { trigger }), deps());

    // Assess
    expect(cloudWatchMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    expect(modifyInputs()).toEqual([]);
  });

  it.each([
    { label: "throttled", error: cloudWatchError("Throttling", 400) },
    { label: "a 500", error: cloudWatchError("InternalServiceFault", 500) },
  ])("keeps the instances in enforce when GetMetricData is $label, modifying nothing", async ({ error }) => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    cloudWatchMock.on(GetMetricDataCommand).rejects(error);

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)], { trigger }), deps());

    // Assess
    expect(modifyInputs()).toEqual([]);
    for (const id of [ID_A, ID_B]) {
      expect(only(out, id)).toMatchObject({
        stage: "enforce",
        stageDeadline: isoAfter(NOW, SETTINGS.applyTimeoutSeconds),
      });
      expect(only(out, id).result).toBeUndefined();
      expect(only(out, id).v1Usage).toBeUndefined();
    }
    expect(out.throttledRounds).toBe(1);
    expect(out.pollSeconds).toBeGreaterThanOrEqual(5);
  });

  it("ends in error, naming GetMetricData, once the metric stays throttled past the apply timeout", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    cloudWatchMock.on(GetMetricDataCommand).rejects(cloudWatchError("Throttling", 400));
    const progress = enforcing(ID_A, { stageDeadline: NOW.toISOString() });

    // Act
    const out = await enforceBatch(
      batchOf([progress], { trigger }),
      deps(() => new Date(NOW.getTime() + 1000)),
    );

    // Assess
    expect(modifyInputs()).toEqual([]);
    expect(only(out, ID_A).result?.verdict).toBe("error");
    expect(only(out, ID_A).result?.reason).toContain("GetMetricData");
    expect(only(out, ID_A).result?.reason).toContain("HttpTokens was not changed");
  });

  it("fails closed: AccessDenied on GetMetricData ends the instances in error and modifies nothing", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    cloudWatchMock.on(GetMetricDataCommand).rejects(cloudWatchError("AccessDenied", 403));

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)], { trigger }), deps());

    // Assess
    expect(modifyInputs()).toEqual([]);
    for (const id of [ID_A, ID_B]) {
      const result = only(out, id).result;
      expect(result?.verdict).toBe("error");
      expect(result?.reason).toContain("IMDSv1 use could not be checked, so nothing was changed");
      expect(result?.reason).toContain("AccessDenied");
    }
    expect(out.throttledRounds).toBe(0);
  });

  it("does not read the metric again for an instance whose use was read in an earlier round", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    const progress = enforcing(ID_A, { stageDeadline: isoAfter(NOW, 60), v1Usage: { calls: 0, hours: 24 } });

    // Act
    const out = await enforceBatch(batchOf([progress], { trigger }), deps());

    // Assess
    expect(cloudWatchMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    expect(modifyInputs()).toStrictEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
    expect(only(out, ID_A).stage).toBe("await-applied");
  });
});

describe("safety gate: across rounds", () => {
  it("notes the IMDSv1 use once, even when the modify was throttled and is made next round", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    v1Calls({ id: ID_A, values: [5] });
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejectsOnce(contractError("ec2Throttled")).resolves({});
    const settings = { onV1Usage: "enforce" } as const;

    // Act
    const throttled = await enforceBatch(batchOf([enforcing(ID_A)], { trigger: "regression", settings }), deps());
    const next = await enforceBatch(
      throttled,
      deps(() => new Date(NOW.getTime() + 10_000)),
    );

    // Assess
    expect(only(throttled, ID_A).stage).toBe("enforce");
    expect(only(next, ID_A).stage).toBe("await-applied");
    expect(only(next, ID_A).notes.filter((n) => n.includes("IMDSv1 answered"))).toHaveLength(1);
  });
});

describe("exemptions that expire", () => {
  const until = SETTINGS.exemptUntilTagKey;
  const exempt = SETTINGS.exemptTagKey;

  it.each(["launch", ...EXISTING] as Trigger[])(
    "enforces an instance whose exemption lapsed (%s), saying it lapsed and what it was for",
    async (trigger) => {
      // Prepare
      describes(
        ec2Instance(ID_A, {
          tags: [
            { Key: exempt, Value: "vendor agent until the Q3 upgrade" },
            { Key: until, Value: "2026-11-01" },
          ],
        }),
      );
      v1Calls({ id: ID_A, values: [] });

      // Act
      const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger }), deps());

      // Assess
      expect(modifyInputs()).toStrictEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
      const progress = only(out, ID_A);
      expect(progress.stage).toBe("await-applied");
      expect(progress.notes).toHaveLength(1);
      expect(progress.notes[0]).toContain("lapsed on 2026-11-01");
      expect(progress.notes[0]).toContain(until);
      expect(progress.notes[0]).toContain("vendor agent until the Q3 upgrade");
    },
  );

  it("still holds a lapsed exemption's instance when it used IMDSv1 (the gate still applies)", async () => {
    // Prepare
    describes(
      ec2Instance(ID_A, {
        tags: [
          { Key: exempt, Value: "vendor agent" },
          { Key: until, Value: "2026-11-27T23:00:00Z" },
        ],
      }),
    );
    v1Calls({ id: ID_A, values: [9] });

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger: "sweep" }), deps());

    // Assess
    expect(modifyInputs()).toEqual([]);
    expect(only(out, ID_A).result?.verdict).toBe("held");
    expect(only(out, ID_A).result?.warnings).toEqual([expect.stringContaining("lapsed")]);
  });

  it("exempts an instance whose exempt-until is still ahead, naming the date, and changes nothing", async () => {
    // Prepare
    describes(
      ec2Instance(ID_A, {
        tags: [
          { Key: exempt, Value: "vendor agent" },
          { Key: until, Value: "2026-12-31" },
        ],
      }),
    );

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger: "regression" }), deps());

    // Assess
    expect(modifyInputs()).toEqual([]);
    expect(cloudWatchMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    const progress = only(out, ID_A);
    expect(actionOf(progress)).toBe("none: exempt");
    expect(progress.result?.verdict).toBe("exempt");
    expect(progress.result?.reason).toContain("until 2026-12-31");
    expect(progress.result?.reason).toContain("vendor agent");
  });

  it("keeps the exemption of an instance whose exempt-until is not a date, with a warning", async () => {
    // Prepare
    describes(
      ec2Instance(ID_A, {
        tags: [
          { Key: exempt, Value: "vendor agent" },
          { Key: until, Value: "next sprint" },
        ],
      }),
    );

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger: "regression" }), deps());

    // Assess
    expect(modifyInputs()).toEqual([]);
    expect(only(out, ID_A).result?.verdict).toBe("exempt");
    expect(only(out, ID_A).result?.warnings).toEqual([expect.stringContaining(`${until} tag is not an ISO date`)]);
  });
});
