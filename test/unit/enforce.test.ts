import { Logger } from "@aws-lambda-powertools/logger";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import {
  DescribeInstancesCommand,
  EC2Client,
  EC2ServiceException,
  type Instance,
  type InstanceStateName,
  ModifyInstanceMetadataOptionsCommand,
  type Tag,
} from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { cloudwatch, ec2 } from "../../shared/aws-clients.js";
import { type EnforceDeps, enforceBatch, NOT_FOUND_GRACE_SECONDS } from "../../shared/enforce.js";
import { imageSupportLookup } from "../../shared/image-support.js";
import type { Batch, FlowSettings, InstanceProgress, Trigger } from "../../shared/model.js";

const ec2Mock = mockClient(EC2Client);
const cloudWatchMock = mockClient(CloudWatchClient);
const logger = new Logger({ serviceName: "enforce-test", logLevel: "SILENT" });

const STARTED_AT = "2026-11-28T10:00:00.000Z";
const NOW = new Date("2026-11-28T10:00:30.000Z");
const SETTINGS: FlowSettings = {
  mode: "enforce",
  exemptTagKey: "ops:keep-imdsv1",
  applyTimeoutSeconds: 300,
  managedTimeoutSeconds: 600,
  probeTimeoutSeconds: 300,
  exemptUntilTagKey: "ops:keep-imdsv1-until",
  onV1Usage: "hold",
  v1UsageLookbackHours: 24,
  watchRejectedSeconds: 900,
};

const ID_A = "i-0a1b2c3d4e5f60001";
const ID_B = "i-0a1b2c3d4e5f60002";
const ID_C = "i-0a1b2c3d4e5f60003";
const ID_D = "i-0a1b2c3d4e5f60004";

/** A launch by default: the safety gate (IMDSv1 use) only applies to existing instances; see gate.test.ts. */
function batchOf(
  instances: InstanceProgress[],
  settings: Partial<FlowSettings> = {},
  trigger: Trigger = "launch",
): Batch {
  return { eventId: "evt-1", trigger, settings: { ...SETTINGS, ...settings }, startedAt: STARTED_AT, instances };
}

function enforcing(instanceId: string, extra: Partial<InstanceProgress> = {}): InstanceProgress {
  return { instanceId, stage: "enforce", notes: [], ...extra };
}

interface InstanceShape {
  state?: InstanceStateName;
  httpTokens?: "optional" | "required";
  optionsState?: "pending" | "applied";
  endpoint?: "enabled" | "disabled";
  tags?: Tag[];
}

function ec2Instance(instanceId: string, shape: InstanceShape = {}): Instance {
  return {
    InstanceId: instanceId,
    State: { Name: shape.state ?? "running" },
    MetadataOptions: {
      State: shape.optionsState ?? "applied",
      HttpTokens: shape.httpTokens ?? "optional",
      HttpPutResponseHopLimit: 2,
      HttpEndpoint: shape.endpoint ?? "enabled",
      HttpProtocolIpv6: "disabled",
      InstanceMetadataTags: "disabled",
    },
    Tags: shape.tags ?? [{ Key: "Name", Value: "web" }],
  };
}

function describes(...instances: Instance[]): void {
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: instances }] });
}

function awsError(name: string, status: number): EC2ServiceException {
  return new EC2ServiceException({
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
    message: `${name} (simulated)`,
  });
}

function at(secondsAfterNow: number): () => Date {
  return () => new Date(NOW.getTime() + secondsAfterNow * 1000);
}

function deps(now: () => Date = () => NOW): EnforceDeps {
  return { ec2, cloudwatch, logger, now, imageSupport: imageSupportLookup() };
}

function modifyInputs() {
  return ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand).map((c) => c.args[0].input);
}

function only(batch: Batch, instanceId: string): InstanceProgress {
  const found = batch.instances.find((i) => i.instanceId === instanceId);
  if (!found) throw new Error(`${instanceId} is not in the batch`);
  return found;
}

const isoAfter = (seconds: number) => new Date(NOW.getTime() + seconds * 1000).toISOString();

beforeEach(() => {
  ec2Mock.reset();
  cloudWatchMock.reset();
});

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
    expect(progress.action).toBe("none: exempt");
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
    expect(progress.action).toContain("endpoint is disabled");
    expect(modifyInputs()).toEqual([]);
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
    expect(progress.action).toBe("none: HttpTokens was already required");
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
      await enforceBatch(batchOf([enforcing(ID_A)], { mode: "audit" }), deps());

      // Assess
      expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand)).toHaveLength(0);
      expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(1);
    },
  );

  it("notes that audit mode changed nothing and says what it would have done", async () => {
    // Prepare
    describes(ec2Instance(ID_A), ec2Instance(ID_B));

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A), enforcing(ID_B)], { mode: "audit" }), deps());

    // Assess
    for (const id of [ID_A, ID_B]) {
      const progress = only(out, id);
      expect(progress.stage).toBe("await-managed");
      expect(progress.action).toBe("audit: would set HttpTokens=required (now optional)");
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
      action: "set HttpTokens=required (was optional)",
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
    expect(progress.action).toBe("set HttpTokens=required (was optional)");
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
      .rejectsOnce(awsError("RequestLimitExceeded", 503))
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

  it("gives up with an error once throttling outlasts the apply timeout", async () => {
    // Prepare
    describes(ec2Instance(ID_A));
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejects(awsError("RequestLimitExceeded", 503));
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
    ec2Mock.on(DescribeInstancesCommand).rejects(awsError("RequestLimitExceeded", 503));
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
    ec2Mock.on(DescribeInstancesCommand).rejectsOnce(awsError("RequestLimitExceeded", 503)).resolves({});
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

  it("ends in error once DescribeInstances stays throttled past the apply timeout", async () => {
    // Prepare
    ec2Mock.on(DescribeInstancesCommand).rejects(awsError("RequestLimitExceeded", 503));
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

  it("throws RetryableServiceError when DescribeInstances fails with a 500", async () => {
    // Prepare
    const cause = awsError("InternalError", 500);
    ec2Mock.on(DescribeInstancesCommand).rejects(cause);

    // Act
    const run = enforceBatch(batchOf([enforcing(ID_A)]), deps());

    // Assess
    await expect(run).rejects.toMatchObject({ name: "RetryableServiceError", cause });
    expect(modifyInputs()).toEqual([]);
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
      .rejects(awsError("InvalidInstanceID.NotFound", 400))
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
    ec2Mock.on(ModifyInstanceMetadataOptionsCommand).rejects(awsError("InvalidInstanceID.NotFound", 400));
    const progress = enforcing(ID_A, { firstNotFoundAt: NOW.toISOString() });

    // Act
    const out = await enforceBatch(batchOf([progress]), deps(at(NOT_FOUND_GRACE_SECONDS + 5)));

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("error");
  });
});
