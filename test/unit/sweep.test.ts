import {
  DescribeInstancesCommand,
  type EC2Client,
  GetInstanceMetadataDefaultsCommand,
  type Instance,
  ModifyInstanceMetadataDefaultsCommand,
  type Tag,
} from "@aws-sdk/client-ec2";
import { ExecutionAlreadyExists, StartExecutionCommand } from "@aws-sdk/client-sfn";
import type { SNSClient } from "@aws-sdk/client-sns";
import { beforeEach, describe, expect, it } from "vitest";
import { createHandler as createSweepHandler } from "../../functions/sweep/handler.js";
import { ec2, sfn } from "../../shared/aws/clients/index.js";
import type { SweepConfig } from "../../shared/runtime/config.js";
import { resolveTargets } from "../../shared/steps/resolve-targets.js";
import { sweep, sweepOrganization } from "../../shared/steps/sweep.js";
import {
  ec2Instance,
  ec2Mock,
  fakeContext,
  ID_A,
  ID_B,
  ID_C,
  ID_D,
  reservations,
  resetMocks,
  SETTINGS,
  sfnMock,
  silentLogger,
} from "./support.js";

const logger = silentLogger("sweep-test");

const NOW = new Date("2026-11-28T06:00:00.000Z");
const CONFIG: SweepConfig = {
  stateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:imdsv2-guard",
  mode: "enforce",
  exemptTagKey: SETTINGS.exemptTagKey,
  exemptUntilTagKey: SETTINGS.exemptUntilTagKey,
  enforceAccountDefault: false,
  instancesPerExecution: 500,
  account: "123456789012",
  region: "us-east-1",
};

function optional(instanceId: string, tags: Tag[] = []): Instance {
  return ec2Instance(instanceId, { tags });
}

function fleet(...instances: Instance[]): void {
  ec2Mock.on(DescribeInstancesCommand).resolves(reservations(...instances));
}

function posture(accountLevel: { HttpTokens?: "optional" | "required"; ManagedBy?: "account" | "declarative-policy" }) {
  ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: accountLevel });
}

function startedInputs(): unknown[] {
  return sfnMock.commandCalls(StartExecutionCommand).map((c) => JSON.parse(c.args[0].input.input ?? "null"));
}

function deps(config: Partial<SweepConfig> = {}, now = NOW) {
  return { ec2, sfn, logger, now: () => now, config: { ...CONFIG, ...config } };
}

beforeEach(() => {
  resetMocks();
  sfnMock.on(StartExecutionCommand).resolves({ executionArn: "arn:aws:states:::execution:x" });
});

describe("sweep: exemptions", () => {
  it("leaves out active exemptions and sends lapsed ones through the flow", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet(
      optional(ID_A),
      optional(ID_B, [{ Key: CONFIG.exemptTagKey, Value: "vendor agent" }]),
      optional(ID_C, [
        { Key: CONFIG.exemptTagKey, Value: "until the upgrade" },
        { Key: CONFIG.exemptUntilTagKey, Value: "2026-12-31" },
      ]),
      optional(ID_D, [
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
          instanceIds: [ID_A, ID_D],
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
    fleet(optional(ID_A));

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
    fleet(optional(ID_A), optional(ID_B));

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

describe("sweep: execution names and retries", () => {
  const SCHEDULED = "2026-11-28T06:00:00Z";

  /** StartExecution as Step Functions answers it: a name may start one execution, ever. */
  function stepFunctions(): Set<string> {
    const started = new Set<string>();
    sfnMock.on(StartExecutionCommand).callsFake((input: { name?: string }) => {
      const name = input.name ?? "";
      if (started.has(name)) {
        throw new ExecutionAlreadyExists({ $metadata: { httpStatusCode: 400 }, message: `Execution ${name} exists` });
      }
      started.add(name);
      return { executionArn: `arn:aws:states:us-east-1:123456789012:execution:imdsv2-guard:${name}` };
    });
    return started;
  }

  it("names the executions after the scheduled event's time, not the clock", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet(optional(ID_A));
    const late = new Date("2026-11-28T06:07:33.000Z");

    // Act
    const outcome = await sweep(deps({}, late), { time: SCHEDULED });

    // Assess
    expect(outcome.sweepId).toBe("sweep-202611280600");
    expect(outcome.executions).toEqual([{ name: "sweep-202611280600-1", instances: 1, alreadyStarted: false }]);
    expect(startedInputs()).toEqual([expect.objectContaining({ id: "sweep-202611280600-1" })]);
  });

  it("starts nothing twice when Lambda retries the same scheduled event minutes later", async () => {
    // Prepare
    const started = stepFunctions();
    posture({ HttpTokens: "optional" });
    fleet(optional(ID_A), optional(ID_B), optional(ID_C));
    const config = { instancesPerExecution: 2 };

    // Act
    const first = await sweep(deps(config, new Date("2026-11-28T06:00:04.000Z")), { time: SCHEDULED });
    const retry = await sweep(deps(config, new Date("2026-11-28T06:03:10.000Z")), { time: SCHEDULED });

    // Assess
    expect(first.executions).toEqual([
      { name: "sweep-202611280600-1", instances: 2, alreadyStarted: false },
      { name: "sweep-202611280600-2", instances: 1, alreadyStarted: false },
    ]);
    expect(retry.executions).toEqual([
      { name: "sweep-202611280600-1", instances: 2, alreadyStarted: true },
      { name: "sweep-202611280600-2", instances: 1, alreadyStarted: true },
    ]);
    expect([...started]).toEqual(["sweep-202611280600-1", "sweep-202611280600-2"]);
  });

  it("starts new executions for the next scheduled event", async () => {
    // Prepare
    const started = stepFunctions();
    posture({ HttpTokens: "optional" });
    fleet(optional(ID_A));

    // Act
    await sweep(deps(), { time: SCHEDULED });
    const next = await sweep(deps({}, new Date("2026-11-29T06:00:02.000Z")), { time: "2026-11-29T06:00:00Z" });

    // Assess
    expect(next.executions).toEqual([{ name: "sweep-202611290600-1", instances: 1, alreadyStarted: false }]);
    expect(started.size).toBe(2);
  });

  it.each([
    { label: "no time", scheduled: {} },
    { label: "a time that is not a date", scheduled: { time: "yesterday; rm -rf /" } },
  ])("falls back to the clock with $label", async ({ scheduled }) => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet();

    // Act
    const outcome = await sweep(deps({}, new Date("2026-11-28T06:07:33.000Z")), scheduled);

    // Assess
    expect(outcome.executions.map((e) => e.name)).toEqual(["sweep-202611280607-1"]);
  });

  it("takes the time from the scheduled event the handler receives", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet(optional(ID_A));
    const handler = createSweepHandler(CONFIG, () => new Date("2026-11-28T06:04:00.000Z"));
    const scheduledEvent = {
      version: "0",
      id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
      "detail-type": "Scheduled Event",
      source: "aws.events",
      account: "123456789012",
      time: SCHEDULED,
      region: "us-east-1",
      resources: ["arn:aws:events:us-east-1:123456789012:rule/imdsv2-guard-sweep"],
      detail: {},
    };

    // Act
    const outcome = await handler(scheduledEvent, fakeContext("sweep"));
    const withoutEvent = await handler(null, fakeContext("sweep"));

    // Assess
    expect(outcome.sweepId).toBe("sweep-202611280600");
    expect(withoutEvent.sweepId).toBe("sweep-202611280604");
  });
});

describe("sweep: audit mode and instances with IMDS off", () => {
  it("never changes the account default in audit mode, even with enforceAccountDefault", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    ec2Mock.on(ModifyInstanceMetadataDefaultsCommand).resolves({ Return: true });
    fleet(optional(ID_A));

    // Act
    const outcome = await sweep(deps({ mode: "audit", enforceAccountDefault: true }));

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataDefaultsCommand)).toHaveLength(0);
    expect(outcome.accountPosture).toEqual({ httpTokens: "optional", httpTokensEnforced: false, managedBy: "account" });
    expect(startedInputs()).toEqual([
      expect.objectContaining({ detail: expect.objectContaining({ instanceIds: [ID_A] }) }),
    ]);
  });

  it("skips instances whose metadata endpoint is disabled and counts them apart", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet(optional(ID_A), ec2Instance(ID_B, { endpoint: "disabled" }), ec2Instance(ID_C, { endpoint: "disabled" }));

    // Act
    const outcome = await sweep(deps());

    // Assess
    expect(outcome).toMatchObject({ found: 3, exempt: 0, imdsDisabled: 2 });
    expect(startedInputs()).toEqual([
      expect.objectContaining({
        detail: expect.objectContaining({ instanceIds: [ID_A], fleet: { allowingImdsV1: 1, exempt: 0 } }),
      }),
    ]);
  });

  it("counts an exempt instance with IMDS off as IMDS off, not as exempt", async () => {
    // Prepare
    posture({ HttpTokens: "optional" });
    fleet(ec2Instance(ID_A, { endpoint: "disabled", tags: [{ Key: CONFIG.exemptTagKey, Value: "vendor agent" }] }));

    // Act
    const outcome = await sweep(deps());

    // Assess
    expect(outcome).toMatchObject({ found: 1, exempt: 0, imdsDisabled: 1 });
    expect(outcome.executions).toEqual([{ name: "sweep-202611280600-1", instances: 0, alreadyStarted: false }]);
  });
});

describe("the organization sweep (sweepOrganization), with mocked clients", () => {
  const ORG_CONFIG = {
    ...CONFIG,
    organization: {
      id: "o-a1b2c3d4e5",
      spokeRoleName: "imdsv2-guard-spoke",
      allowedAccounts: [],
      allowedOus: [],
      regions: ["us-east-1"],
      concurrency: 2,
      topics: { topicArn: "arn:aws:sns:us-east-1:123456789012:alerts", slackVerdicts: ["alert"] },
    },
  };
  const published: string[] = [];
  const sns = {
    send: async (command: { input: { Message?: string } }) => {
      published.push(command.input.Message ?? "");
      return { MessageId: "m" };
    },
  };

  beforeEach(() => {
    resetMocks();
    published.length = 0;
  });

  it("fails the run when the organization cannot be listed, so Lambda retries it and the failure queue records it", async () => {
    // Prepare
    const directory = {
      accounts: async () => {
        throw Object.assign(new Error("denied"), { name: "AccessDeniedException" });
      },
      membership: async () => ({ status: "not-member" as const }),
    };

    // Act
    const run = sweepOrganization(
      {
        sfn,
        sns: sns as unknown as SNSClient,
        logger,
        now: () => NOW,
        config: ORG_CONFIG,
        directory,
        ec2For: async () => ec2,
      },
      {},
    );

    // Assess
    await expect(run).rejects.toThrow("denied");
    expect(published).toEqual([]);
    expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it("reports a spoke role that may not describe instances as drift, and the other account as swept", async () => {
    // Prepare
    posture({ HttpTokens: "required", ManagedBy: "account" });
    fleet(optional(ID_A));
    const denied = Object.assign(new Error("You are not authorized to perform this operation."), {
      name: "UnauthorizedOperation",
      $fault: "client",
      $metadata: { httpStatusCode: 403 },
    });
    const directory = {
      accounts: async () => [
        { id: "111100000000", name: "a" },
        { id: "222200000000", name: "b" },
      ],
      membership: async () => ({ status: "not-member" as const }),
    };
    const failing = { send: async () => Promise.reject(denied) };

    // Act
    const outcome = await sweepOrganization({
      sfn,
      sns: sns as unknown as SNSClient,
      logger,
      now: () => NOW,
      config: ORG_CONFIG,
      directory,
      ec2For: async (target) => (target.account === "222200000000" ? (failing as unknown as EC2Client) : ec2),
    });

    // Assess
    expect(outcome.rows.map((r) => [r.account, r.status, r.drift])).toEqual([
      ["111100000000", "swept", undefined],
      ["222200000000", "drift", "spoke role lacks a permission"],
    ]);
    expect(outcome.rows[1]?.reason).toContain("GetInstanceMetadataDefaults");
    const started = startedInputs() as { account: string; region: string; detail: { instanceIds: string[] } }[];
    expect(started.map((s) => [s.account, s.region, s.detail.instanceIds])).toEqual([
      ["111100000000", "us-east-1", [ID_A]],
    ]);
    expect(published).toHaveLength(1);
  });

  it("reports the hub's own StartExecution failure as an error of the pair, not as the member's drift", async () => {
    // Prepare
    posture({ HttpTokens: "optional", ManagedBy: "account" });
    fleet(optional(ID_A));
    sfnMock.on(StartExecutionCommand).rejects(
      Object.assign(new Error("not authorized to perform: states:StartExecution"), {
        name: "AccessDeniedException",
        $fault: "client",
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const directory = {
      accounts: async () => [{ id: "111100000000" }],
      membership: async () => ({ status: "not-member" as const }),
    };

    // Act
    const outcome = await sweepOrganization({
      sfn,
      sns: sns as unknown as SNSClient,
      logger,
      now: () => NOW,
      config: ORG_CONFIG,
      directory,
      ec2For: async () => ec2,
    });

    // Assess
    expect(outcome.rows).toEqual([
      expect.objectContaining({
        status: "error",
        reason: expect.stringContaining("the hub could not start the execution"),
      }),
    ]);
    expect(outcome.rows[0]?.drift).toBeUndefined();
  });
  it("retries a pair whose read EC2 answered with a 500, and sweeps it, instead of leaving it for tomorrow", async () => {
    // Prepare: the member's first GetInstanceMetadataDefaults answers 500, the next one succeeds.
    posture({ HttpTokens: "optional", ManagedBy: "account" });
    fleet(optional(ID_A));
    const serverError = Object.assign(new Error("We encountered an internal error."), {
      name: "InternalError",
      $fault: "server",
      $metadata: { httpStatusCode: 500 },
    });
    let failuresLeft = 1;
    const flaky = {
      send: (command: unknown) => (failuresLeft-- > 0 ? Promise.reject(serverError) : ec2.send(command as never)),
    };
    const slept: number[] = [];

    // Act
    const outcome = await sweepOrganization({
      sfn,
      sns: sns as unknown as SNSClient,
      logger,
      now: () => NOW,
      config: ORG_CONFIG,
      directory: { accounts: async () => [{ id: "111100000000" }], membership: async () => ({ status: "not-member" }) },
      ec2For: async () => flaky as unknown as EC2Client,
      retry: { sleep: async (ms) => void slept.push(ms), random: () => 1 },
    });

    // Assess
    expect(outcome.rows.map((r) => [r.account, r.status])).toEqual([["111100000000", "swept"]]);
    expect(slept).toEqual([1_000]);
    const started = startedInputs() as { detail: { instanceIds: string[] } }[];
    expect(started.map((s) => s.detail.instanceIds)).toEqual([[ID_A]]);
  });
});
