import { describe, expect, it } from "vitest";
import type { AuditIo } from "../audit/command.js";
import {
  healthyDeployment,
  runSimulatedDoctor,
  runSimulatedSelftest,
  type SimulatedDeployment,
  type SimulatedLaunch,
  simulatedSelftest,
} from "../local/runner/simulated-ops.js";
import { doctorUsage, runSelftestCommand, selftestUsage } from "../ops/command.js";
import { DOCTOR_API_CALLS, type DoctorReport } from "../ops/doctor.js";
import { runSelftest, SELFTEST_API_CALLS, type SelftestActions, type SelftestClock } from "../ops/selftest.js";
import { schemaErrors } from "./schemas.js";

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function captured(width: number, run: (io: AuditIo) => Promise<number>): Promise<Captured> {
  let stdout = "";
  let stderr = "";
  const code = await run({
    width,
    stdout: { write: (t: string) => (stdout += t), isTTY: false },
    stderr: { write: (t: string) => (stderr += t), isTTY: false },
  });
  return { code, stdout, stderr };
}

function doctor(argv: string[], change: (d: SimulatedDeployment) => void = () => {}, width = 80) {
  const deployment = healthyDeployment();
  change(deployment);
  return captured(width, (io) => runSimulatedDoctor(argv, io, deployment));
}

async function doctorJson(argv: string[], change?: (d: SimulatedDeployment) => void): Promise<DoctorReport> {
  const out = await doctor([...argv, "--output", "json"], change);
  expect(schemaErrors("doctor", JSON.parse(out.stdout))).toEqual([]);
  return JSON.parse(out.stdout) as DoctorReport;
}

const columns = (text: string) => Math.max(...text.split("\n").map((l) => [...l].length));

describe("npm start -- doctor (the doctor on the simulated account)", () => {
  it("passes every check on a healthy deploy, exit 0, and its JSON validates against doctor.schema.json", async () => {
    // Act
    const out = await doctor([]);
    const report = await doctorJson([]);

    // Assess
    expect(out.code).toBe(0);
    expect(out.stderr).toBe("");
    expect(out.stdout).toContain("All 6 checks hold.");
    expect(report.checks.map((c) => [c.check, c.status])).toEqual([
      ["trail", "ok"],
      ["ssm-coverage", "ok"],
      ["stack", "ok"],
      ["alarms", "ok"],
      ["executions", "ok"],
      ["account-default", "ok"],
    ]);
  });

  it("a missing trail needs attention (exit 3), with the command that creates one", async () => {
    // Act
    const out = await doctor([], (d) => {
      d.trail = "none";
    });
    const report = await doctorJson([], (d) => {
      d.trail = "none";
    });

    // Assess
    expect(out.code).toBe(3);
    expect(out.stdout).toMatch(/^\[!!\] trail \(eu-west-1\): no trail records this region/m);
    expect(out.stdout).toContain("$ aws cloudtrail create-trail");
    expect(report.attention).toBe(1);
    expect(report.checks.find((c) => c.check === "trail")?.fix).toContain("start-logging");
  });

  it("a trail that is not logging needs attention too", async () => {
    // Act
    const report = await doctorJson([], (d) => {
      d.trail = "stopped";
    });

    // Assess
    expect(report.checks.find((c) => c.check === "trail")).toMatchObject({
      status: "attention",
      detail: expect.stringContaining("not logging"),
    });
  });

  it("instances without an SSM managed node are named: they would end unverified", async () => {
    // Act: the second instance has no agent or instance profile
    const out = await doctor(
      [],
      (d) => {
        const second = d.instances[1];
        if (second) second.ssm = "none";
      },
      300,
    );

    // Assess
    expect(out.code).toBe(3);
    expect(out.stdout).toContain("1 of 2 running instance(s) are not SSM managed nodes");
    expect(out.stdout).toContain("i-0d0c000000000a002");
    expect(out.stdout).not.toMatch(/not SSM managed nodes[^\n]*i-0d0c000000000a001/);
  });

  it("a missing spoke (--accounts) needs attention, with the deploy of spoke-account.yml", async () => {
    // Act
    const report = await doctorJson(["--accounts", "444455556666,777788889999"], (d) => {
      d.spokes["777788889999"] = "missing";
    });

    // Assess
    const spokes = report.checks.filter((c) => c.check === "spoke");
    expect(spokes.map((s) => [s.account, s.status])).toEqual([
      ["444455556666", "ok"],
      ["777788889999", "attention"],
    ]);
    expect(spokes[1]?.detail).toContain("cannot assume imdsv2-guard-auditor (AccessDenied)");
    expect(spokes[1]?.fix).toContain("infra/spoke/spoke-account.yml");
  });

  it("a spoke without the probe document needs attention", async () => {
    // Act
    const report = await doctorJson(["--accounts", "444455556666"], (d) => {
      d.spokes["444455556666"] = "no-probe-document";
    });

    // Assess
    expect(report.checks.find((c) => c.check === "spoke")).toMatchObject({
      status: "attention",
      detail: expect.stringContaining("imdsv2-guard-probe-*"),
    });
  });

  it("a spoke whose probe document is another release's needs attention, with the spoke-region deploy", async () => {
    // Act
    const report = await doctorJson(["--accounts", "444455556666"], (d) => {
      d.spokes["444455556666"] = "older-probe-document";
    });

    // Assess
    expect(report.checks.find((c) => c.check === "spoke")).toMatchObject({
      status: "attention",
      detail: expect.stringContaining("imdsv2-guard-probe-linux is not this release's probe"),
      fix: expect.stringContaining("infra/spoke/spoke-region.yml"),
    });
  });

  it("says when executions are running (the upgrade check), and when the stack or an alarm is missing", async () => {
    // Act
    const running = await doctorJson([], (d) => {
      d.runningExecutions = 2;
      d.alarmsInAlarm = ["executions-failed"];
    });
    const noStack = await doctorJson([], (d) => {
      d.stack = "none";
    });

    // Assess
    expect(running.checks.find((c) => c.check === "executions")?.detail).toBe(
      "2 execution(s) running: wait before an upgrade or uninstall",
    );
    expect(running.checks.find((c) => c.check === "alarms")?.detail).toBe(
      "in ALARM: imdsv2-guard-dev-executions-failed",
    );
    expect(noStack.checks.find((c) => c.check === "stack")).toMatchObject({ status: "attention" });
    expect(noStack.checks.find((c) => c.check === "alarms")?.detail).toContain("missing: events-dead-lettered");
  });

  it("an account default that allows IMDSv1 needs attention", async () => {
    // Act
    const report = await doctorJson([], (d) => {
      d.account = { httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account" };
    });

    // Assess
    expect(report.checks.find((c) => c.check === "account-default")?.fix).toContain(
      "aws ec2 modify-instance-metadata-defaults --http-tokens required --region eu-west-1",
    );
  });

  it("fits 80 columns with every problem at once; commands wrap between words, continued with a backslash", async () => {
    // Act
    const out = await doctor(["--accounts", "777788889999"], (d) => {
      d.trail = "none";
      d.spokes = {};
      d.runningExecutions = 1;
    });

    // Assess
    expect(out.code).toBe(3);
    expect(columns(out.stdout)).toBeLessThanOrEqual(80);
    const commands = out.stdout.split("\n").filter((l) => /^\s+\$ /.test(l));
    expect(commands.length).toBeGreaterThan(2);
    // A wrapped command's lines end in " \" and its words are whole: joined, it is the command again.
    const create = out.stdout.slice(out.stdout.indexOf("$ aws cloudtrail create-trail"));
    const lines = create.split("\n");
    const end = lines.findIndex((l) => !l.endsWith(" \\"));
    const joined = lines
      .slice(0, end + 1)
      .map((l) => l.replace(/ \\$/, "").trim())
      .join(" ");
    expect(joined).toBe(
      "$ aws cloudtrail create-trail --name imdsv2-guard-trail --s3-bucket-name BUCKET --is-multi-region-trail --region eu-west-1 && aws cloudtrail start-logging --name imdsv2-guard-trail --region eu-west-1",
    );
  });

  it("prints CSV with --output csv, refuses a repeated --stage, and prints the version", async () => {
    // Act
    const csv = await doctor(["--output", "csv"]);
    const twice = await doctor(["--stage", "a", "--stage", "b"]);
    const version = await doctor(["--version"]);

    // Assess
    expect(csv.stdout.split("\n")[0]).toBe("check,status,account,region,detail,fix");
    expect(csv.stdout).toContain("trail,ok,,eu-west-1,trail organization-trail logs management events,");
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/^imdsv2-guard doctor: --stage given 2 times/);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it("names every AWS call it makes, for the IAM test", () => {
    // Assess: read-only actions only
    expect(DOCTOR_API_CALLS.map((c) => c.action.split(":")[1])).toEqual(
      DOCTOR_API_CALLS.map((c) => c.action.split(":")[1]).filter(
        (a) => a !== undefined && /^(Describe|Get|List|AssumeRole)/.test(a),
      ),
    );
  });
});

/** A clock that only moves when slept on. */
function steppedClock(): SelftestClock {
  let now = Date.parse("2026-12-01T00:00:00Z");
  return {
    now: () => new Date(now),
    sleep: async (ms) => {
      now += ms;
    },
  };
}

function fakeActions(overrides: Partial<SelftestActions> = {}): SelftestActions & { terminated: string[] } {
  const terminated: string[] = [];
  return {
    terminated,
    launch: async () => ({ instanceId: "i-0123456789abcdef0" }),
    httpTokens: async () => "required",
    verdict: async () => ({ verdict: "pass", reason: "IMDSv1 refused" }),
    terminate: async (id) => {
      terminated.push(id);
    },
    ...overrides,
  };
}

describe("selftest", () => {
  it("npm start -- selftest runs the guard on one launch: launch -> required -> pass, then terminates; exit 0", async () => {
    // Act
    const out = await captured(80, (io) => runSimulatedSelftest([], io));
    const json = await captured(80, (io) => runSimulatedSelftest(["--output", "json"], io));

    // Assess
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^launched +\+0s +i-05e1f7e5700000001 with HttpTokens=optional$/m);
    expect(out.stdout).toMatch(/^required-applied +\+20s +HttpTokens=required$/m);
    expect(out.stdout).toMatch(/^verdict +\+\d+s +pass: IMDSv1 refused \(401\)/m);
    expect(out.stdout).toContain("selftest passed");
    expect(out.stderr).toContain("selftest: +0s launched");
    expect(columns(out.stdout)).toBeLessThanOrEqual(80);
    const doc = JSON.parse(json.stdout);
    expect(schemaErrors("selftest", doc)).toEqual([]);
    expect(doc.steps.map((s: { step: string }) => s.step)).toEqual([
      "launched",
      "required-applied",
      "verdict",
      "terminated",
    ]);
    expect(doc.terminated).toBe(true);
  });

  it("a verdict other than pass fails it (exit 3), and the instance is still terminated", async () => {
    // Act: no SSM agent, so the guard cannot probe: unverified
    const sim = simulatedSelftest({ ssm: "none" });
    const out = await captured(80, (io) =>
      runSelftestCommand(["--output", "json"], io, {
        actions: () => sim.actions,
        clock: sim.clock,
        mode: { command: "t", defaultRegion: "eu-west-1" },
      }),
    );

    // Assess
    expect(out.code).toBe(3);
    const doc = JSON.parse(out.stdout);
    expect(schemaErrors("selftest", doc)).toEqual([]);
    expect(doc).toMatchObject({ outcome: "fail", verdict: "unverified", terminated: true });
    expect(sim.terminated).toEqual(["i-05e1f7e5700000001"]);
  }, 120_000);

  it("terminates the instance when waiting for the verdict fails", async () => {
    // Act
    const launch: SimulatedLaunch = { ssm: "online", verdictReadFails: true };
    const sim = simulatedSelftest(launch);
    const out = await captured(80, (io) =>
      runSelftestCommand([], io, {
        actions: () => sim.actions,
        clock: sim.clock,
        mode: { command: "t", defaultRegion: "eu-west-1" },
      }),
    );

    // Assess
    expect(out.code).toBe(3);
    expect(out.stderr).toContain("failed: Error: ResourceNotFoundException: ledger table not found");
    expect(sim.terminated).toEqual(["i-05e1f7e5700000001"]);
    expect(out.stdout).toContain("selftest FAILED: no verdict.");
  }, 120_000);

  it("terminates the instance when no verdict comes in time", async () => {
    // Arrange
    const actions = fakeActions({ verdict: async () => undefined, httpTokens: async () => "optional" });

    // Act
    const report = await runSelftest(actions, steppedClock(), { timeoutSeconds: 60, pollSeconds: 10, keep: false });

    // Assess
    expect(report.outcome).toBe("fail");
    expect(report.steps.map((s) => s.step)).toEqual(["launched", "timed-out", "terminated"]);
    expect(report.steps[1]?.atSeconds).toBe(70);
    expect(actions.terminated).toEqual(["i-0123456789abcdef0"]);
  });

  it("with --keep leaves the instance, and says so", async () => {
    // Arrange
    const actions = fakeActions();

    // Act
    const report = await runSelftest(actions, steppedClock(), { timeoutSeconds: 60, pollSeconds: 10, keep: true });

    // Assess
    expect(report.outcome).toBe("pass");
    expect(report.terminated).toBe(false);
    expect(report.steps.at(-1)?.step).toBe("kept");
    expect(actions.terminated).toEqual([]);
  });

  it("a failed launch terminates nothing and fails", async () => {
    // Arrange
    const actions = fakeActions({
      launch: async () => {
        throw Object.assign(new Error("not authorized"), { name: "UnauthorizedOperation" });
      },
    });

    // Act
    const report = await runSelftest(actions, steppedClock(), { timeoutSeconds: 60, pollSeconds: 10, keep: false });

    // Assess
    expect(report).toMatchObject({ outcome: "fail", terminated: false });
    expect(report.steps).toEqual([{ step: "failed", atSeconds: 0, detail: "UnauthorizedOperation: not authorized" }]);
    expect(actions.terminated).toEqual([]);
  });

  it("a failed termination fails the selftest, even after pass, naming the instance left running", async () => {
    // Arrange
    const actions = fakeActions({
      terminate: async () => {
        throw new Error("throttled");
      },
    });

    // Act
    const report = await runSelftest(actions, steppedClock(), { timeoutSeconds: 60, pollSeconds: 10, keep: false });

    // Assess
    expect(report.outcome).toBe("fail");
    expect(report.steps.at(-1)?.detail).toBe("could not terminate i-0123456789abcdef0: Error: throttled");
  });

  it("names every AWS call it makes, termination included", () => {
    expect(SELFTEST_API_CALLS.map((c) => c.action)).toEqual(
      expect.arrayContaining(["ec2:RunInstances", "ec2:TerminateInstances", "dynamodb:Scan"]),
    );
  });
});

describe("help", () => {
  it("fits 80 columns", () => {
    for (const text of [doctorUsage(), selftestUsage(), doctorUsage({ command: "npm start -- doctor" })]) {
      expect(columns(text)).toBeLessThanOrEqual(80);
    }
  });
});
