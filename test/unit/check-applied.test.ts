import { Logger } from "@aws-lambda-powertools/logger";
import {
  DescribeInstancesCommand,
  EC2Client,
  EC2ServiceException,
  type Instance,
  type InstanceStateName,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ec2 } from "../../shared/aws-clients.js";
import { checkAppliedBatch } from "../../shared/check-applied.js";
import type { Batch, FlowSettings, InstanceProgress } from "../../shared/model.js";

const ec2Mock = mockClient(EC2Client);
const logger = new Logger({ serviceName: "check-applied-test", logLevel: "SILENT" });

const STARTED_AT = "2026-11-28T10:00:00.000Z";
const NOW = new Date("2026-11-28T10:00:42.000Z");
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
const ID_A = "i-0a1b2c3d4e5f60001";
const ID_B = "i-0a1b2c3d4e5f60002";

const isoAfter = (seconds: number) => new Date(NOW.getTime() + seconds * 1000).toISOString();

function batchOf(instances: InstanceProgress[]): Batch {
  return { eventId: "evt-2", trigger: "launch", settings: SETTINGS, startedAt: STARTED_AT, instances };
}

/** An instance Enforce has just modified: waiting for the change to apply, with its deadline still ahead. */
function awaiting(instanceId: string, deadline = isoAfter(60)): InstanceProgress {
  return {
    instanceId,
    stage: "await-applied",
    notes: [],
    action: "set HttpTokens=required (was optional)",
    enforcedAt: STARTED_AT,
    stageDeadline: deadline,
  };
}

function ec2Instance(
  instanceId: string,
  state: InstanceStateName,
  httpTokens: "optional" | "required",
  optionsState: "pending" | "applied",
): Instance {
  return {
    InstanceId: instanceId,
    State: { Name: state },
    MetadataOptions: {
      HttpTokens: httpTokens,
      State: optionsState,
      HttpEndpoint: "enabled",
      HttpPutResponseHopLimit: 2,
    },
  };
}

function describes(...instances: Instance[]): void {
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: instances }] });
}

function deps(now = NOW) {
  return { ec2, logger, now: () => now };
}

function only(batch: Batch, instanceId: string): InstanceProgress {
  const found = batch.instances.find((i) => i.instanceId === instanceId);
  if (!found) throw new Error(`${instanceId} is not in the batch`);
  return found;
}

beforeEach(() => {
  ec2Mock.reset();
});

describe("checkAppliedBatch", () => {
  it("moves an applied instance on to await-managed, recording when it was seen applied", async () => {
    // Prepare
    describes(ec2Instance(ID_A, "running", "required", "applied"));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A)).toMatchObject({
      stage: "await-managed",
      appliedAt: NOW.toISOString(),
      stageDeadline: isoAfter(SETTINGS.managedTimeoutSeconds),
    });
    expect(out.counts?.awaitManaged).toBe(1);
  });

  it("keeps waiting while the change is pending and the deadline is ahead", async () => {
    // Prepare
    const progress = awaiting(ID_A);
    describes(ec2Instance(ID_A, "running", "required", "pending"));

    // Act
    const out = await checkAppliedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
    expect(out.pollSeconds).toBeGreaterThan(0);
  });

  it("ends unverified when the change is still pending at the deadline", async () => {
    // Prepare
    describes(ec2Instance(ID_A, "running", "required", "pending"));

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
    "fails when HttpTokens was reverted to optional (%s)",
    async (optionsState) => {
      // Prepare
      describes(ec2Instance(ID_A, "running", "optional", optionsState));

      // Act
      const out = await checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

      // Assess
      expect(only(out, ID_A).result).toMatchObject({ verdict: "fail", reason: expect.stringContaining("reverted") });
      expect(only(out, ID_A).result?.reason).toContain("optional");
    },
  );

  it.each(["terminated", "shutting-down"] as const)("skips an instance that is %s", async (state) => {
    // Prepare
    describes(ec2Instance(ID_A, state, "required", "applied"));

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
    describes(ec2Instance(ID_A, state, "required", "pending"));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({ verdict: "unverified", reason: expect.stringContaining(state) });
  });

  it("describes only the waiting instances in one call and never modifies anything", async () => {
    // Prepare
    const other: InstanceProgress = { instanceId: ID_B, stage: "send-probe", platform: "linux", notes: [] };
    describes(ec2Instance(ID_A, "running", "required", "applied"));

    // Act
    const out = await checkAppliedBatch(batchOf([awaiting(ID_A), other]), deps());

    // Assess
    const calls = ec2Mock.commandCalls(DescribeInstancesCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input.Filters).toEqual([{ Name: "instance-id", Values: [ID_A] }]);
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand)).toHaveLength(0);
    expect(only(out, ID_B)).toBe(other);
  });

  it("keeps waiting through a throttled check, backing off", async () => {
    // Prepare
    const progress = awaiting(ID_A);
    ec2Mock.on(DescribeInstancesCommand).rejects(
      new EC2ServiceException({
        name: "RequestLimitExceeded",
        $fault: "client",
        $metadata: { httpStatusCode: 503 },
        message: "Request limit exceeded.",
      }),
    );

    // Act
    const out = await checkAppliedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
    expect(out.throttledRounds).toBe(1);
  });

  it("throws RetryableServiceError when DescribeInstances fails with a 500", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).rejects(
      new EC2ServiceException({
        name: "InternalError",
        $fault: "server",
        $metadata: { httpStatusCode: 500 },
        message: "An internal error has occurred",
      }),
    );

    // Act
    const run = checkAppliedBatch(batchOf([awaiting(ID_A)]), deps());

    // Assess
    await expect(run).rejects.toMatchObject({ name: "RetryableServiceError" });
  });
});
