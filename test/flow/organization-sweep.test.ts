import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { allResults, scenario } from "./helpers.js";

const PAYMENTS = "111100000000";
const DATA = "333300000000";
const SANDBOX = "222200000000";
const HUB = "999900000000";
const REGIONS = ["eu-west-1", "us-east-1"];

/**
 * An organization of a payments account (defaults set by nobody), a data account whose defaults a declarative policy
 * manages, and a sandbox without a spoke; the hub's own account has none either. Instances in every pair.
 */
function orgSweepScenario(extra: Record<string, unknown> = {}) {
  return scenario({
    organization: {
      id: "o-a1b2c3d4e5",
      hubAccount: HUB,
      hubRegion: "eu-west-1",
      accounts: [
        { id: PAYMENTS, name: "payments-prod", regions: REGIONS },
        {
          id: DATA,
          name: "data",
          regions: REGIONS,
          defaults: { httpTokens: "required", httpTokensEnforced: true, managedBy: "declarative-policy" },
        },
        { id: SANDBOX, name: "sandbox", regions: ["eu-west-1"], spoke: false },
      ],
    },
    sweepAtSeconds: [60],
    instances: [
      { id: "i-0a0000000000000a1", account: PAYMENTS, region: "eu-west-1" },
      { id: "i-0a0000000000000a2", account: PAYMENTS, region: "us-east-1" },
      { id: "i-0a0000000000000a3", account: PAYMENTS, region: "us-east-1", httpTokens: "required" },
      { id: "i-0a0000000000000b1", account: DATA, region: "eu-west-1" },
      { id: "i-0a0000000000000b2", account: DATA, region: "us-east-1" },
      { id: "i-0a0000000000000c1", account: SANDBOX, region: "eu-west-1" },
    ],
    ...extra,
  });
}

describe("organization sweep", () => {
  it("finds and enforces the instances of 2 accounts x 2 regions through a spoke session per account and region", async () => {
    // Act
    const run = await runFlow(orgSweepScenario());

    // Assess
    const passed = allResults(run).filter((r) => r.verdict === "pass");
    expect(passed.map((r) => `${r.instanceId}@${r.account}/${r.region}`).sort()).toEqual([
      `i-0a0000000000000a1@${PAYMENTS}/eu-west-1`,
      `i-0a0000000000000a2@${PAYMENTS}/us-east-1`,
      `i-0a0000000000000b1@${DATA}/eu-west-1`,
      `i-0a0000000000000b2@${DATA}/us-east-1`,
    ]);
    // Each instance was changed in its own account, and only there.
    for (const { account, region, sim } of run.org?.memberAccounts() ?? []) {
      for (const id of ["i-0a0000000000000a1", "i-0a0000000000000a2", "i-0a0000000000000b1", "i-0a0000000000000b2"]) {
        const instance = sim.instance(id);
        if (instance) expect(instance.httpTokens, `${id} in ${account}/${region}`).toBe("required");
      }
    }
    // The sweep went through AssumeRole into each account and region, at that region's STS, as the sweep.
    const sweepSessions = (run.org?.assumeRoleCalls ?? []).filter(
      (c) => c.sessionName === "imdsv2-guard-sweep-202611280901",
    );
    expect(
      sweepSessions
        .filter((c) => c.outcome === "issued")
        .map((c) => `${c.roleArn}@${c.stsRegion}`)
        .sort(),
    ).toEqual(
      [DATA, PAYMENTS].flatMap((a) => REGIONS.map((r) => `arn:aws:iam::${a}:role/imdsv2-guard-spoke@${r}`)).sort(),
    );
    // Executions carry the member's account and region, and are named per account, region and window.
    const started = run.orgSweeps[0]?.rows.flatMap((r) => r.executions ?? []).map((e) => e.name) ?? [];
    expect(started.sort()).toEqual(
      [
        `sweep-202611280901-${PAYMENTS}-eu-west-1-1`,
        `sweep-202611280901-${PAYMENTS}-us-east-1-1`,
        `sweep-202611280901-${DATA}-eu-west-1-1`,
        `sweep-202611280901-${DATA}-us-east-1-1`,
      ].sort(),
    );
    expect(run.executions.every((e) => e.status === "succeeded")).toBe(true);
  });

  it("reports an account without a spoke, and the hub's own, as drift, and goes on with the others", async () => {
    // Act
    const run = await runFlow(orgSweepScenario());

    // Assess
    const rows = run.postureReports[0]?.rows ?? [];
    const drift = rows.filter((r) => r.status === "drift").map((r) => `${r.account}/${r.region}: ${r.drift}`);
    expect(drift.sort()).toEqual([SANDBOX, HUB].flatMap((a) => REGIONS.map((r) => `${a}/${r}: spoke missing`)).sort());
    expect(rows.find((r) => r.account === SANDBOX && r.region === "eu-west-1")?.reason).toBe(
      `cannot assume the spoke role in ${SANDBOX}/eu-west-1: AccessDenied`,
    );
    // Nothing was done to the sandbox's instance: no session, no execution.
    expect(allResults(run).some((r) => r.instanceId === "i-0a0000000000000c1")).toBe(false);
    expect(run.org?.member(SANDBOX, "eu-west-1").instance("i-0a0000000000000c1")?.httpTokens).toBe("optional");
    expect(rows.filter((r) => r.status === "swept")).toHaveLength(4);
  });

  it("shows the declarative-policy-managed account as managed, and recommends the policy only where defaults allow IMDSv1", async () => {
    // Act
    const run = await runFlow(orgSweepScenario());

    // Assess
    const report = run.postureReports[0];
    const data = report?.rows.filter((r) => r.account === DATA) ?? [];
    expect(data.map((r) => r.posture)).toEqual([
      { httpTokens: "required", httpTokensEnforced: true, managedBy: "declarative-policy" },
      { httpTokens: "required", httpTokensEnforced: true, managedBy: "declarative-policy" },
    ]);
    const payments = report?.rows.filter((r) => r.account === PAYMENTS) ?? [];
    expect(payments.map((r) => [r.region, r.posture?.managedBy, r.allowingImdsV1])).toEqual([
      ["eu-west-1", "account", 1],
      ["us-east-1", "account", 1],
    ]);
    const email = run.sim.published.map((p) => JSON.parse(p.input.Message ?? "{}").default as string);
    const posture = email.filter((text) => text.includes("organization posture"));
    expect(posture).toHaveLength(1);
    const text = posture[0] ?? "";
    const recommendation = text.slice(text.indexOf("Recommended:"));
    expect(recommendation).toContain("DECLARATIVE_POLICY_EC2");
    expect(recommendation).toContain('"instance_metadata_defaults":{"http_tokens":{"@@assign":"required"}}');
    expect(recommendation).toContain(`payments-prod (${PAYMENTS})/eu-west-1`);
    expect(recommendation).not.toContain(`data (${DATA})`);
  });

  it("recommends no policy when every swept account already requires IMDSv2 by default", async () => {
    // Prepare
    const s = orgSweepScenario({
      account: { httpTokens: "required", httpTokensEnforced: false, managedBy: "account" },
    });

    // Act
    const run = await runFlow(s);

    // Assess
    const published = run.sim.published.map((p) => JSON.parse(p.input.Message ?? "{}").default as string);
    const text = published.find((t) => t.includes("organization posture")) ?? "";
    expect(text).toContain("organization posture");
    expect(text).not.toContain("Recommended:");
  });

  it("starts no duplicate when the scheduled sweep is retried for the same window", async () => {
    // Prepare: an SCP keeps one instance on IMDSv1, so the retry finds it again.
    const s = orgSweepScenario({
      sweepAtSeconds: [60, 90],
      instances: [
        { id: "i-0a0000000000000a1", account: PAYMENTS, region: "eu-west-1", modifyError: "UnauthorizedOperation" },
        { id: "i-0a0000000000000b2", account: DATA, region: "us-east-1", modifyError: "UnauthorizedOperation" },
      ],
    });

    // Act
    const run = await runFlow(s);

    // Assess
    const byRun = run.orgSweeps.map((o) =>
      o.rows.flatMap((r) => (r.executions ?? []).map((e) => `${e.name}:${e.alreadyStarted}`)).sort(),
    );
    expect(byRun).toEqual([
      [`sweep-202611280901-${PAYMENTS}-eu-west-1-1:false`, `sweep-202611280901-${DATA}-us-east-1-1:false`],
      [`sweep-202611280901-${PAYMENTS}-eu-west-1-1:true`, `sweep-202611280901-${DATA}-us-east-1-1:true`],
    ]);
    expect(run.executions).toHaveLength(2);
    expect(allResults(run).map((r) => r.verdict)).toEqual(["error", "error"]);
  });

  it("reports a region the account has not enabled as drift, not as a crash", async () => {
    // Prepare
    const s = orgSweepScenario();
    const payments = s.organization?.accounts.find((a) => a.id === PAYMENTS);
    if (payments) payments.disabledRegions = ["us-east-1"];

    // Act
    const run = await runFlow(s);

    // Assess
    const row = run.postureReports[0]?.rows.find((r) => r.account === PAYMENTS && r.region === "us-east-1");
    expect(row).toMatchObject({ status: "drift", drift: "region not enabled" });
    expect(row?.reason).toContain("RegionDisabledException");
    expect(run.postureReports[0]?.rows.find((r) => r.account === PAYMENTS && r.region === "eu-west-1")?.status).toBe(
      "swept",
    );
  });

  it("does not enter an account outside the hub's allow-list, and says so", async () => {
    // Prepare
    const s = orgSweepScenario();
    if (s.organization) s.organization.allowedAccounts = [PAYMENTS];

    // Act
    const run = await runFlow(s);

    // Assess
    const rows = run.postureReports[0]?.rows ?? [];
    expect(rows.filter((r) => r.account === DATA).map((r) => r.status)).toEqual([
      "outside-allow-list",
      "outside-allow-list",
    ]);
    expect((run.org?.assumeRoleCalls ?? []).some((c) => c.roleArn.includes(DATA))).toBe(false);
    expect(run.org?.member(DATA, "eu-west-1").instance("i-0a0000000000000b1")?.httpTokens).toBe("optional");
    expect(rows.filter((r) => r.account === PAYMENTS).map((r) => r.status)).toEqual(["swept", "swept"]);
  });
});
