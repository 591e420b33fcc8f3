import { DescribeInstancesCommand, EC2ServiceException, type InstanceStateName } from "@aws-sdk/client-ec2";
import {
  DescribeInstanceInformationCommand,
  type InstanceInformation,
  type PingStatus,
  type PlatformType,
  SSMServiceException,
} from "@aws-sdk/client-ssm";
import { beforeEach, describe, expect, it } from "vitest";
import { ec2, ssm } from "../../shared/aws/clients/index.js";
import type { InstanceProgress } from "../../shared/domain/model.js";
import { checkManagedBatch } from "../../shared/steps/check-managed.js";
import {
  batchFactory,
  contractError,
  ec2Instance,
  ec2Mock,
  ID_A,
  ID_B,
  ID_C,
  isoAfter,
  only,
  reservations,
  resetMocks,
  SETTINGS,
  serviceError,
  silentLogger,
  ssmMock,
} from "./support.js";

const logger = silentLogger("check-managed-test");

const NOW = new Date("2026-11-28T10:02:00.000Z");
const batchOf = batchFactory({ eventId: "evt-3" });

function awaitingAgent(instanceId: string, deadline = isoAfter(NOW, 120)): InstanceProgress {
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

/** An instance Enforce switched to IMDSv2, as DescribeInstances shows it while the agent is awaited. */
function describes(...instances: { id: string; state?: InstanceStateName }[]): void {
  ec2Mock
    .on(DescribeInstancesCommand)
    .resolves(reservations(...instances.map(({ id, state }) => ec2Instance(id, { state, httpTokens: "required" }))));
}

function deps(now = NOW) {
  return { ec2, ssm, logger, now: () => now };
}

beforeEach(resetMocks);

describe("checkManagedBatch", () => {
  it.each([
    { platformType: "Linux", platform: "linux" },
    { platformType: "Windows", platform: "windows" },
  ] as const)(
    "sends an Online $platformType instance on to the probe as $platform",
    async ({ platformType, platform }) => {
      // Prepare
      registers(registration(ID_A, "Online", platformType));
      describes({ id: ID_A });

      // Act
      const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A)]), deps());

      // Assess
      expect(only(out, ID_A)).toMatchObject({
        stage: "send-probe",
        platform,
        stageDeadline: isoAfter(NOW, SETTINGS.probeTimeoutSeconds),
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
    describes({ id: ID_A });

    // Act
    const out = await checkManagedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
  });

  it("ends unverified naming AmazonSSMManagedInstanceCore when the agent never registered by the deadline", async () => {
    // Prepare
    registers();
    describes({ id: ID_A });

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
    describes({ id: ID_A });

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
    describes({ id: ID_A, state });

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
    describes({ id: ID_A, state });

    // Act
    const out = await checkManagedBatch(batchOf([awaitingAgent(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("skipped");
  });

  it("ends unverified for a platform it has no probe for", async () => {
    // Prepare
    registers(registration(ID_A, "Online", "MacOS"));
    describes({ id: ID_A });

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

  it.each([
    { label: "throttled", error: contractError("ssmThrottled") },
    { label: "a 500", error: serviceError(SSMServiceException, "InternalServerError", 500, "internal") },
  ])("keeps waiting through an SSM call that is $label, as a drain round", async ({ error }) => {
    // Prepare
    const progress = awaitingAgent(ID_A);
    ssmMock.on(DescribeInstanceInformationCommand).rejects(error);

    // Act
    const out = await checkManagedBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
    expect(out.throttledRounds).toBe(1);
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(0);
  });

  it("keeps waiting through a 500 on DescribeInstances, and ends unverified once it lasts past the deadline", async () => {
    // Prepare
    registers();
    ec2Mock.on(DescribeInstancesCommand).rejects(serviceError(EC2ServiceException, "InternalError", 500));
    const progress = awaitingAgent(ID_A);

    // Act
    const waiting = await checkManagedBatch(batchOf([progress]), deps());
    const late = await checkManagedBatch(batchOf([awaitingAgent(ID_A, NOW.toISOString())]), deps());

    // Assess
    expect(only(waiting, ID_A)).toEqual(progress);
    expect(waiting.throttledRounds).toBe(1);
    expect(only(late, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("never registered with SSM"),
    });
  });

  it("throws NonRetryableAwsError when SSM refuses the call for good", async () => {
    // Prepare
    const cause = serviceError(SSMServiceException, "AccessDeniedException", 400);
    ssmMock.on(DescribeInstanceInformationCommand).rejects(cause);

    // Act
    const run = checkManagedBatch(batchOf([awaitingAgent(ID_A)]), deps());

    // Assess
    await expect(run).rejects.toMatchObject({ name: "NonRetryableAwsError", cause });
  });
});
