import { Logger } from "@aws-lambda-powertools/logger";
import {
  DescribeInstancesCommand,
  EC2Client,
  GetInstanceMetadataDefaultsCommand,
  type Instance,
  ModifyInstanceMetadataDefaultsCommand,
  type Tag,
} from "@aws-sdk/client-ec2";
import { SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ec2, sfn } from "../../shared/aws-clients.js";
import type { FlowSettings } from "../../shared/model.js";
import { resolveTargets } from "../../shared/resolve-targets.js";
import { type SweepConfig, sweep } from "../../shared/sweep.js";

const ec2Mock = mockClient(EC2Client);
const sfnMock = mockClient(SFNClient);
const logger = new Logger({ serviceName: "sweep-test", logLevel: "SILENT" });

const NOW = new Date("2026-11-28T06:00:00.000Z");
const CONFIG: SweepConfig = {
  stateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:imdsv2-guard",
  exemptTagKey: "imdsv2-guard:exempt",
  exemptUntilTagKey: "imdsv2-guard:exempt-until",
  enforceAccountDefault: false,
  instancesPerExecution: 500,
  account: "123456789012",
  region: "us-east-1",
};
const SETTINGS: FlowSettings = {
  mode: "enforce",
  exemptTagKey: CONFIG.exemptTagKey,
  exemptUntilTagKey: CONFIG.exemptUntilTagKey,
  applyTimeoutSeconds: 300,
  managedTimeoutSeconds: 600,
  probeTimeoutSeconds: 300,
  onV1Usage: "hold",
  v1UsageLookbackHours: 24,
  watchRejectedSeconds: 900,
};

function optional(instanceId: string, tags: Tag[] = []): Instance {
  return {
    InstanceId: instanceId,
    State: { Name: "running" },
    MetadataOptions: { HttpTokens: "optional" },
    Tags: tags,
  };
}

function fleet(...instances: Instance[]): void {
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: instances }] });
}

function posture(accountLevel: { HttpTokens?: "optional" | "required"; ManagedBy?: "account" | "declarative-policy" }) {
  ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: accountLevel });
}

function startedInputs(): unknown[] {
  return sfnMock.commandCalls(StartExecutionCommand).map((c) => JSON.parse(c.args[0].input.input ?? "null"));
}

function deps(config: Partial<SweepConfig> = {}) {
  return { ec2, sfn, logger, now: () => NOW, config: { ...CONFIG, ...config } };
}

beforeEach(() => {
  ec2Mock.reset();
  sfnMock.reset();
  sfnMock.on(StartExecutionCommand).resolves({ executionArn: "arn:aws:states:::execution:x" });
});

describe("sweep: exemptions", () => {
  it("leaves out active exemptions and sends lapsed ones through the flow", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet(
      optional("i-0a1b2c3d4e5f60001"),
      optional("i-0a1b2c3d4e5f60002", [{ Key: CONFIG.exemptTagKey, Value: "vendor agent" }]),
      optional("i-0a1b2c3d4e5f60003", [
        { Key: CONFIG.exemptTagKey, Value: "until the upgrade" },
        { Key: CONFIG.exemptUntilTagKey, Value: "2026-12-31" },
      ]),
      optional("i-0a1b2c3d4e5f60004", [
        { Key: CONFIG.exemptTagKey, Value: "until the upgrade" },
        { Key: CONFIG.exemptUntilTagKey, Value: "2026-11-27" },
      ]),
    );

    // Act
    const outcome = await sweep(deps());

    // Assess
    expect(outcome).toMatchObject({ found: 4, exempt: 2 });
    expect(startedInputs()).toEqual([
      expect.objectContaining({
        detail: expect.objectContaining({
          instanceIds: ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60004"],
          fleet: { allowingImdsV1: 4, exempt: 2 },
        }),
      }),
    ]);
  });
});

describe("sweep: the account default", () => {
  it("reads the posture and hands it to the flow, changing nothing by default", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet(optional("i-0a1b2c3d4e5f60001"));

    // Act
    const outcome = await sweep(deps());

    // Assess
    const expected = { httpTokens: "optional", httpTokensEnforced: false, managedBy: "account" };
    expect(outcome.accountPosture).toEqual(expected);
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataDefaultsCommand)).toHaveLength(0);
    expect(startedInputs()).toEqual([
      expect.objectContaining({ detail: expect.objectContaining({ accountPosture: expected }) }),
    ]);
  });

  it("sets the default to required with enforceAccountDefault, and says the guard changed it", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    ec2Mock.on(ModifyInstanceMetadataDefaultsCommand).resolves({ Return: true });
    fleet();

    // Act
    const outcome = await sweep(deps({ enforceAccountDefault: true }));

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataDefaultsCommand).map((c) => c.args[0].input)).toStrictEqual([
      { HttpTokens: "required" },
    ]);
    expect(outcome.accountPosture).toMatchObject({ httpTokens: "required", changedByGuard: true });
  });

  it("leaves a default managed by a declarative policy alone even with enforceAccountDefault", async () => {
    // Prepare
    posture({ HttpTokens: "optional", ManagedBy: "declarative-policy" });
    fleet();

    // Act
    const outcome = await sweep(deps({ enforceAccountDefault: true }));

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataDefaultsCommand)).toHaveLength(0);
    expect(outcome.accountPosture).toEqual({
      httpTokens: "optional",
      httpTokensEnforced: false,
      managedBy: "declarative-policy",
    });
  });

  it("starts one execution for a clean fleet, so the posture is still reported", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet();

    // Act
    const outcome = await sweep(deps());

    // Assess
    expect(outcome.executions).toEqual([{ name: "sweep-202611280600-1", instances: 0, alreadyStarted: false }]);
    expect(startedInputs()).toEqual([
      expect.objectContaining({
        detail: expect.objectContaining({ instanceIds: [], fleet: { allowingImdsV1: 0, exempt: 0 } }),
      }),
    ]);
  });

  it("starts executions whose input ResolveTargets reads back as a sweep with its posture and fleet", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet(optional("i-0a1b2c3d4e5f60001"), optional("i-0a1b2c3d4e5f60002"));

    // Act
    await sweep(deps());
    const resolved = resolveTargets(
      startedInputs()[0],
      { settings: SETTINGS, guardRoleArnPrefix: "arn:aws:sts::123456789012:assumed-role/guard/", batchSize: 50 },
      NOW,
    );

    // Assess
    expect(resolved.trigger).toBe("sweep");
    expect(resolved.accountPosture).toEqual({
      httpTokens: "optional",
      httpTokensEnforced: false,
      managedBy: "account",
    });
    expect(resolved.fleet).toEqual({ allowingImdsV1: 2, exempt: 0 });
    expect(resolved.targetCount).toBe(2);
  });
});
