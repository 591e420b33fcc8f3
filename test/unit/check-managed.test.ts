import { Logger } from "@aws-lambda-powertools/logger";
import { DescribeInstancesCommand, EC2Client, type Instance, type InstanceStateName } from "@aws-sdk/client-ec2";
import {
  DescribeInstanceInformationCommand,
  type InstanceInformation,
  type PingStatus,
  type PlatformType,
  SSMClient,
  SSMServiceException,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ec2, ssm } from "../../shared/aws-clients.js";
import { checkManagedBatch } from "../../shared/check-managed.js";
import type { Batch, FlowSettings, InstanceProgress } from "../../shared/model.js";

const ec2Mock = mockClient(EC2Client);
const ssmMock = mockClient(SSMClient);
const logger = new Logger({ serviceName: "check-managed-test", logLevel: "SILENT" });

const STARTED_AT = "2026-11-28T10:00:00.000Z";
const NOW = new Date("2026-11-28T10:02:00.000Z");
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
const ID_C = "i-0a1b2c3d4e5f60003";

const isoAfter = (seconds: number) => new Date(NOW.getTime() + seconds * 1000).toISOString();

function batchOf(instances: InstanceProgress[]): Batch {
  return { eventId: "evt-3", trigger: "launch", settings: SETTINGS, startedAt: STARTED_AT, instances };
}

function awaitingAgent(instanceId: string, deadline = isoAfter(120)): InstanceProgress {
  return {
    instanceId,
    stage: "await-managed",
    notes: [],
    appliedAt: "2026-11-28T10:00:40.000Z",
    stageDeadline: deadline,
  };
}

function registration(instanceId: string, ping: PingStatus, platform: PlatformType): InstanceInformation {
  return { InstanceId: instanceId, PingStatus: ping, PlatformType: platform, AgentVersion: "3.3.1802.0" };
}

function registers(...infos: InstanceInformation[]): void {
  ssmMock.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: infos });
}

function ec2Instance(instanceId: string, state: InstanceStateName = "running"): Instance {
  return {
    InstanceId: instanceId,
    State: { Name: state },
    MetadataOptions: { HttpTokens: "required", State: "applied" },
  };
}

function describes(...instances: Instance[]): void {
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: instances }] });
}

function deps(now = NOW) {
  return { ec2, ssm, logger, now: () => now };
}

function only(batch: Batch, instanceId: string): InstanceProgress {
  const found = batch.instances.find((i) => i.instanceId === instanceId);
  if (!found) throw new Error(`${instanceId} is not in the batch`);
  return found;
}

beforeEach(() => {
  ec2Mock.reset();
  ssmMock.reset();
});

describe("checkManagedBatch", () => {
  it.each([
    { platformType: "Linux", platform: "linux" },
    { platformType: "Windows", platform: "windows" },
  ] as const)(
    "sends an Online $platformType instance on to the probe as $platform",
    async ({ platformType, platform }) => {
      // Prepare
      registers(registration(ID_A, "Online", platformType));
      describes(ec2Instance(ID_A));

      // Act
      const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A)]), deps());

      // Assess
      expect(only(out, ID_A)).toMatchObject({
        stage: "send-probe",
        platform,
        stageDeadline: isoAfter(SETTINGS.probeTimeoutSeconds),
      });
      expect(only(out, ID_A).result).toBeUndefined();
    },
  );

  it("asks SSM about the waiting instances only, in one call", async () => {
    // Prepare
    const probing: InstanceProgress = { instanceId: ID_C, stage: "await-probe", notes: [], commandId: "cmd-1" };
    registers(registration(ID_A, "Online", "Linux"), registration(ID_B, "Online", "Windows"));
    describes();

    // Act
    const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A), awaitingAgent(ID_B), probing]), deps());

    // Assess
    const calls = ssmMock.commandCalls(DescribeInstanceInformationCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input.Filters).toEqual([{ Key: "InstanceIds", Values: [ID_A, ID_B] }]);
    expect(only(out, ID_C)).toBe(probing);
    expect(out.counts).toMatchObject({ sendProbe: 2, awaitProbe: 1 });
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(0);
  });

  it("keeps waiting for an agent that has not registered yet while the deadline is ahead", async () => {
    // Prepare
    const progress = awaitingAgent(ID_A);
    registers();
    describes(ec2Instance(ID_A));

    // Act
    const out = await checkManagedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
  });

  it("ends unverified naming AmazonSSMManagedInstanceCore when the agent never registered by the deadline", async () => {
    // Prepare
    registers();
    describes(ec2Instance(ID_A));

    // Act
    const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A, NOW.toISOString())]), deps());

    // Assess
    const result = only(out, ID_A).result;
    expect(result?.verdict).toBe("unverified");
    expect(result?.reason).toContain("never registered with SSM");
    expect(result?.reason).toContain("AmazonSSMManagedInstanceCore");
    expect(result?.secondsToApplied).toBe(40);
  });

  it("names the ping status of an agent that registered but is not online at the deadline", async () => {
    // Prepare
    registers(registration(ID_A, "ConnectionLost", "Linux"));
    describes(ec2Instance(ID_A));

    // Act
    const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A, NOW.toISOString())]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("ping status is ConnectionLost"),
    });
  });

  it.each(["stopped", "stopping"] as const)("leaves a %s instance unverified", async (state) => {
    // Prepare
    registers(registration(ID_A, "ConnectionLost", "Linux"));
    describes(ec2Instance(ID_A, state));

    // Act
    const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining(`Instance is ${state}`),
    });
  });

  it.each(["terminated", "shutting-down"] as const)("skips an instance that is %s", async (state) => {
    // Prepare
    registers();
    describes(ec2Instance(ID_A, state));

    // Act
    const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("skipped");
  });

  it("ends unverified for a platform it has no probe for", async () => {
    // Prepare
    registers(registration(ID_A, "Online", "MacOS"));
    describes(ec2Instance(ID_A));

    // Act
    const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: "No probe for platform MacOS.",
    });
  });

  it("follows DescribeInstanceInformation pages", async () => {
    // Prepare
    ssmMock
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce({ InstanceInformationList: [registration(ID_A, "Online", "Linux")], NextToken: "next" })
      .resolvesOnce({ InstanceInformationList: [registration(ID_B, "Online", "Windows")] });
    describes();

    // Act
    const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A), awaitingAgent(ID_B)]), deps());

    // Assess
    expect(ssmMock.commandCalls(DescribeInstanceInformationCommand)).toHaveLength(2);
    expect(only(out, ID_A).platform).toBe("linux");
    expect(only(out, ID_B).platform).toBe("windows");
  });

  it("keeps waiting through a throttled SSM call", async () => {
    // Prepare
    const progress = awaitingAgent(ID_A);
    ssmMock.on(DescribeInstanceInformationCommand).rejects(
      new SSMServiceException({
        name: "ThrottlingException",
        $fault: "client",
        $metadata: { httpStatusCode: 400 },
        message: "Rate exceeded",
      }),
    );

    // Act
    const out = await checkManagedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
    expect(out.throttledRounds).toBe(1);
  });

  it("throws RetryableServiceError when SSM answers 500", async () => {
    // Prepare
    ssmMock.on(DescribeInstanceInformationCommand).rejects(
      new SSMServiceException({
        name: "InternalServerError",
        $fault: "server",
        $metadata: { httpStatusCode: 500 },
        message: "internal",
      }),
    );

    // Act
    const run = checkManagedBatch(batchOf([awaitingAgent(ID_A)]), deps());

    // Assess
    await expect(run).rejects.toMatchObject({ name: "RetryableServiceError" });
  });
});
