import {
  DescribeInstancesCommand,
  EC2ServiceException,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { beforeEach, describe, expect, it } from "vitest";
import { ec2 } from "../../shared/aws/clients/index.js";
import type { InstanceProgress } from "../../shared/domain/model.js";
import {
  CONSISTENCY_WINDOW_SECONDS,
  checkAppliedBatch,
  REVERT_CONFIRM_READS,
} from "../../shared/steps/check-applied.js";
import {
  batchFactory,
  contractError,
  describes,
  ec2Instance,
  ec2Mock,
  ID_A,
  ID_B,
  isoAfter,
  only,
  resetMocks,
  SETTINGS,
  STARTED_AT,
  serviceError,
  silentLogger,
} from "./support.js";

const logger = silentLogger("check-applied-test");

const NOW = new Date("2026-11-28T10:00:42.000Z");
const batchOf = batchFactory({ eventId: "evt-2" });

/** An instance Enforce has just modified: waiting for the change to apply, with its deadline still ahead. */
function awaiting(instanceId: string, deadline = isoAfter(NOW, 60)): InstanceProgress {
  return {
    instanceId,
    stage: "await-applied",
    notes: [],
    enforcement: { kind: "set-required", was: "optional", evidence: "answered" },
    enforcedAt: STARTED_AT,
    stageDeadline: deadline,
  };
}

function deps(now = NOW) {
  return { ec2, logger, now: () => now };
}

beforeEach(resetMocks);

describe("checkAppliedBatch", () => {
  it("moves an applied instance on to await-managed, recording when it was seen applied", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { httpTokens: "required" }));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A)).toMatchObject({
      stage: "await-managed",
      appliedAt: NOW.toISOString(),
      stageDeadline: isoAfter(NOW, SETTINGS.managedTimeoutSeconds),
    });
    expect(out.counts?.awaitManaged).toBe(1);
  });

  it("keeps waiting while the change is pending and the deadline is ahead", async () => {
    // Prepare
    const progress = awaiting(ID_A);
    describes(ec2Instance(ID_A, { httpTokens: "required", optionsState: "pending" }));

    // Act
    const out = await checkAppliedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
    expect(out.pollSeconds).toBeGreaterThan(0);
  });

  it("ends unverified when the change is still pending at the deadline", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { httpTokens: "required", optionsState: "pending" }));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A, NOW.toISOString())]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("not applied within 300 s"),
    });
    expect(only(out, ID_A).result?.reason).toContain("pending");
  });

  it.each(["pending", "applied"] as const)(
    "never fails on one optional read (%s): EC2's describe may lag the modify, so it reads again next round",
    async (optionsState) => {
      // Prepare
      describes(ec2Instance(ID_A, { optionsState }));

      // Act
      const out = await checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

      // Assess
      expect(only(out, ID_A)).toMatchObject({
        stage: "await-applied",
        optionalReads: { since: NOW.toISOString(), count: 1 },
      });
      expect(only(out, ID_A).result).toBeUndefined();
      expect(out.pollSeconds).toBeGreaterThan(0);
    },
  );

  it("forgets earlier optional reads once EC2 shows required, and moves on when applied", async () => {
    // Prepare
    const stale = { ...awaiting(ID_A), optionalReads: { since: isoAfter(NOW, -30), count: 2 } };
    describes(ec2Instance(ID_A, { httpTokens: "required" }));

    // Act
    const out = await checkAppliedBatch(batchOf([stale]), deps());

    // Assess
    expect(only(out, ID_A).stage).toBe("await-managed");
    expect(only(out, ID_A).optionalReads).toBeUndefined();
  });

  it("keeps reading while optional reads have not yet lasted the consistency window", async () => {
    // Prepare: many reads, but all within the window.
    const since = isoAfter(NOW, -(CONSISTENCY_WINDOW_SECONDS - 1));
    const progress = { ...awaiting(ID_A), optionalReads: { since, count: 5 } };
    describes(ec2Instance(ID_A));

    // Act
    const out = await checkAppliedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toMatchObject({ stage: "await-applied", optionalReads: { since, count: 6 } });
  });

  it("keeps reading when the window has passed but not enough reads were made", async () => {
    // Prepare: one earlier read long ago (throttled rounds in between), this is the second.
    const since = isoAfter(NOW, -(CONSISTENCY_WINDOW_SECONDS * 2));
    const progress = { ...awaiting(ID_A), optionalReads: { since, count: REVERT_CONFIRM_READS - 2 } };
    describes(ec2Instance(ID_A));

    // Act
    const out = await checkAppliedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A).result).toBeUndefined();
    expect(only(out, ID_A).optionalReads?.count).toBe(REVERT_CONFIRM_READS - 1);
  });

  it.each(["pending", "applied"] as const)(
    "fails when HttpTokens stays optional (%s) over the reads and past the consistency window: a real revert",
    async (optionsState) => {
      // Prepare
      const since = isoAfter(NOW, -CONSISTENCY_WINDOW_SECONDS);
      const progress = { ...awaiting(ID_A), optionalReads: { since, count: REVERT_CONFIRM_READS - 1 } };
      describes(ec2Instance(ID_A, { optionsState }));

      // Act
      const out = await checkAppliedBatch(batchOf([progress]), deps());

      // Assess
      expect(only(out, ID_A).result).toMatchObject({ verdict: "fail", reason: expect.stringContaining("reverted") });
      expect(only(out, ID_A).result?.reason).toContain("optional");
      expect(only(out, ID_A).result?.reason).toContain(`${CONSISTENCY_WINDOW_SECONDS} s`);
    },
  );

  it("ends unverified, not fail, when the deadline comes before optional reads could be told from a lag", async () => {
    // Prepare
    describes(ec2Instance(ID_A));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A, NOW.toISOString())]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("eventual consistency"),
    });
  });

  it.each(["terminated", "shutting-down"] as const)("skips an instance that is %s", async (state) => {
    // Prepare
    describes(ec2Instance(ID_A, { state, httpTokens: "required" }));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("skipped");
  });

  it("skips an instance that DescribeInstances no longer shows", async () => {
    // Prepare
    describes();

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("skipped");
  });

  it.each(["stopped", "stopping"] as const)("leaves a %s instance unverified", async (state) => {
    // Prepare
    describes(ec2Instance(ID_A, { state, httpTokens: "required", optionsState: "pending" }));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({ verdict: "unverified", reason: expect.stringContaining(state) });
  });

  it("describes only the waiting instances in one call and never modifies anything", async () => {
    // Prepare
    const other: InstanceProgress = { instanceId: ID_B, stage: "send-probe", platform: "linux", notes: [] };
    describes(ec2Instance(ID_A, { httpTokens: "required" }));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A), other]), deps());

    // Assess
    const calls = ec2Mock.commandCalls(DescribeInstancesCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input.Filters).toEqual([{ Name: "instance-id", Values: [ID_A] }]);
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand)).toHaveLength(0);
    expect(only(out, ID_B)).toBe(other);
  });

  it.each([
    {
      label: "throttled",
      error: contractError("ec2Throttled"),
    },
    {
      label: "a 500",
      error: serviceError(EC2ServiceException, "InternalError", 500, "An internal error has occurred"),
    },
  ])("keeps waiting through a check that is $label, backing off like a drain round", async ({ error }) => {
    // Prepare
    const progress = awaiting(ID_A);
    ec2Mock.on(DescribeInstancesCommand).rejects(error);

    // Act
    const out = await checkAppliedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
    expect(out.throttledRounds).toBe(1);
    expect(out.pollSeconds).toBeGreaterThanOrEqual(10);
  });

  it("ends unverified when DescribeInstances keeps answering 500 past the deadline", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).rejects(serviceError(EC2ServiceException, "InternalError", 500));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A, NOW.toISOString())]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("not applied within 300 s"),
    });
  });

  it("throws NonRetryableAwsError when DescribeInstances is refused for good", async () => {
    // Prepare
    const cause = serviceError(EC2ServiceException, "UnauthorizedOperation", 403);
    ec2Mock.on(DescribeInstancesCommand).rejects(cause);

    // Act
    const run = checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableAwsError", cause });
  });
});
