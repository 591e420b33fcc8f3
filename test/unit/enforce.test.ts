import {
  DescribeInstancesCommand,
  EC2ServiceException,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { beforeEach, describe, expect, it } from "vitest";
import { MAX_BACKOFF_SECONDS } from "../../shared/domain/batch.js";
import type { InstanceProgress } from "../../shared/domain/model.js";
import { allowedImdsV1, sourceFixes } from "../../shared/domain/root-cause.js";
import { watchListOf } from "../../shared/domain/watch-list.js";
import { type EnforceDeps, enforceBatch, NOT_FOUND_GRACE_SECONDS } from "../../shared/steps/enforce.js";
import {
  actionOf,
  batchFactory,
  contractError,
  describes,
  ec2Instance,
  ec2Mock,
  enforceDeps,
  enforcing,
  ID_A,
  ID_B,
  ID_C,
  ID_D,
  type InstanceShape,
  memoryEnforceIntents,
  modifyInputs,
  only,
  resetMocks,
  result,
  SETTINGS,
  serviceError,
} from "./support.js";

const NOW = new Date("2026-11-28T10:00:30.000Z");
/** A launch by default: the safety gate (IMDSv1 use) only applies to existing instances; see gate.test.ts. */
const batchOf = batchFactory({
  eventId: "evt-1",
  settings: { exemptTagKey: "ops:keep-imdsv1", exemptUntilTagKey: "ops:keep-imdsv1-until" },
});

function awsError(name: string, status: number): EC2ServiceException {
  return serviceError(EC2ServiceException, name, status);
}

function at(secondsAfterNow: number): () => Date {
  return () => new Date(NOW.getTime() + secondsAfterNow * 1000);
}

function deps(now: () => Date = () => NOW): EnforceDeps {
  return enforceDeps(now);
}

const isoAfter = (seconds: number) => new Date(NOW.getTime() + seconds * 1000).toISOString();

beforeEach(resetMocks);

describe("enforceBatch: decisions that change nothing", () => {
  it.each(["terminated", "shutting-down"] as const)("skips a %s instance without modifying it", async (state) => {
    // Prepare
    describes(ec2Instance(ID_A, { state }));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).stage).toBe("done");
    expect(only(out, ID_A).result).toMatchObject({ verdict: "skipped", reason: expect.stringContaining(state) });
    expect(modifyInputs()).toEqual([]);
  });

  it("exempts an instance carrying the configured exemption tag, quoting its reason, and changes nothing", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { tags: [{ Key: "ops:keep-imdsv1", Value: "vendor agent needs IMDSv1 until Q3" }] }));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    const progress = only(out, ID_A);
    expect(actionOf(progress)).toBe("none: exempt");
    expect(progress.result?.verdict).toBe("exempt");
    expect(progress.result?.reason).toContain("ops:keep-imdsv1");
    expect(progress.result?.reason).toContain("vendor agent needs IMDSv1 until Q3");
    expect(modifyInputs()).toEqual([]);
  });

  it("exempts on an empty tag value, saying no reason was given", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { tags: [{ Key: "ops:keep-imdsv1", Value: "" }] }));

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("exempt");
    expect(only(out, ID_A).result?.reason).toContain("(no reason given)");
    expect(modifyInputs()).toEqual([]);
  });

  it("does not honour the default exemption key when another one is configured", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { tags: [{ Key: "imdsv2-guard:exempt", Value: "please" }] }));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).stage).toBe("await-applied");
    expect(modifyInputs()).toEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
  });

  it("does not modify an instance whose metadata endpoint is disabled, and goes on to prove it", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { endpoint: "disabled" }));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    const progress = only(out, ID_A);
    expect(progress.stage).toBe("await-managed");
    expect(progress.stageDeadline).toBe(isoAfter(SETTINGS.managedTimeoutSeconds));
    expect(actionOf(progress)).toContain("endpoint is disabled");
    expect(modifyInputs()).toEqual([]);
  });

  describe("deciding whether a required instance is the guard's change, from recorded facts", () => {
    const recordedOptional = () => enforcing(ID_A, { recordedHttpTokens: "optional" });

    it.each([
      {
        label: "a retry after the launch recorded optional: the crashed attempt's call took",
        progress: recordedOptional,
        retryCount: 1,
        mode: "enforce" as const,
        expected: { kind: "set-required", was: "optional", evidence: "attempt-stopped-after-call" },
        watched: true,
        modified: false,
      },
      {
        label: "the first attempt after the launch recorded optional: the describe may lag, so it sets required again",
        progress: recordedOptional,
        retryCount: 0,
        mode: "enforce" as const,
        expected: { kind: "set-required", was: "optional", evidence: "reasserted" },
        watched: true,
        modified: true,
      },
      {
        label: "a retry in audit mode: no attempt calls modify, so not the guard's",
        progress: recordedOptional,
        retryCount: 2,
        mode: "audit" as const,
        expected: { kind: "already-required" },
        watched: false,
        modified: false,
      },
      {
        label: "a retry where the event recorded nothing: no fact to claim it from",
        progress: () => enforcing(ID_A),
        retryCount: 1,
        mode: "enforce" as const,
        expected: { kind: "already-required" },
        watched: false,
        modified: false,
      },
    ])("$label", async ({ progress, retryCount, mode, expected, watched, modified }) => {
      // Prepare
      describes(ec2Instance(ID_A, { httpTokens: "required", optionsState: "applied" }));

      // Act
      const out = await enforceBatch(batchOf([progress()], { settings: { mode } }), deps(), { retryCount });

      // Assess
      const decided = only(out, ID_A);
      expect(modifyInputs()).toEqual(modified ? [{ InstanceId: ID_A, HttpTokens: "required" }] : []);
      expect(decided.enforcement).toEqual(expected);
      expect(decided.enforcedAt !== undefined).toBe(watched);
      const results = [result(ID_A, { enforcement: decided.enforcement, enforcedAt: decided.enforcedAt })];
      expect(watchListOf(results).instanceIds).toEqual(watched ? [ID_A] : []);
    });
  });

  describe("the intent it stores before calling, and what a later run reads from it", () => {
    const STORED_AT = "2026-11-28T10:00:10.000Z";

    it("stores the round's intent, with HttpTokens as described, before its first modify call", async () => {
      // Prepare
      const { intents, stored } = memoryEnforceIntents();
      describes(ec2Instance(ID_A), ec2Instance(ID_B, { httpTokens: "required" }));
      let storedBeforeModify = -1;
      ec2Mock.on(ModifyInstanceMetadataOptionsCommand).callsFake(() => {
        storedBeforeModify = stored.length;
        return {};
      });

      // Act
      await enforceBatch(
        batchOf([enforcing(ID_A), enforcing(ID_B)], { batchIndex: 3 }),
        enforceDeps(() => NOW, undefined, intents),
      );

      // Assess
      expect(stored).toEqual([
        { eventId: "evt-1", batchIndex: 3, instances: { [ID_A]: "optional" }, at: NOW.toISOString() },
      ]);
      expect(storedBeforeModify).toBe(1);
    });

    it("keeps the intents under the event's ledger key when it has one, as FinalizeBatch keeps the results", async () => {
      const { intents, stored } = memoryEnforceIntents();
      describes(ec2Instance(ID_A));
      const batch = { ...batchOf([enforcing(ID_A)]), ledgerKey: "evt-1#111122223333#eu-west-1" };
      await enforceBatch(
        batch,
        enforceDeps(() => NOW, undefined, intents),
      );
      expect(stored.map((i) => i.eventId)).toEqual(["evt-1#111122223333#eu-west-1"]);
    });

    it("stores nothing in audit mode, where nothing is called", async () => {
      const { intents, stored } = memoryEnforceIntents();
      describes(ec2Instance(ID_A));
      await enforceBatch(
        batchOf([enforcing(ID_A)], { settings: { mode: "audit" } }),
        enforceDeps(() => NOW, undefined, intents),
      );
      expect(stored).toEqual([]);
    });

    it.each([
      { label: "a retry of the step", retryCount: 1, recorded: { recordedHttpTokens: "optional" } },
      { label: "a duplicate run of the same work, which has no retry count", retryCount: 0, recorded: {} },
    ])(
      "$label that finds `required` after its intent: the guard's change, enforced no later than the intent, watched",
      async ({ retryCount, recorded }) => {
        // Prepare: an earlier run stored its intent, called, and died before returning.
        const { intents } = memoryEnforceIntents();
        await intents.record({ eventId: "evt-1", batchIndex: 0 }, { [ID_A]: "optional" }, new Date(STORED_AT), 0);
        describes(ec2Instance(ID_A, { httpTokens: "required", optionsState: "applied" }));

        // Act
        const out = await enforceBatch(
          batchOf([enforcing(ID_A, recorded)]),
          enforceDeps(() => NOW, undefined, intents),
          {
            retryCount,
          },
        );

        // Assess
        const decided = only(out, ID_A);
        expect(modifyInputs()).toEqual([]);
        expect(decided.enforcement).toEqual({ kind: "set-required", was: "optional", evidence: "intent-recorded" });
        expect(actionOf(decided)).toMatch(/^set HttpTokens=required \(was optional; the guard recorded the call/);
        expect(decided.enforcedAt).toBe(STORED_AT);
        const results = [result(ID_A, { enforcement: decided.enforcement, enforcedAt: decided.enforcedAt })];
        expect(watchListOf(results).instanceIds).toEqual([ID_A]);
      },
    );

    it("reads another batch's intent as no evidence of its own change: sets required again, as the describe may lag", async () => {
      const { intents } = memoryEnforceIntents();
      await intents.record({ eventId: "evt-1", batchIndex: 1 }, { [ID_A]: "optional" }, new Date(STORED_AT), 0);
      describes(ec2Instance(ID_A, { httpTokens: "required" }));
      const out = await enforceBatch(
        batchOf([enforcing(ID_A, { recordedHttpTokens: "optional" })]),
        enforceDeps(() => NOW, undefined, intents),
      );
      expect(only(out, ID_A).enforcement).toEqual({ kind: "set-required", was: "optional", evidence: "reasserted" });
      expect(modifyInputs()).toEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
    });

    it("after a run that stored its intent and died before calling: the instance is still optional, so it calls now", async () => {
      const { intents, stored } = memoryEnforceIntents();
      await intents.record({ eventId: "evt-1", batchIndex: 0 }, { [ID_A]: "optional" }, new Date(STORED_AT), 0);
      describes(ec2Instance(ID_A));
      ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

      const out = await enforceBatch(
        batchOf([enforcing(ID_A)]),
        enforceDeps(() => NOW, undefined, intents),
        {
          retryCount: 1,
        },
      );

      expect(modifyInputs()).toEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
      expect(only(out, ID_A).enforcement).toEqual({ kind: "set-required", was: "optional", evidence: "answered" });
      expect(only(out, ID_A).enforcedAt).toBe(NOW.toISOString());
      expect(stored).toHaveLength(2);
    });

    it("enforces even when the intent cannot be stored, and falls back on the retry count when it cannot be read", async () => {
      // Prepare
      const { intents } = memoryEnforceIntents({ failing: new Error("ledger unavailable") });
      describes(ec2Instance(ID_A));
      ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

      // Act
      const first = await enforceBatch(
        batchOf([enforcing(ID_A)]),
        enforceDeps(() => NOW, undefined, intents),
      );
      describes(ec2Instance(ID_A, { httpTokens: "required" }));
      const retried = await enforceBatch(
        batchOf([enforcing(ID_A, { recordedHttpTokens: "optional" })]),
        enforceDeps(() => NOW, undefined, intents),
        { retryCount: 1 },
      );

      // Assess
      expect(only(first, ID_A).enforcement?.evidence).toBe("answered");
      expect(only(retried, ID_A).enforcement?.evidence).toBe("attempt-stopped-after-call");
    });
  });

  it("does not modify an instance already required and applied, and goes on to prove it", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { httpTokens: "required", optionsState: "applied" }));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    const progress = only(out, ID_A);
    expect(progress.stage).toBe("await-managed");
    expect(progress.appliedAt).toBe(NOW.toISOString());
    expect(actionOf(progress)).toBe("none: HttpTokens was already required");
    expect(modifyInputs()).toEqual([]);
  });

  it("waits for an instance already required but still pending, without modifying it", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { httpTokens: "required", optionsState: "pending" }));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    const progress = only(out, ID_A);
    expect(progress.stage).toBe("await-applied");
    expect(progress.stageDeadline).toBe(isoAfter(SETTINGS.applyTimeoutSeconds));
    expect(progress.appliedAt).toBeUndefined();
    expect(modifyInputs()).toEqual([]);
  });

  it("leaves a stopped instance that needs no change unverified: it cannot run the probe", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { state: "stopped", httpTokens: "required" }));

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({ verdict: "unverified", reason: expect.stringContaining("stopped") });
    expect(modifyInputs()).toEqual([]);
  });
});

describe("enforceBatch: audit mode", () => {
  it.each([
    { label: "optional and running", shape: {} },
    { label: "optional and stopped", shape: { state: "stopped" } },
    { label: "optional and pending", shape: { state: "pending", optionsState: "pending" } },
    { label: "required and pending", shape: { httpTokens: "required", optionsState: "pending" } },
  ] satisfies { label: string; shape: InstanceShape }[])(
    "never modifies an instance that is $label",
    async ({ shape }) => {
      // Prepare
      describes(ec2Instance(ID_A, shape));
      ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

      // Act
      await enforceBatch(batchOf([enforcing(ID_A)], { settings: { mode: "audit" } }), deps());

      // Assess
      expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand)).toHaveLength(0);
      expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(1);
    },
  );

  it("notes that audit mode changed nothing and says what it would have done", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));

    // Act
    const out = await enforceBatch(
      batchOf([enforcing(ID_A), enforcing(ID_B)], { settings: { mode: "audit" } }),
      deps(),
    );

    // Assess
    for (const id of [ID_A, ID_B]) {
      const progress = only(out, id);
      expect(progress.stage).toBe("await-managed");
      expect(actionOf(progress)).toBe("audit: would set HttpTokens=required (now optional)");
      expect(progress.notes).toContain("Audit mode: nothing was changed.");
      expect(progress.enforcedAt).toBeUndefined();
    }
    expect(modifyInputs()).toEqual([]);
  });
});

describe("enforceBatch: enforcing", () => {
  it("sends exactly one modify with only InstanceId and HttpTokens=required, leaving hop limit and the rest alone", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    const calls = ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toStrictEqual({ InstanceId: ID_A, HttpTokens: "required" });
    const progress = only(out, ID_A);
    expect(progress).toMatchObject({
      stage: "await-applied",
      enforcement: { kind: "set-required", was: "optional", evidence: "answered" },
      enforcedAt: NOW.toISOString(),
      stageDeadline: isoAfter(SETTINGS.applyTimeoutSeconds),
    });
    expect(progress.result).toBeUndefined();
  });

  it("describes only the instances in the enforce stage, in one call, and passes the others through untouched", async () => {
    // Prepare
    const waiting: InstanceProgress = { instanceId: ID_C, stage: "await-probe", notes: [], commandId: "cmd-1" };
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), waiting, enforcing(ID_B)]), deps());

    // Assess
    const describeCalls = ec2Mock.commandCalls(DescribeInstancesCommand);
    expect(describeCalls).toHaveLength(1);
    expect(describeCalls[0]?.args[0].input.Filters).toEqual([{ Name: "instance-id", Values: [ID_A, ID_B] }]);
    expect(describeCalls[0]?.args[0].input.InstanceIds).toBeUndefined();
    expect(modifyInputs()).toStrictEqual([
      { InstanceId: ID_A, HttpTokens: "required" },
      { InstanceId: ID_B, HttpTokens: "required" },
    ]);
    expect(out.instances.map((i) => i.instanceId)).toEqual([ID_A, ID_C, ID_B]);
    expect(only(out, ID_C)).toBe(waiting);
    expect(out.counts).toEqual({ enforce: 0, awaitApplied: 2, awaitManaged: 0, sendProbe: 0, awaitProbe: 1, done: 0 });
  });

  it("makes no AWS call when no instance is in the enforce stage", async () => {
    // Prepare
    const batch = batchOf([{ instanceId: ID_A, stage: "await-applied", notes: [] }]);

    // Act
    const out = await enforceBatch(batch, deps());

    // Assess
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(out.instances).toEqual(batch.instances);
  });

  it("follows DescribeInstances pages", async () => {
    // Prepare
    ec2Mock
      .on(DescribeInstancesCommand)
      .resolvesOnce({ Reservations: [{ Instances: [ec2Instance(ID_A)] }], NextToken: "page-2" })
      .resolvesOnce({ Reservations: [{ Instances: [ec2Instance(ID_B, { state: "terminated" })] }] });
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)]), deps());

    // Assess
    const describeCalls = ec2Mock.commandCalls(DescribeInstancesCommand);
    expect(describeCalls.map((c) => c.args[0].input.NextToken)).toEqual([undefined, "page-2"]);
    expect(only(out, ID_A).stage).toBe("await-applied");
    expect(only(out, ID_B).result?.verdict).toBe("skipped");
  });

  it("modifies a stopped instance, then leaves it unverified: it cannot run the probe until started", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { state: "stopped" }));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    expect(modifyInputs()).toStrictEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
    const progress = only(out, ID_A);
    expect(actionOf(progress)).toBe("set HttpTokens=required (was optional)");
    expect(progress.result).toMatchObject({ verdict: "unverified", reason: expect.stringContaining("stopped") });
  });

  it("ends in error with the AWS code when the modify is refused, and carries on with the rest", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    ec2Mock
      .on(ModifyInstanceMetadataOptionsCommand, { InstanceId: ID_A })
      .rejects(awsError("UnauthorizedOperation", 403))
      .on(ModifyInstanceMetadataOptionsCommand, { InstanceId: ID_B })
      .resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)]), deps());

    // Assess
    const failed = only(out, ID_A);
    expect(failed.result?.verdict).toBe("error");
    expect(failed.result?.reason).toContain("UnauthorizedOperation");
    expect(failed.result?.reason).toContain("ModifyInstanceMetadataOptions");
    expect(only(out, ID_B).stage).toBe("await-applied");
    expect(modifyInputs()).toHaveLength(2);
  });
});

describe("enforceBatch: throttling", () => {
  it("keeps the throttled instance and the rest of the round in enforce without further modify calls", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B), ec2Instance(ID_C), ec2Instance(ID_D, { state: "terminated" }));
    ec2Mock
      .on(ModifyInstanceMetadataOptionsCommand)
      .resolvesOnce({})
      .rejectsOnce(contractError("ec2Throttled"))
      .resolves({});

    // Act
    const out = await enforceBatch(
      batchOf([enforcing(ID_A), enforcing(ID_B), enforcing(ID_C), enforcing(ID_D)]),
      deps(),
    );

    // Assess
    expect(modifyInputs()).toStrictEqual([
      { InstanceId: ID_A, HttpTokens: "required" },
      { InstanceId: ID_B, HttpTokens: "required" },
    ]);
    expect(only(out, ID_A).stage).toBe("await-applied");
    for (const id of [ID_B, ID_C]) {
      expect(only(out, id)).toMatchObject({ stage: "enforce", stageDeadline: isoAfter(SETTINGS.applyTimeoutSeconds) });
      expect(only(out, id).result).toBeUndefined();
      expect(only(out, id).enforcedAt).toBeUndefined();
    }
    expect(only(out, ID_D).result?.verdict).toBe("skipped");
    expect(out.counts?.enforce).toBe(2);
    expect(out.throttledRounds).toBe(1);
    expect(out.pollSeconds).toBeGreaterThanOrEqual(5);
  });

  it("modifies the throttled instances in the next round, keeping their first deadline", async () => {
    // Prepare
    const deadline = isoAfter(SETTINGS.applyTimeoutSeconds);
    describes(ec2Instance(ID_B));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_B, { stageDeadline: deadline })]), deps(at(10)));

    // Assess
    expect(modifyInputs()).toStrictEqual([{ InstanceId: ID_B, HttpTokens: "required" }]);
    expect(only(out, ID_B).stage).toBe("await-applied");
  });

  it("sends a throttled modify again next round from what its describe said, without describing again", async () => {
    // Prepare: round 1 describes both; B's modify is throttled.
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolvesOnce({}).rejectsOnce(contractError("ec2Throttled"));
    const first = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)]), deps());
    expect(only(first, ID_B).modifyRefused).toEqual({ was: "optional", state: "running" });
    ec2Mock.reset();
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act: round 2.
    const out = await enforceBatch(first, deps(at(10)));

    // Assess: no DescribeInstances, one modify, and the change reported as the guard's from `optional`.
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(0);
    expect(modifyInputs()).toStrictEqual([{ InstanceId: ID_B, HttpTokens: "required" }]);
    expect(only(out, ID_B)).toMatchObject({
      stage: "await-applied",
      enforcement: { kind: "set-required", was: "optional" },
    });
    expect(only(out, ID_B).modifyRefused).toBeUndefined();
  });

  it("describes again before resending a modify that a 5xx answered: it may have taken effect", async () => {
    // Prepare
    describes(ec2Instance(ID_B, { httpTokens: "required" }));
    const batch = batchOf([
      enforcing(ID_B, { modifyOutcomeUnknown: true, modifyRefused: { was: "optional", state: "running" } }),
    ]);

    // Act
    const out = await enforceBatch(batch, deps(at(10)));

    // Assess
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(1);
    expect(modifyInputs()).toHaveLength(0);
    expect(only(out, ID_B).enforcement).toMatchObject({ kind: "set-required", evidence: "answered-with-error" });
  });

  it("gives up with an error once throttling outlasts the apply timeout", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejects(contractError("ec2Throttled"));
    const progress = enforcing(ID_A, { stageDeadline: NOW.toISOString() });

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(1)));

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "error",
      reason: expect.stringContaining("ModifyInstanceMetadataOptions"),
    });
    expect(only(out, ID_A).result?.reason).toContain("HttpTokens was not changed");
  });

  it("keeps the round's instances in enforce when DescribeInstances is throttled, modifying nothing", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).rejects(contractError("ec2Throttled"));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});
    const waiting: InstanceProgress = { instanceId: ID_C, stage: "await-managed", notes: [] };

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B), waiting]), deps());

    // Assess
    expect(modifyInputs()).toEqual([]);
    expect(only(out, ID_A)).toMatchObject({ stage: "enforce", stageDeadline: isoAfter(SETTINGS.applyTimeoutSeconds) });
    expect(only(out, ID_B).stage).toBe("enforce");
    expect(only(out, ID_C)).toEqual(waiting);
    expect(out.throttledRounds).toBe(1);
    expect(out.pollSeconds).toBeGreaterThanOrEqual(5);
  });

  it("backs off further on consecutive throttled rounds and resets once a round goes through", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).rejectsOnce(contractError("ec2Throttled")).resolves({});
    const batch = { ...batchOf([enforcing(ID_A)]), throttledRounds: 3 };

    // Act
    const throttled = await enforceBatch(batch, deps());
    const recovered = await enforceBatch(throttled, deps(at(30)));

    // Assess
    expect(throttled.throttledRounds).toBe(4);
    expect(throttled.pollSeconds).toBeGreaterThan(5);
    expect(throttled.pollSeconds).toBeLessThanOrEqual(40);
    expect(recovered.throttledRounds).toBe(0);
    expect(recovered.pollSeconds).toBe(5);
  });

  it("drains reads for up to 40 s, but backs a throttled modify off for 10 s at most", async () => {
    // Prepare
    const rounds = { throttledRounds: 12 };
    ec2Mock.on(DescribeInstancesCommand).rejectsOnce(contractError("ec2Throttled"));
    const drained = await enforceBatch({ ...batchOf([enforcing(ID_A)]), ...rounds }, deps());
    describes(ec2Instance(ID_A));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejects(contractError("ec2Throttled"));

    // Act
    const modified = await enforceBatch({ ...batchOf([enforcing(ID_A)]), ...rounds }, deps());

    // Assess
    expect(MAX_BACKOFF_SECONDS).toEqual({ drain: 40, modify: 10 });
    expect(drained.throttledRounds).toBe(13);
    expect(drained.pollSeconds).toBeGreaterThan(MAX_BACKOFF_SECONDS.modify);
    expect(drained.pollSeconds).toBeLessThanOrEqual(MAX_BACKOFF_SECONDS.drain);
    expect(modified.throttledRounds).toBe(13);
    expect(modified.pollSeconds).toBeGreaterThanOrEqual(5);
    expect(modified.pollSeconds).toBeLessThanOrEqual(MAX_BACKOFF_SECONDS.modify);
  });

  it("ends in error once DescribeInstances stays throttled past the apply timeout", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).rejects(contractError("ec2Throttled"));
    const progress = enforcing(ID_A, { stageDeadline: NOW.toISOString() });

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(1)));

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "error",
      reason: expect.stringContaining("DescribeInstances"),
    });
    expect(modifyInputs()).toEqual([]);
  });

  it("keeps the round's instances in enforce when DescribeInstances answers 500, like throttling", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).rejects(awsError("InternalError", 500));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A)).toMatchObject({ stage: "enforce", stageDeadline: isoAfter(SETTINGS.applyTimeoutSeconds) });
    expect(only(out, ID_A).result).toBeUndefined();
    expect(out.throttledRounds).toBe(1);
    expect(out.pollSeconds).toBeGreaterThanOrEqual(5);
    expect(modifyInputs()).toEqual([]);
  });

  it("throws NonRetryableAwsError when DescribeInstances is refused for good, modifying nothing", async () => {
    // Prepare
    const cause = awsError("UnauthorizedOperation", 403);
    ec2Mock.on(DescribeInstancesCommand).rejects(cause);

    // Act
    const run = enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableAwsError", cause });
    expect(modifyInputs()).toEqual([]);
  });
});

describe("enforceBatch: a modify answered with a 5xx", () => {
  const TOOK = { kind: "set-required", was: "optional", evidence: "answered-with-error" };

  async function afterA500(): Promise<InstanceProgress> {
    describes(ec2Instance(ID_A));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejects(awsError("InternalError", 500));
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());
    ec2Mock.reset();
    return only(out, ID_A);
  }

  it("keeps the instance in enforce, remembering that the change may have been made", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejects(awsError("InternalError", 500));

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)]), deps());

    // Assess
    expect(only(out, ID_A)).toMatchObject({ stage: "enforce", modifyOutcomeUnknown: true });
    expect(only(out, ID_A).enforcedAt).toBeUndefined();
    expect(only(out, ID_B).stage).toBe("enforce");
    expect(only(out, ID_B).modifyOutcomeUnknown).toBeUndefined();
    expect(modifyInputs()).toEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
    expect(out.throttledRounds).toBe(1);
  });

  it.each([
    { label: "RequestLimitExceeded, which EC2 sends with HTTP 503", error: contractError("ec2Throttled") },
    { label: "Throttling (400)", error: awsError("Throttling", 400) },
  ])("does not mark a throttled modify ($label): EC2 made no change", async ({ error }) => {
    // Prepare
    describes(ec2Instance(ID_A));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejects(error);

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).stage).toBe("enforce");
    expect(only(out, ID_A).modifyOutcomeUnknown).toBeUndefined();
  });

  it("counts the change as the guard's when EC2 shows required next round, without modifying again", async () => {
    // Prepare
    const progress = await afterA500();
    describes(ec2Instance(ID_A, { httpTokens: "required" }));

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(10)));

    // Assess
    expect(modifyInputs()).toEqual([]);
    expect(only(out, ID_A)).toMatchObject({
      stage: "await-managed",
      enforcement: TOOK,
      enforcedAt: isoAfter(10),
      appliedAt: isoAfter(10),
    });
  });

  it("waits for a change that took but is still pending, as its own change", async () => {
    // Prepare
    const progress = await afterA500();
    describes(ec2Instance(ID_A, { httpTokens: "required", optionsState: "pending" }));

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(10)));

    // Assess
    expect(modifyInputs()).toEqual([]);
    expect(only(out, ID_A)).toMatchObject({ stage: "await-applied", enforcement: TOOK, enforcedAt: isoAfter(10) });
    expect(only(out, ID_A).appliedAt).toBeUndefined();
  });

  it("modifies again when the change did not take", async () => {
    // Prepare
    const progress = await afterA500();
    describes(ec2Instance(ID_A));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(10)));

    // Assess
    expect(modifyInputs()).toEqual([{ InstanceId: ID_A, HttpTokens: "required" }]);
    expect(only(out, ID_A)).toMatchObject({
      stage: "await-applied",
      enforcement: { kind: "set-required", was: "optional", evidence: "answered" },
      enforcedAt: isoAfter(10),
    });
  });

  it("does not claim HttpTokens was not changed when a 5xx on the modify meets the deadline", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejects(awsError("InternalError", 500));
    const progress = enforcing(ID_A, { stageDeadline: NOW.toISOString() });

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(1)));

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("error");
    expect(only(out, ID_A).result?.reason).not.toContain("HttpTokens was not changed");
  });

  it("is counted by the watch after enforcing and by the root cause, unlike an instance already required", async () => {
    // Prepare
    const progress = await afterA500();
    describes(ec2Instance(ID_A, { httpTokens: "required" }), ec2Instance(ID_B, { httpTokens: "required" }));
    const out = await enforceBatch(batchOf([progress, enforcing(ID_B)]), deps(at(10)));
    const results = [ID_A, ID_B].map((id) => {
      const { enforcement, enforcedAt } = only(out, id);
      return result(id, { enforcement, enforcedAt, origin: { launchTemplateId: "lt-0a1b2c3d4e5f60718" } });
    });

    // Act
    const watch = watchListOf(results);
    const fixes = sourceFixes(results, "us-east-1");

    // Assess
    expect(watch).toEqual({ instanceIds: [ID_A], since: isoAfter(10), count: 1 });
    expect(results.map(allowedImdsV1)).toEqual([true, false]);
    expect(fixes).toEqual([expect.stringContaining("Launch template lt-0a1b2c3d4e5f60718 launches with IMDSv1")]);
  });
});

describe("enforceBatch: instances EC2 does not show yet", () => {
  it("keeps an instance DescribeInstances does not show in enforce, remembering when it was first missed", async () => {
    // Prepare
    describes(ec2Instance(ID_B));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)]), deps());

    // Assess
    expect(only(out, ID_A)).toMatchObject({ stage: "enforce", firstNotFoundAt: NOW.toISOString() });
    expect(only(out, ID_A).result).toBeUndefined();
    expect(modifyInputs()).toStrictEqual([{ InstanceId: ID_B, HttpTokens: "required" }]);
  });

  it("keeps waiting just inside the grace period", async () => {
    // Prepare
    describes();
    const progress = enforcing(ID_A, { firstNotFoundAt: NOW.toISOString() });

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(NOT_FOUND_GRACE_SECONDS - 1)));

    // Assess
    expect(only(out, ID_A)).toMatchObject({ stage: "enforce", firstNotFoundAt: NOW.toISOString() });
  });

  it("ends in error once the instance stayed invisible for the 120 s grace", async () => {
    // Prepare
    describes();
    const progress = enforcing(ID_A, { firstNotFoundAt: NOW.toISOString() });

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(NOT_FOUND_GRACE_SECONDS)));

    // Assess
    expect(NOT_FOUND_GRACE_SECONDS).toBe(120);
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "error",
      reason: expect.stringContaining("Instance not found"),
    });
  });

  it("treats InvalidInstanceID.NotFound from the modify like an instance not yet visible", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));
    ec2Mock
      .on(ModifyInstanceMetadataOptionsCommand, { InstanceId: ID_A })
      .rejects(contractError("ec2InstanceNotFound"))
      .on(ModifyInstanceMetadataOptionsCommand, { InstanceId: ID_B })
      .resolves({});

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)]), deps());

    // Assess
    expect(only(out, ID_A)).toMatchObject({ stage: "enforce", firstNotFoundAt: NOW.toISOString() });
    expect(only(out, ID_B).stage).toBe("await-applied");
  });

  it("ends in error when the modify still says NotFound after the grace", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejects(contractError("ec2InstanceNotFound"));
    const progress = enforcing(ID_A, { firstNotFoundAt: NOW.toISOString() });

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(NOT_FOUND_GRACE_SECONDS + 5)));

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("error");
  });
});
