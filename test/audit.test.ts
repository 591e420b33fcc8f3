import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CloudWatchClient, GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import {
  DescribeInstancesCommand,
  DescribeRegionsCommand,
  EC2Client,
  GetInstanceMetadataDefaultsCommand,
} from "@aws-sdk/client-ec2";
import { ListAccountsCommand, OrganizationsClient } from "@aws-sdk/client-organizations";
import { ListStateMachinesCommand, SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { AssumeRoleCommand, type AssumeRoleCommandInput, STSClient } from "@aws-sdk/client-sts";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import * as z from "zod";
import {
  type AuditClients,
  findGuardStateMachine,
  listEnabledRegions,
  StateMachineNotFoundError,
} from "../audit/audit.js";
import { type AwsAccess, organizationAccess } from "../audit/aws-access.js";
import { type AuditHooks, type AuditIo, runAudit } from "../audit/command.js";
import { runSimulatedAudit, type SimulatedAuditHooks } from "../local/runner/simulated-audit.js";
import type { SimAccount } from "../local/sim/sim-account.js";
import { SWEEP_DETAIL_TYPE, SWEEP_SOURCE } from "../shared/domain/event.js";
import { DEFAULT_FLOW_SETTINGS } from "../shared/runtime/config.js";
import { resolveTargets } from "../shared/steps/resolve-targets.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin", "imdsv2-guard.mjs");

/** The fleet of local/scenarios/audit-fleet.json, by role. */
const FLEET = {
  compliant: "i-0a0d1700000000001",
  quiet: "i-0a0d1700000000002",
  legacyV1: "i-0a0d1700000000003",
  youngV1: "i-0a0d1700000000004",
  exempt: "i-0a0d1700000000005",
  lapsed: "i-0a0d1700000000006",
  stopped: "i-0a0d1700000000007",
  windowsV1: "i-0a0d1700000000008",
  imdsOff: "i-0a0d1700000000009",
};

const auditDocumentSchema = z.object({
  schema: z.literal("imdsv2-guard.audit.v1"),
  generatedAt: z.iso.datetime(),
  regions: z.array(
    z.object({
      region: z.string(),
      account: z.object({ httpTokens: z.string(), httpTokensEnforced: z.boolean(), managedBy: z.string() }),
      instances: z.array(
        z.object({
          instanceId: z.string(),
          name: z.string().optional(),
          state: z.string(),
          platform: z.enum(["linux", "windows"]),
          httpTokens: z.string(),
          httpEndpoint: z.string(),
          exemption: z.object({
            status: z.enum(["none", "active", "lapsed"]),
            reason: z.string().optional(),
            until: z.string().optional(),
          }),
          imdsV1Calls: z.object({ last24h: z.number(), last7d: z.number() }),
          readiness: z.string(),
        }),
      ),
      summary: z.object({
        instances: z.number(),
        requireImdsV2: z.number(),
        allowImdsV1: z.number(),
        imdsDisabled: z.number(),
        exempt: z.number(),
        lapsedExemptions: z.number(),
        imdsV1Use24h: z.number(),
        imdsV1Use7d: z.number(),
        readyToEnforce: z.array(z.string()),
        needsWork: z.array(z.string()),
      }),
    }),
  ),
  errors: z.array(z.object({ region: z.string(), kind: z.string(), code: z.string().optional(), message: z.string() })),
  executions: z.array(
    z.object({
      region: z.string(),
      stateMachineArn: z.string(),
      name: z.string(),
      executionArn: z.string(),
      instances: z.number(),
      alreadyStarted: z.boolean(),
    }),
  ),
});

const sweepInputSchema = z.strictObject({
  version: z.literal("0"),
  id: z.string(),
  "detail-type": z.literal(SWEEP_DETAIL_TYPE),
  source: z.literal(SWEEP_SOURCE),
  account: z.string(),
  region: z.string(),
  time: z.iso.datetime(),
  detail: z.strictObject({
    sweepId: z.string(),
    instanceIds: z.array(z.string()),
    accountPosture: z.object({ httpTokens: z.string(), httpTokensEnforced: z.boolean(), managedBy: z.string() }),
    fleet: z.object({ allowingImdsV1: z.number(), exempt: z.number() }),
  }),
});

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the command in this process, as the bin does, with stdout and stderr captured. */
async function audit(argv: string[], hooks: AuditHooks = {}, tty = false): Promise<Captured> {
  return captured(tty, WIDE, (io) => runAudit(argv, io, hooks));
}

/** Runs `npm start -- audit ...` (the audit against the simulated account) in this process. */
async function simulated(
  argv: string[],
  hooks: SimulatedAuditHooks = {},
  tty = false,
  width = WIDE,
): Promise<Captured> {
  return captured(tty, width, (io) => runSimulatedAudit(argv, io, hooks));
}

/** Wide enough that no row wraps, so a row can be read as one line. */
const WIDE = 300;

async function captured(tty: boolean, width: number, run: (io: AuditIo) => Promise<number>): Promise<Captured> {
  let stdout = "";
  let stderr = "";
  const code = await run({
    width,
    stdout: { write: (t: string) => (stdout += t), isTTY: tty },
    stderr: { write: (t: string) => (stderr += t), isTTY: tty },
  });
  return { code, stdout, stderr };
}

function json(out: Captured) {
  return auditDocumentSchema.parse(JSON.parse(out.stdout));
}

/** The row of the table that starts with this instance id. */
function rowOf(stdout: string, instanceId: string): string {
  const row = stdout.split("\n").find((line) => line.startsWith(instanceId));
  if (row === undefined) throw new Error(`no row for ${instanceId} in:\n${stdout}`);
  return row;
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "imdsv2-guard-audit-"));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe("npm start -- audit (the simulated account): the report", () => {
  it("prints one row per instance with its readiness, then the region's summary", async () => {
    // Act
    const out = await simulated([]);

    // Assess
    expect(out.code).toBe(0);
    expect(out.stderr).toBe("");
    expect(out.stdout).toMatch(/^== eu-west-1: account default HttpTokens=no-preference, HttpTokensEnforced=disabled/);
    expect(rowOf(out.stdout, FLEET.compliant)).toMatch(/web-1\s+running\s+required\s+-\s+0\/0\s+compliant$/);
    expect(rowOf(out.stdout, FLEET.quiet)).toMatch(/optional\s+-\s+0\/0\s+READY$/);
    expect(rowOf(out.stdout, FLEET.legacyV1)).toMatch(/optional\s+-\s+288\/2016\s+IMDSv1 IN USE$/);
    expect(rowOf(out.stdout, FLEET.youngV1)).toMatch(/\s720\/1440\s+IMDSv1 IN USE$/);
    expect(rowOf(out.stdout, FLEET.exempt)).toMatch(/until\s.*\s1440\/10k\s+exempt$/);
    expect(rowOf(out.stdout, FLEET.lapsed)).toMatch(/LAPSED 2026-06-30: migration.*\s0\/0\s+READY$/);
    expect(rowOf(out.stdout, FLEET.stopped)).toMatch(/staging-db\s+stopped\s+optional.*READY$/);
    expect(rowOf(out.stdout, FLEET.windowsV1)).toMatch(/\s96\/672\s+IMDSv1 IN USE$/);
    expect(rowOf(out.stdout, FLEET.imdsOff)).toMatch(/IMDS off$/);
    expect(out.stdout).toContain(
      "eu-west-1: 9 instances: 1 requiring IMDSv2, 7 allowing IMDSv1, 1 with IMDS off; 1 exempt, 1 lapsed exemption; " +
        "IMDSv1 used by 4 in the last 24 h and 4 in the last 7 days.",
    );
    expect(out.stdout).toContain(`Ready to enforce (3): ${FLEET.quiet}, ${FLEET.lapsed}, ${FLEET.stopped}`);
    expect(out.stdout).toContain(
      `Needs work first, IMDSv1 in use (3): ${FLEET.legacyV1}, ${FLEET.youngV1}, ${FLEET.windowsV1}`,
    );
    expect(out.stdout).toContain("npm start -- audit --start");
  });

  it("fits 100 columns: names and exemptions wrap inside their column, and readiness stays whole", async () => {
    // Act
    const out = await simulated([], {}, false, 100);

    // Assess
    const lines = out.stdout.split("\n");
    expect(lines.filter((l) => [...l].length > 100)).toEqual([]);
    const exempt = lines.findIndex((l) => l.startsWith(FLEET.exempt));
    expect(lines[exempt]).toMatch(/\s1440\/10k\s+exempt$/);
    const column = lines.find((l) => l.startsWith("instance "))?.indexOf("exempt") ?? -1;
    expect(column).toBeGreaterThan(0);
    const below = lines.slice(exempt + 1, exempt + 6).map((l) => l.slice(column).trim());
    expect(below.join(" ")).toContain("vendor agent needs IMDSv1");
    expect(lines.filter((l) => /\b(READY|IMDSv1 IN USE|exempt|compliant|IMDS off)$/.test(l))).toHaveLength(9);
  });

  it("prints the JSON document: posture, instances, counts, readiness, exemptions and 24 h vs 7 d use", async () => {
    // Act
    const out = await simulated(["--json", "--regions", "all"]);

    // Assess
    expect(out.code).toBe(0);
    const doc = json(out);
    expect(doc.errors).toEqual([]);
    expect(doc.executions).toEqual([]);
    expect(doc.regions).toHaveLength(1);
    const [region] = doc.regions;
    expect(region?.region).toBe("eu-west-1");
    expect(region?.account).toEqual({ httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account" });
    expect(region?.summary).toEqual({
      instances: 9,
      requireImdsV2: 1,
      allowImdsV1: 7,
      imdsDisabled: 1,
      exempt: 1,
      lapsedExemptions: 1,
      imdsV1Use24h: 4,
      imdsV1Use7d: 4,
      readyToEnforce: [FLEET.quiet, FLEET.lapsed, FLEET.stopped],
      needsWork: [FLEET.legacyV1, FLEET.youngV1, FLEET.windowsV1],
    });
    const byId = new Map(region?.instances.map((i) => [i.instanceId, i]));
    expect(Object.fromEntries([...byId].map(([id, i]) => [id, i.readiness]))).toEqual({
      [FLEET.compliant]: "compliant",
      [FLEET.quiet]: "ready",
      [FLEET.legacyV1]: "imdsv1-in-use",
      [FLEET.youngV1]: "imdsv1-in-use",
      [FLEET.exempt]: "exempt",
      [FLEET.lapsed]: "ready",
      [FLEET.stopped]: "ready",
      [FLEET.windowsV1]: "imdsv1-in-use",
      [FLEET.imdsOff]: "imds-disabled",
    });
    // 12 calls an hour for months: a full day and a full week. 30 an hour, but up for 48 h only: the week holds 2 days.
    expect(byId.get(FLEET.legacyV1)?.imdsV1Calls).toEqual({ last24h: 288, last7d: 2016 });
    expect(byId.get(FLEET.youngV1)?.imdsV1Calls).toEqual({ last24h: 720, last7d: 1440 });
    expect(byId.get(FLEET.windowsV1)).toMatchObject({ platform: "windows", imdsV1Calls: { last24h: 96, last7d: 672 } });
    expect(byId.get(FLEET.lapsed)?.exemption).toEqual({
      status: "lapsed",
      reason: "migration to the new SDK (OPS-987)",
      until: "2026-06-30",
    });
    expect(byId.get(FLEET.exempt)?.exemption).toMatchObject({ status: "active", until: "2030-06-30" });
    expect(byId.get(FLEET.stopped)?.state).toBe("stopped");
    expect(byId.get(FLEET.imdsOff)?.httpEndpoint).toBe("disabled");
  });

  it("reads exemptions from the tag keys given on the command line", async () => {
    // Act: with other keys, the fleet's imdsv2-guard:* tags mean nothing.
    const out = await simulated(["--json", "--exempt-tag-key", "acme:exempt", "--exempt-until-tag-key", "acme:until"]);

    // Assess
    const summary = json(out).regions[0]?.summary;
    expect(summary).toMatchObject({ exempt: 0, lapsedExemptions: 0 });
    expect(summary?.needsWork).toContain(FLEET.exempt);
  });

  it("shows progress on stderr at a terminal, and nothing otherwise", async () => {
    // Act
    const atTerminal = await simulated([], {}, true);
    const piped = await simulated([], {}, false);
    const jsonAtTerminal = await simulated(["--json"], {}, true);

    // Assess
    expect(atTerminal.stderr).toContain("scanning eu-west-1: 9 instances…");
    expect(atTerminal.stderr).toContain("reading IMDSv1 metrics for 9 instances in eu-west-1…");
    expect(atTerminal.stderr.endsWith("\r\u001b[2K")).toBe(true);
    expect(piped.stderr).toBe("");
    expect(jsonAtTerminal.stderr).toBe("");
  });

  it("rejects bad usage with exit code 2 and the usage text", async () => {
    for (const argv of [
      ["--regions", "eu-west1"],
      ["--instances", "i-0a0d1700000000002"],
      ["--start", "--instances", "web-1"],
      ["--scenario", "x.json"],
      ["--simulated"],
      ["--start", "--state-machine-arn", "arn:aws:lambda:eu-west-1:111122223333:function:x"],
      ["--bogus"],
    ]) {
      const out = await audit(argv);
      expect(out.code, argv.join(" ")).toBe(2);
      expect(out.stderr).toMatch(/^imdsv2-guard audit: .+\n\nUsage: imdsv2-guard audit/);
      expect(out.stdout).toBe("");
    }
  });

  it("rejects bad usage of the simulated audit with its own usage text", async () => {
    for (const argv of [["--regions", "us-east-1"], ["--scenario"], ["--bogus"]]) {
      const out = await simulated(argv);
      expect(out.code, argv.join(" ")).toBe(2);
      expect(out.stderr).toMatch(/^imdsv2-guard audit: .+\n/);
      expect(out.stdout).toBe("");
    }
    expect((await simulated(["--regions", "us-east-1"])).stderr).toMatch(/\n\nUsage: npm start -- audit /);
  });

  it("names, in its hints and help, the command of the mode the user is in", async () => {
    // Act
    const sim = await simulated([]);
    const simHelp = await simulated(["--help"]);
    const awsHelp = await audit(["--help"]);

    // Assess: following the simulated audit's hint audits the simulation again, never real AWS.
    expect(sim.stdout).toContain("Next: `npm start -- audit --start` sends the 3 ready instances");
    expect(sim.stdout).not.toContain("imdsv2-guard audit");
    expect(simHelp.stdout).toMatch(/^Usage: npm start -- audit (.*\n)+ +\[--scenario FILE\]/);
    expect(simHelp.stdout.replace(/\s+/g, " ")).toContain("no AWS credentials needed");
    expect(awsHelp.stdout).toMatch(/^Usage: imdsv2-guard audit /);
    expect(awsHelp.stdout).not.toContain("--scenario");
  });
});

describe("npm start -- audit --start", () => {
  function recordStarts(): { started: { name: string; input: unknown }[]; hooks: SimulatedAuditHooks } {
    const started: { name: string; input: unknown }[] = [];
    return {
      started,
      hooks: {
        onSimulatedAccount: (sim: SimAccount) => {
          sim.onStartExecution = (name, input) => started.push({ name, input });
        },
      },
    };
  }

  it("sends the ready instances through the state machine with the sweep's input, and prints the execution", async () => {
    // Prepare
    const { started, hooks } = recordStarts();

    // Act
    const out = await simulated(["--start"], hooks);

    // Assess
    expect(out.code).toBe(0);
    expect(started).toHaveLength(1);
    const [execution] = started;
    expect(execution?.name).toMatch(/^audit-\d{8}-\d{6}-1$/);
    const input = sweepInputSchema.parse(execution?.input);
    expect(input).toMatchObject({
      id: execution?.name,
      account: "111122223333",
      region: "eu-west-1",
      detail: {
        sweepId: execution?.name,
        instanceIds: [FLEET.quiet, FLEET.lapsed, FLEET.stopped],
        accountPosture: { httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account" },
        fleet: { allowingImdsV1: 7, exempt: 1 },
      },
    });
    expect(out.stdout).toContain(
      "Started 1 execution of arn:aws:states:eu-west-1:111122223333:stateMachine:imdsv2-guard-simulated for 3 instances:",
    );
    expect(out.stdout).toContain(`stateMachine:imdsv2-guard-simulated:${execution?.name}`);
    // The flow's first step reads it as a sweep request for exactly these instances.
    const resolved = resolveTargets(
      input,
      {
        settings: DEFAULT_FLOW_SETTINGS,
        guardRoleArnPrefix: "arn:aws:sts::111122223333:assumed-role/imdsv2-guard-",
        batchSize: 50,
      },
      new Date(),
    );
    expect(resolved).toMatchObject({
      trigger: "sweep",
      targetCount: 3,
      rejected: [],
      fleet: { allowingImdsV1: 7, exempt: 1 },
    });
    expect(resolved.event.eventId).toBe(execution?.name);
  });

  it("sends the instances --instances names instead, through the state machine --state-machine-arn names", async () => {
    // Prepare
    const { started, hooks } = recordStarts();
    const arn = "arn:aws:states:eu-west-1:444455556666:stateMachine:imdsv2-guard-prod";

    // Act
    const out = await simulated(
      ["--start", "--json", "--instances", `${FLEET.legacyV1},${FLEET.quiet}`, "--state-machine-arn", arn],
      hooks,
    );

    // Assess
    expect(out.code).toBe(0);
    const input = sweepInputSchema.parse(started[0]?.input);
    expect(input.account).toBe("444455556666");
    expect(input.detail.instanceIds).toEqual([FLEET.quiet, FLEET.legacyV1]);
    expect(json(out).executions).toEqual([
      {
        region: "eu-west-1",
        stateMachineArn: arn,
        name: started[0]?.name,
        executionArn: `${arn}:${started[0]?.name}`,
        instances: 2,
        alreadyStarted: false,
      },
    ]);
  });

  it("starts nothing when --instances names an instance the audit did not find", async () => {
    // Prepare
    const { started, hooks } = recordStarts();

    // Act
    const out = await simulated(["--start", "--instances", `${FLEET.quiet},i-0fffffffffffffff0`], hooks);

    // Assess
    expect(out.code).toBe(1);
    expect(started).toEqual([]);
    expect(out.stderr).toBe(
      "imdsv2-guard audit: eu-west-1: --instances: not found (or terminated) in the audited regions: i-0fffffffffffffff0; nothing started\n",
    );
  });

  it("refuses a --state-machine-arn in a region it does not audit", async () => {
    // Prepare
    const { started, hooks } = recordStarts();

    // Act
    const out = await simulated(
      ["--start", "--state-machine-arn", "arn:aws:states:us-east-1:111122223333:stateMachine:imdsv2-guard-prod"],
      hooks,
    );

    // Assess
    expect(out.code).toBe(2);
    expect(started).toEqual([]);
    expect(out.stderr).toBe(
      "imdsv2-guard audit: --state-machine-arn: us-east-1 is not audited (add it to --regions, or drop that ARN)\n",
    );
  });

  it("pages through a large fleet, batches the metrics by 500 and starts one execution per 500 instances", async () => {
    // Prepare: 1,200 quiet instances that allow IMDSv1.
    const file = join(tempDir(), "large.json");
    const instances = Array.from({ length: 1200 }, (_, n) => ({ id: `i-0b${n.toString(16).padStart(15, "0")}` }));
    writeFileSync(file, JSON.stringify({ name: "large", instances }));
    const { started, hooks } = recordStarts();
    let sim: SimAccount | undefined;

    // Act
    const out = await simulated(["--scenario", file, "--start", "--json"], {
      onSimulatedAccount: (s) => {
        sim = s;
        hooks.onSimulatedAccount?.(s);
      },
    });

    // Assess
    expect(out.code).toBe(0);
    expect(json(out).regions[0]?.summary.readyToEnforce).toHaveLength(1200);
    expect(sim?.calls.DescribeInstances).toBe(6); // the simulation pages by 200
    expect(sim?.calls.GetMetricData).toBe(6); // 3 × 500 instances, for each of the two windows
    expect(started.map((s) => sweepInputSchema.parse(s.input).detail.instanceIds.length)).toEqual([500, 500, 200]);
    expect(new Set(started.flatMap((s) => sweepInputSchema.parse(s.input).detail.instanceIds)).size).toBe(1200);
  });
});

describe("audit against AWS (mocked clients per region)", () => {
  const mocks: { restore(): void }[] = [];
  afterEach(() => {
    for (const m of mocks.splice(0)) m.restore();
  });

  const settings = { credentials: { accessKeyId: "TEST", secretAccessKey: "TEST" } };

  /** A region with one quiet instance that allows IMDSv1. */
  function healthyRegion(region: string): AuditClients {
    const clients = {
      ec2: new EC2Client({ ...settings, region }),
      cloudwatch: new CloudWatchClient({ ...settings, region }),
      sfn: new SFNClient({ ...settings, region }),
      now: () => new Date("2026-11-28T12:00:00Z"),
    };
    const ec2 = mockClient(clients.ec2);
    ec2
      .on(GetInstanceMetadataDefaultsCommand)
      .resolves({ AccountLevel: { HttpTokens: "required", ManagedBy: "account" } });
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            {
              InstanceId: "i-0c00000000000000a",
              State: { Name: "running" },
              MetadataOptions: { HttpTokens: "optional", HttpEndpoint: "enabled" },
            },
          ],
        },
      ],
    });
    const cloudwatch = mockClient(clients.cloudwatch);
    cloudwatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    mocks.push(ec2, cloudwatch);
    return clients;
  }

  /** A region where every EC2 call fails with this error. */
  function failingRegion(region: string, error: Error): AuditClients {
    const clients = healthyRegion(region);
    const ec2 = mockClient(clients.ec2);
    ec2.onAnyCommand().rejects(error);
    mocks.push(ec2);
    return clients;
  }

  function access(clients: Record<string, AuditClients>): AwsAccess {
    return {
      checkCredentials: async () => {},
      defaultRegion: async () => "eu-west-1",
      enabledRegions: async () => Object.keys(clients),
      clientsFor: (region) => {
        const set = clients[region];
        if (!set) throw new Error(`no clients for ${region}`);
        return set;
      },
      defaultStateMachineArn: () => undefined,
      close: () => {},
    };
  }

  function awsError(name: string, message: string, httpStatusCode = 400): Error {
    return Object.assign(new Error(message), { name, $fault: "client", $metadata: { httpStatusCode } });
  }

  it("reports a region it may not read on one line, and still audits the others", async () => {
    // Prepare
    const denied = awsError(
      "UnauthorizedOperation",
      "You are not authorized to perform this operation. User: arn:aws:sts::111122223333:assumed-role/Auditor/me is not authorized to perform: ec2:GetInstanceMetadataDefaults with an explicit deny in a service control policy. Encoded authorization failure message: AAAA+BBBB/CCCC",
    );
    const clients = { "eu-west-1": healthyRegion("eu-west-1"), "ap-south-1": failingRegion("ap-south-1", denied) };

    // Act
    const out = await audit(["--regions", "eu-west-1,ap-south-1", "--json"], { access: access(clients) });

    // Assess
    expect(out.code).toBe(1);
    const doc = json(out);
    expect(doc.regions.map((r) => r.region)).toEqual(["eu-west-1"]);
    expect(doc.regions[0]?.summary.readyToEnforce).toEqual(["i-0c00000000000000a"]);
    expect(doc.errors).toEqual([
      expect.objectContaining({ region: "ap-south-1", kind: "access-denied", code: "UnauthorizedOperation" }),
    ]);
    const lines = out.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^imdsv2-guard audit: ap-south-1: access denied to ec2:GetInstanceMetadataDefaults \(UnauthorizedOperation: You are not authorized .* explicit deny in a service control policy\.\) — see README "Audit the existing fleet"/,
    );
    expect(out.stderr).not.toContain("Encoded authorization");
  });

  it("stops on one line when AWS rejects the credentials themselves", async () => {
    // Prepare
    const expired = awsError("ExpiredToken", "The security token included in the request is expired");
    const clients = { "eu-west-1": failingRegion("eu-west-1", expired), "us-east-1": healthyRegion("us-east-1") };

    // Act
    const out = await audit(["--regions", "eu-west-1,us-east-1"], { access: access(clients) });

    // Assess
    expect(out.code).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toMatch(
      /^imdsv2-guard audit: AWS rejected the credentials \(ExpiredToken: The security token .* expired\); refresh them/,
    );
    expect(out.stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  it("starts nothing when several guard state machines could be meant, and names them", async () => {
    // Prepare
    const clients = { "eu-west-1": healthyRegion("eu-west-1") };
    const sfn = mockClient(clients["eu-west-1"].sfn);
    mocks.push(sfn);
    sfn.on(ListStateMachinesCommand).resolves({
      stateMachines: [
        {
          name: "imdsv2-guard-prod",
          stateMachineArn: "arn:aws:states:eu-west-1:111122223333:stateMachine:imdsv2-guard-prod",
          type: "STANDARD",
          creationDate: new Date(),
        },
        {
          name: "imdsv2-guard-dev",
          stateMachineArn: "arn:aws:states:eu-west-1:111122223333:stateMachine:imdsv2-guard-dev",
          type: "STANDARD",
          creationDate: new Date(),
        },
      ],
    });

    // Act
    const out = await audit(["--start"], { access: access(clients) });

    // Assess
    expect(out.code).toBe(1);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
    expect(out.stderr).toBe(
      "imdsv2-guard audit: eu-west-1: 2 state machines named imdsv2-guard-* in eu-west-1 (arn:aws:states:eu-west-1:111122223333:stateMachine:imdsv2-guard-prod, arn:aws:states:eu-west-1:111122223333:stateMachine:imdsv2-guard-dev): choose one with --state-machine-arn\n",
    );
  });

  it("finds the one guard state machine across pages of ListStateMachines", async () => {
    // Prepare
    const sfn = new SFNClient({ ...settings, region: "eu-west-1" });
    const mock = mockClient(sfn);
    mocks.push(mock);
    const arn = "arn:aws:states:eu-west-1:111122223333:stateMachine:imdsv2-guard-prod";
    mock
      .on(ListStateMachinesCommand)
      .resolvesOnce({
        stateMachines: [{ name: "billing-flow", stateMachineArn: "arn:x", type: "STANDARD", creationDate: new Date() }],
        nextToken: "2",
      })
      .resolvesOnce({
        stateMachines: [
          { name: "imdsv2-guard-prod", stateMachineArn: arn, type: "STANDARD", creationDate: new Date() },
        ],
      });

    // Act
    const found = await findGuardStateMachine(sfn, "eu-west-1");

    // Assess
    expect(found).toBe(arn);
    mock.reset();
    mock.on(ListStateMachinesCommand).resolves({ stateMachines: [] });
    await expect(findGuardStateMachine(sfn, "eu-west-1")).rejects.toThrow(StateMachineNotFoundError);
  });

  it("lists the regions enabled for the account", async () => {
    // Prepare
    const ec2 = new EC2Client({ ...settings, region: "us-east-1" });
    const mock = mockClient(ec2);
    mocks.push(mock);
    mock.on(DescribeRegionsCommand).resolves({
      Regions: [
        { RegionName: "us-east-1", OptInStatus: "opt-in-not-required" },
        { RegionName: "af-south-1", OptInStatus: "opted-in" },
        { RegionName: "ap-east-1", OptInStatus: "not-opted-in" },
      ],
    });

    // Act + Assess
    expect(await listEnabledRegions(ec2)).toEqual(["af-south-1", "us-east-1"]);
  });
});

describe("the installed command (bin/imdsv2-guard.mjs in a child process)", () => {
  function run(args: string[], env: Record<string, string>): Promise<Captured & { ms: number }> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  /** No AWS_* variable, no ~/.aws, no IMDS: the SDK's credential chain can only fail, and locally. */
  function bareEnvironment(extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: process.env.PATH ?? "",
      HOME: tempDir(),
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_REGION: "eu-west-1",
      ...extra,
    };
  }

  function closedPort(): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        const port = typeof address === "object" && address ? address.port : 0;
        server.close(() => resolve(port));
      });
      server.on("error", reject);
    });
  }

  it("says in one line that there are no credentials, exits 1, and does not wait on the network", async () => {
    // Act
    const out = await run(["audit"], bareEnvironment());

    // Assess
    expect(out.code).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toMatch(
      /^imdsv2-guard audit: no AWS credentials found \(configure a profile, or set AWS_PROFILE \/ AWS_ACCESS_KEY_ID\) — see README "Audit the existing fleet" > "Troubleshooting"\n$/,
    );
    expect(out.stderr).not.toMatch(/\n\s+at /);
    expect(out.ms).toBeLessThan(15_000);
  });

  it("says in one line that a region cannot be reached, exits 1", async () => {
    // Prepare: credentials that look real, and EC2's endpoint on a port nothing listens on.
    const port = await closedPort();
    const endpoint = `http://127.0.0.1:${port}`;
    const env = bareEnvironment({
      AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE",
      AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      AWS_ENDPOINT_URL_EC2: endpoint,
      AWS_ENDPOINT_URL_MONITORING: endpoint,
      AWS_ENDPOINT_URL_SFN: endpoint,
    });

    // Act
    const out = await run(["audit", "--regions", "eu-west-1"], env);

    // Assess
    expect(out.code).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toBe(
      `imdsv2-guard audit: eu-west-1: cannot reach EC2 at 127.0.0.1:${port} (ECONNREFUSED): check the region name, the network and any proxy\n`,
    );
    expect(out.ms).toBeLessThan(15_000);
  });

  it("never asks the instance metadata service for credentials, unless told to", async () => {
    // Prepare: an IMDS stand-in on loopback that counts its callers, where the SDK would look for an instance role.
    let asked = 0;
    const imds = createHttpServer((_req, res) => {
      asked++;
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => imds.listen(0, "127.0.0.1", resolve));
    const address = imds.address();
    const endpoint = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    const { AWS_EC2_METADATA_DISABLED: _unset, ...env } = bareEnvironment({
      AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint,
    });

    try {
      // Act
      const out = await run(["audit"], env);

      // Assess
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/^imdsv2-guard audit: no AWS credentials found .*\n$/);
      expect(asked).toBe(0);
    } finally {
      await new Promise((resolve) => imds.close(resolve));
    }
  });

  it("says what it is, its commands and where to read more", async () => {
    // Act
    const help = await run(["--help"], bareEnvironment());
    const unknown = await run(["audti"], bareEnvironment());

    // Assess
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^imdsv2-guard: enforces IMDSv2 \(HttpTokens=required\) on EC2\ninstances/);
    expect(help.stdout).toMatch(/\n {2}audit {5}list every instance/);
    expect(help.stdout).toMatch(/\n {2}doctor {4}read-only pre-flight/);
    expect(help.stdout).toMatch(/\n {2}selftest {2}launch one instance/);
    expect(help.stdout).toContain("Read more: docs/commands.md");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^imdsv2-guard: unknown command: audti\n/);
  });
});

describe("audit --accounts (mocked STS, Organizations, EC2 and CloudWatch)", () => {
  const mocks: { restore(): void }[] = [];
  afterEach(() => {
    for (const m of mocks.splice(0)) m.restore();
  });

  const PAYMENTS = "111100000000";
  const DATA = "333300000000";
  const NO_SPOKE = "222200000000";
  const SUSPENDED = "444400000000";

  /** Every client of each service answers from the account its credentials belong to, in its own region. */
  function organization() {
    const assumed: { roleArn: string; sessionName: string; stsRegion: string }[] = [];
    const sts = mockClient(STSClient);
    sts.on(AssumeRoleCommand).callsFake((input: AssumeRoleCommandInput, getClient: () => unknown) => {
      // The client is the last one that called send(): taken before any await.
      const client = getClient() as STSClient;
      return client.config.region().then((stsRegion) => {
        const account = /::(\d{12}):role\//.exec(input.RoleArn ?? "")?.[1] ?? "";
        assumed.push({ roleArn: input.RoleArn ?? "", sessionName: input.RoleSessionName ?? "", stsRegion });
        if (account === NO_SPOKE) {
          throw Object.assign(new Error(`not authorized to perform: sts:AssumeRole on resource: ${input.RoleArn}`), {
            name: "AccessDenied",
            $fault: "client",
            $metadata: { httpStatusCode: 403 },
          });
        }
        return {
          Credentials: {
            AccessKeyId: `ASIA${account}`,
            SecretAccessKey: "s",
            SessionToken: "t",
            Expiration: new Date(Date.now() + 3_600_000),
          },
        };
      });
    });
    const orgs = mockClient(OrganizationsClient);
    orgs.on(ListAccountsCommand, { NextToken: undefined }).resolves({
      Accounts: [
        { Id: PAYMENTS, Name: "payments-prod", Status: "ACTIVE" },
        { Id: NO_SPOKE, Name: "sandbox", Status: "ACTIVE" },
      ],
      NextToken: "page-2",
    });
    orgs.on(ListAccountsCommand, { NextToken: "page-2" }).resolves({
      Accounts: [
        { Id: SUSPENDED, Name: "closed", Status: "SUSPENDED" },
        { Id: DATA, Name: "data", Status: "ACTIVE" },
      ],
    });
    const where = async (client: EC2Client | CloudWatchClient) => {
      const { accessKeyId } = await client.config.credentials();
      return { account: accessKeyId.replace(/^ASIA/, ""), region: await client.config.region() };
    };
    const ec2 = mockClient(EC2Client);
    ec2.on(GetInstanceMetadataDefaultsCommand).callsFake((_input: unknown, getClient: () => unknown) => {
      const client = getClient() as EC2Client;
      return where(client).then(({ account }) => ({
        AccountLevel:
          account === DATA
            ? { HttpTokens: "required", HttpTokensEnforced: "enabled", ManagedBy: "declarative-policy" }
            : { ManagedBy: "account" },
      }));
    });
    ec2.on(DescribeInstancesCommand).callsFake((_input: unknown, getClient: () => unknown) => {
      const client = getClient() as EC2Client;
      return where(client).then(({ account, region }) => ({
        Reservations: [
          {
            Instances: [
              {
                InstanceId: `i-0${account.slice(0, 4)}${region === "eu-west-1" ? "e" : "a"}00000000001`,
                State: { Name: "running" },
                MetadataOptions: { HttpTokens: account === DATA ? "required" : "optional", HttpEndpoint: "enabled" },
              },
            ],
          },
        ],
      }));
    });
    const cloudwatch = mockClient(CloudWatchClient);
    cloudwatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    mocks.push(sts, orgs, ec2, cloudwatch);
    const org = organizationAccess({ credentials: { accessKeyId: "CALLER", secretAccessKey: "x" }, maxAttempts: 1 });
    const access: AwsAccess = {
      checkCredentials: async () => {},
      defaultRegion: async () => "eu-west-1",
      enabledRegions: async () => ["eu-west-1"],
      clientsFor: () => {
        throw new Error("--accounts must not use the caller's own clients");
      },
      defaultStateMachineArn: () => undefined,
      listAccounts: org.listAccounts,
      clientsInAccount: org.clientsInAccount,
      close: org.close,
    };
    return { access, assumed, orgs };
  }

  it("--accounts all: pages through ListAccounts, enters each active account in each region, and says why one was not", async () => {
    // Prepare
    const { access, assumed, orgs } = organization();

    // Act
    const out = await audit(["--accounts", "all", "--regions", "eu-west-1,us-east-1", "--json"], { access });

    // Assess
    expect(out.code).toBe(1);
    expect(orgs.commandCalls(ListAccountsCommand)).toHaveLength(2);
    const doc = JSON.parse(out.stdout);
    expect(doc.schema).toBe("imdsv2-guard.audit.v1");
    expect(doc.accounts.map((a: { account: string }) => a.account)).toEqual([PAYMENTS, NO_SPOKE, DATA]);
    expect(
      doc.regions.map((r: { accountId: string; region: string; account: { managedBy: string } }) => [
        r.accountId,
        r.region,
        r.account.managedBy,
      ]),
    ).toEqual([
      [PAYMENTS, "eu-west-1", "account"],
      [PAYMENTS, "us-east-1", "account"],
      [DATA, "eu-west-1", "declarative-policy"],
      [DATA, "us-east-1", "declarative-policy"],
    ]);
    expect(doc.errors).toEqual([
      expect.objectContaining({
        accountId: NO_SPOKE,
        region: "eu-west-1",
        kind: "cannot-assume-role",
        code: "AccessDenied",
      }),
      expect.objectContaining({
        accountId: NO_SPOKE,
        region: "us-east-1",
        kind: "cannot-assume-role",
        code: "AccessDenied",
      }),
    ]);
    expect(doc.summary).toEqual({
      accounts: 3,
      accountsEntered: 2,
      accountsNotEntered: 1,
      instances: 4,
      requireImdsV2: 2,
      allowImdsV1: 2,
      exempt: 0,
      readyToEnforce: 2,
      needsWork: 0,
    });
    // The spoke role, through the STS endpoint of each region, in a session that says it was the audit.
    const payments = assumed.filter((a) => a.roleArn === `arn:aws:iam::${PAYMENTS}:role/imdsv2-guard-auditor`);
    expect(payments.map((a) => a.stsRegion).sort()).toEqual(["eu-west-1", "us-east-1"]);
    for (const a of assumed) expect(a.sessionName).toMatch(/^imdsv2-guard-audit-\d{8}T\d{4}$/);
    expect(assumed.some((a) => a.roleArn.includes(SUSPENDED))).toBe(false);
    // One line per region not audited on stderr, never a stack.
    const lines = out.stderr.trimEnd().split("\n");
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^imdsv2-guard audit: ${NO_SPOKE} eu-west-1: cannot assume imdsv2-guard-auditor in ${NO_SPOKE} \\(eu-west-1\\): AccessDenied`,
        ),
      ),
      expect.stringMatching(new RegExp(`^imdsv2-guard audit: ${NO_SPOKE} us-east-1: cannot assume`)),
    ]);
    expect(out.stderr).not.toMatch(/\n\s+at /);
  });

  it("--accounts ID,ID --role-name: a table per account and one row per account across the organization", async () => {
    // Prepare
    const { access, assumed, orgs } = organization();

    // Act
    const out = await audit(["--accounts", `${PAYMENTS},${NO_SPOKE}`, "--role-name", "SecurityAudit"], { access });

    // Assess
    expect(out.code).toBe(1);
    expect(orgs.commandCalls(ListAccountsCommand)).toHaveLength(0);
    expect(assumed.map((a) => a.roleArn)).toEqual([
      `arn:aws:iam::${PAYMENTS}:role/SecurityAudit`,
      `arn:aws:iam::${NO_SPOKE}:role/SecurityAudit`,
    ]);
    expect(out.stdout).toContain(`=== Account ${PAYMENTS}, as SecurityAudit`);
    expect(rowOf(out.stdout, `i-01111e00000000001`)).toMatch(/running\s+optional\s+-\s+0\/0\s+READY/);
    expect(out.stdout).toContain(
      `eu-west-1: not audited: cannot assume SecurityAudit in ${NO_SPOKE} (eu-west-1): AccessDenied`,
    );
    const summary = out.stdout.slice(out.stdout.indexOf("== Organization"));
    expect(summary).toMatch(
      /^== Organization: 2 accounts, 1 entered; 1 instance: 0 requiring IMDSv2, 1 allowing IMDSv1/,
    );
    expect(summary.split("\n").find((l) => l.startsWith(PAYMENTS))).toMatch(/1\/1\s+1\s+0\s+1\s+1\s+0\s+audited$/);
    expect(summary.split("\n").find((l) => l.startsWith(NO_SPOKE))).toMatch(
      /0\/1\s+0\s+0\s+0\s+0\s+0\s+NOT ENTERED: AccessDenied$/,
    );
    // Nothing tells the user to --start: that is the hub sweep's job with --accounts.
    expect(out.stdout).not.toContain("--start");
  });

  it("says in one line when the organization's accounts cannot be listed", async () => {
    // Prepare
    const { access, orgs } = organization();
    orgs.on(ListAccountsCommand).rejects(
      Object.assign(new Error("You don't have permissions to access this resource."), {
        name: "AccessDeniedException",
        $fault: "client",
        $metadata: { httpStatusCode: 400 },
      }),
    );

    // Act
    const out = await audit(["--accounts", "all"], { access });

    // Assess
    expect(out.code).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr.trimEnd().split("\n")).toEqual([
      expect.stringMatching(
        /^imdsv2-guard audit: --accounts all: listing the organization's accounts \(Organizations ListAccounts needs .*\): .*AccessDeniedException/,
      ),
    ]);
  });

  it("rejects bad usage of --accounts and --role-name with exit code 2", async () => {
    const { access } = organization();
    for (const argv of [
      ["--accounts", "1234"],
      ["--accounts", ""],
      ["--role-name", "SecurityAudit"],
      ["--accounts", "all", "--start"],
      ["--accounts", PAYMENTS, "--role-name", "no spaces allowed"],
    ]) {
      const out = await audit(argv, { access });
      expect(out.code, argv.join(" ")).toBe(2);
      expect(out.stderr, argv.join(" ")).toMatch(/^imdsv2-guard audit: --(accounts|role-name|start)/);
    }
  });
});

describe("npm start -- audit on the default scenario (a simulated organization)", () => {
  it("--accounts all: each member through the spoke role, and the account without a spoke as a row with its reason", async () => {
    // Act
    const out = await simulated(["--scenario", "local/scenarios/default.json", "--accounts", "all", "--json"]);

    // Assess
    expect(out.code).toBe(1);
    const doc = JSON.parse(out.stdout);
    const entered = doc.accounts.filter((a: { regionsAudited: number }) => a.regionsAudited > 0);
    expect(entered.map((a: { name: string }) => a.name).sort()).toEqual(["analytics", "payments-prod"]);
    expect(doc.errors).toContainEqual(
      expect.objectContaining({
        accountId: "222200000000",
        region: "eu-west-1",
        code: "AccessDenied",
        message: expect.stringContaining("cannot assume imdsv2-guard-spoke in 222200000000 (eu-west-1): AccessDenied"),
      }),
    );
    // Each account sees only its own instances.
    const ids = (account: string) =>
      doc.regions
        .filter((r: { accountId: string }) => r.accountId === account)
        .flatMap((r: { instances: { instanceId: string }[] }) => r.instances.map((i) => i.instanceId));
    expect(ids("444455556666")).toEqual(["i-0c1b2c3d4e5f60001"]);
    expect(ids("111122223333")).not.toContain("i-0c1b2c3d4e5f60001");
  });
});
