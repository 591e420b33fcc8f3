import { describe, expect, it } from "vitest";
import {
  BURST_ACCOUNTS,
  modifyLowerBoundSeconds,
  organizationBurstScenario,
} from "../../local/runner/burst-scenarios.js";
import { runFlow } from "../../local/runner/run-flow.js";
import type { ScenarioOrganization } from "../../local/runner/scenario.js";
import { allResults, defaultScenario, runInstancesEvent, scenario } from "./helpers.js";

const PAYMENTS = "111122223333";
const ANALYTICS = "444455556666";
const SANDBOX = "222200000000";
const ORG: ScenarioOrganization = {
  id: "o-a1b2c3d4e5",
  hubAccount: "999900000000",
  hubRegion: "eu-west-1",
  accounts: [
    { id: PAYMENTS, name: "payments-prod", regions: ["eu-west-1", "us-east-1"], spoke: true },
    { id: ANALYTICS, name: "analytics", regions: ["eu-west-1", "us-east-1"], spoke: true },
    { id: SANDBOX, name: "sandbox", regions: ["eu-west-1"], spoke: false },
  ],
  allowedAccounts: [],
};

/** A RunInstances delivery from `account` in `region`, as the spoke rule forwards it to the hub bus. */
function launchIn(account: string, region: string, ids: string[], eventId: string) {
  const event = runInstancesEvent(ids, eventId, `arn:aws:sts::${account}:assumed-role/Deployer/ci`);
  return {
    ...event,
    account,
    region,
    detail: {
      ...event.detail,
      awsRegion: region,
      recipientAccountId: account,
      userIdentity: {
        type: "AssumedRole",
        arn: `arn:aws:sts::${account}:assumed-role/Deployer/ci`,
        accountId: account,
      },
    },
  };
}

describe("organization mode: the default `npm start` scenario", () => {
  it("guards two member accounts in two regions, errs for the account without a spoke, and refuses two events", async () => {
    // Act
    const run = await runFlow(defaultScenario());

    // Assess
    const results = allResults(run);
    const places = new Set(results.filter((r) => r.verdict === "pass").map((r) => `${r.account}/${r.region}`));
    expect([...places].sort()).toEqual([
      `${PAYMENTS}/eu-west-1`,
      `${PAYMENTS}/us-east-1`,
      `${ANALYTICS}/eu-west-1`,
      `${ANALYTICS}/us-east-1`,
    ]);
    for (const r of results) expect(r.account && r.region, r.instanceId).toBeTruthy();
    expect(results.find((r) => r.instanceId === "i-0d1b2c3d4e5f60001")).toMatchObject({
      verdict: "error",
      reason: `cannot assume the spoke role in ${SANDBOX}/eu-west-1: AccessDenied`,
    });
    const refused = run.reports.filter((r) => r.results.some((x) => x.reason.includes("event refused")));
    expect(refused.map((r) => r.event.eventId)).toEqual([
      "c0ffee00-0000-4000-8000-000000000007",
      "c0ffee00-0000-4000-8000-000000000008",
    ]);
    expect(run.executions.every((e) => e.status === "succeeded")).toBe(true);
  });

  it("makes no call in the account of a refused event, and names every spoke session after its event", async () => {
    // Act
    const run = await runFlow(defaultScenario());

    // Assess
    const calls = run.org?.assumeRoleCalls ?? [];
    expect(calls.some((c) => c.sessionName.endsWith("000000000007") || c.sessionName.endsWith("000000000008"))).toBe(
      false,
    );
    expect(calls.some((c) => c.roleArn.includes("999988887777"))).toBe(false);
    for (const c of calls) {
      // An event's session, or the daily sweep's (its own, and that of each execution it started).
      expect(c.sessionName).toMatch(
        /^imdsv2-guard-((c0ffee00|7d3a9c4e)-0000-4000-8000-0000000000\d\d|sweep-\d{12}(-\d{12}-[a-z]+-[a-z]+-\d-\d+)?)$/,
      );
      expect(c.roleArn).toMatch(/^arn:aws:iam::\d{12}:role\/imdsv2-guard-spoke$/);
    }
    // Through the event's own region's STS endpoint.
    const east = calls.filter((c) => c.sessionName.endsWith("c0ffee00-0000-4000-8000-000000000003"));
    expect(east.length).toBeGreaterThan(0);
    expect(new Set(east.map((c) => c.stsRegion))).toEqual(new Set(["us-east-1"]));
    // The forged event named payments-prod's web-1: it was modified once, by event 1, and never for event 7.
    expect(
      run.org?.member(PAYMENTS, "eu-west-1").modifiedInstanceIds.filter((id) => id === "i-0a1b2c3d4e5f60001"),
    ).toHaveLength(1);
    expect(run.org?.member(ANALYTICS, "eu-west-1").calls.ModifyInstanceMetadataOptions).toBe(1);
  });

  it("tells email subscribers the account and region, and names the account in the subject", async () => {
    // Act
    const run = await runFlow(defaultScenario());

    // Assess
    const east = run.sim.published.find(
      (p) => p.input.Subject?.includes("us-east-1") && p.input.Subject.includes("analytics"),
    );
    expect(east?.input.Subject).toBe("[imdsv2-guard] PASS: 1 of 1 instance(s) - RunInstances in analytics/us-east-1");
    expect(east?.input.MessageAttributes?.account).toEqual({ DataType: "String", StringValue: ANALYTICS });
    expect(east?.input.MessageAttributes?.region).toEqual({ DataType: "String", StringValue: "us-east-1" });
  });
});

describe("organization mode: accounts are walls", () => {
  it("never finds an instance of account B for an event of account A (the wrong-account trap)", async () => {
    // Prepare: the instance exists only in payments-prod; the event comes from analytics and names it.
    const trap = scenario({
      organization: ORG,
      instances: [{ id: "i-0a1b2c3d4e5f6abcd", account: PAYMENTS, region: "eu-west-1" }],
      events: [launchIn(ANALYTICS, "eu-west-1", ["i-0a1b2c3d4e5f6abcd"], "e-trap")],
    });

    // Act
    const run = await runFlow(trap);

    // Assess
    const [result] = allResults(run);
    expect(result?.verdict).toBe("error");
    expect(result?.account).toBe(ANALYTICS);
    expect(result?.reason).toMatch(/not found|does not exist|never appeared/i);
    expect(run.org?.member(PAYMENTS, "eu-west-1").instance("i-0a1b2c3d4e5f6abcd")?.httpTokens).toBe("optional");
    expect(run.org?.member(PAYMENTS, "eu-west-1").calls.DescribeInstances).toBe(0);
  });

  it("handles the same CloudTrail eventID from two accounts as two events (ledger keys carry account and region)", async () => {
    // Prepare
    const twice = scenario({
      organization: ORG,
      eventSpacingSeconds: 5,
      instances: [
        { id: "i-0a1b2c3d4e5f60e01", account: PAYMENTS, region: "eu-west-1" },
        { id: "i-0a1b2c3d4e5f60e02", account: ANALYTICS, region: "us-east-1" },
      ],
      events: [
        launchIn(PAYMENTS, "eu-west-1", ["i-0a1b2c3d4e5f60e01"], "same-event-id"),
        launchIn(ANALYTICS, "us-east-1", ["i-0a1b2c3d4e5f60e02"], "same-event-id"),
      ],
    });

    // Act
    const run = await runFlow(twice, { duplicateDeliveries: [0] });

    // Assess: both events judged, the redelivery of the first a no-op.
    expect(
      allResults(run)
        .map((r) => `${r.account}/${r.instanceId}=${r.verdict}`)
        .sort(),
    ).toEqual([`${PAYMENTS}/i-0a1b2c3d4e5f60e01=pass`, `${ANALYTICS}/i-0a1b2c3d4e5f60e02=pass`]);
    expect(run.reports).toHaveLength(2);
  });

  it("refuses an account outside the hub's allow-list without entering it", async () => {
    // Prepare
    const allowOnlyPayments = scenario({
      organization: { ...ORG, allowedAccounts: [PAYMENTS] },
      instances: [{ id: "i-0a1b2c3d4e5f60f01", account: ANALYTICS, region: "eu-west-1" }],
      events: [launchIn(ANALYTICS, "eu-west-1", ["i-0a1b2c3d4e5f60f01"], "e-allow")],
    });

    // Act
    const run = await runFlow(allowOnlyPayments);

    // Assess
    expect(allResults(run)[0]?.reason).toContain("outside the guard's allow-list");
    expect(run.org?.assumeRoleCalls).toEqual([]);
    expect(run.org?.member(ANALYTICS, "eu-west-1").instance("i-0a1b2c3d4e5f60f01")?.httpTokens).toBe("optional");
  });

  it("ignores the guard's own calls through the spoke role (loop guard per account)", async () => {
    // Prepare
    const own = launchIn(ANALYTICS, "eu-west-1", ["i-0a1b2c3d4e5f60f02"], "e-own");
    own.detail.userIdentity.arn = `arn:aws:sts::${ANALYTICS}:assumed-role/imdsv2-guard-spoke/imdsv2-guard-e-1`;
    const loop = scenario({
      organization: ORG,
      instances: [{ id: "i-0a1b2c3d4e5f60f02", account: ANALYTICS, region: "eu-west-1" }],
      events: [own],
    });

    // Act
    const run = await runFlow(loop);

    // Assess
    expect(run.reports).toEqual([]);
    expect(run.org?.assumeRoleCalls).toEqual([]);
  });
});

describe("organization mode: quotas are per account", () => {
  it("a 1,000-instance burst over 3 accounts ends near the single-account lower bound, and no account starves another", async () => {
    // Act
    const run = await runFlow(organizationBurstScenario(1000), { faults: { ec2Throttling: true } });

    // Assess
    const results = allResults(run);
    expect(results).toHaveLength(1000);
    expect(results.filter((r) => r.verdict !== "pass")).toEqual([]);
    // Each account has its own EC2 buckets: together they finish well inside one account's bound for 1,000.
    expect(run.lastReportSeconds).toBeLessThanOrEqual(modifyLowerBoundSeconds(1000));
    const lastByAccount = new Map<string, number>();
    for (const p of run.sim.published) {
      const account = p.input.MessageAttributes?.account?.StringValue ?? "";
      lastByAccount.set(account, Math.max(lastByAccount.get(account) ?? 0, p.at));
    }
    expect([...lastByAccount.keys()].sort()).toEqual([...BURST_ACCOUNTS]);
    const times = [...lastByAccount.values()];
    // No starvation: the slowest account is within 20% of the fastest (each has a third of the work).
    expect(Math.max(...times) - Date.parse("2026-11-28T09:00:00Z")).toBeLessThanOrEqual(
      1.2 * (Math.min(...times) - Date.parse("2026-11-28T09:00:00Z")),
    );
    for (const m of run.org?.memberAccounts() ?? []) expect(m.sim.modifiedInstanceIds.length).toBeGreaterThan(300);
  }, 600_000);
});
