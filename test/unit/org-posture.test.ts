import { describe, expect, it } from "vitest";
import {
  needsDeclarativePolicy,
  type OrgSweepRow,
  orgSweepExecutionName,
  unreachableRow,
} from "../../shared/domain/org-posture.js";
import {
  DECLARATIVE_POLICY,
  ORG_POSTURE_SCHEMA,
  type OrgPostureReport,
  orgPostureMessage,
  orgPostureText,
} from "../../shared/report/org-posture.js";
import { loadSweepConfig } from "../../shared/runtime/config.js";
import { HOSTILE_STRINGS } from "../fixtures/hostile.js";

const swept = (over: Partial<OrgSweepRow> = {}): OrgSweepRow => ({
  account: "111100000000",
  accountName: "payments-prod",
  region: "eu-west-1",
  status: "swept",
  posture: { httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account" },
  allowingImdsV1: 3,
  exempt: 1,
  sentToGuard: 2,
  executions: [{ name: "sweep-202611280900-111100000000-eu-west-1-1", instances: 2, alreadyStarted: false }],
  ...over,
});

const managed = swept({
  account: "333300000000",
  accountName: "data",
  posture: { httpTokens: "required", httpTokensEnforced: true, managedBy: "declarative-policy" },
  allowingImdsV1: 0,
  exempt: 0,
  sentToGuard: 0,
  executions: [],
});

const missing: OrgSweepRow = {
  account: "222200000000",
  accountName: "sandbox",
  region: "eu-west-1",
  ...unreachableRow(
    "assume-role",
    "AccessDenied",
    "cannot assume the spoke role in 222200000000/eu-west-1: AccessDenied",
  ),
};

function report(rows: OrgSweepRow[]): OrgPostureReport {
  return {
    sweepId: "sweep-202611280900",
    organizationId: "o-a1b2c3d4e5",
    generatedAt: "2026-11-28T09:00:00.000Z",
    regions: ["eu-west-1"],
    rows,
  };
}

describe("the organization posture report", () => {
  it("lists every account with its defaults, HttpTokensEnforced, who manages them, IMDSv1 count and drift", () => {
    // Act
    const text = orgPostureText(report([swept(), managed, missing]));

    // Assess
    const line = (label: string) => text.split("\n").find((l) => l.startsWith(label)) ?? "";
    expect(line("payments-prod")).toMatch(/eu-west-1\s+no-preference\s+off\s+account\s+3\s+2\s+defaults allow/);
    expect(line("data ")).toMatch(/eu-west-1\s+required\s+on\s+policy\s+0\s+0\s+ok/);
    expect(line("sandbox")).toMatch(/eu-west-1\s+-\s+-\s+-\s+-\s+-\s+drift: spoke/);
    expect(text).toContain(
      "- sandbox (222200000000)/eu-west-1: cannot assume the spoke role in 222200000000/eu-west-1: AccessDenied",
    );
    expect(text).toContain(
      "3 account(s) x 1 region(s) (eu-west-1): 2 pair(s) swept, 1 pair(s) in drift (1 account(s)), 0 error(s)",
    );
    expect(text).toContain("Drift in 1 account/region pair(s)");
  });

  it("recommends the EC2 declarative policy only where the defaults do not require IMDSv2", () => {
    // Act
    const needed = orgPostureText(report([swept(), managed]));
    const notNeeded = orgPostureText(report([managed, missing]));

    // Assess
    const recommendation = needed.slice(needed.indexOf("Recommended:"));
    expect(recommendation).toContain("in 1 place(s): payments-prod (111100000000)/eu-west-1.");
    expect(recommendation).toContain(`--content '${JSON.stringify(DECLARATIVE_POLICY)}'`);
    expect(recommendation).toContain('"http_tokens_enforced":{"@@assign":"enabled"}');
    expect(notNeeded).not.toContain("Recommended:");
    // A policy that manages the defaults but allows IMDSv1 is the one to change: it is named too.
    const weakPolicy = swept({
      posture: { httpTokens: "optional", httpTokensEnforced: false, managedBy: "declarative-policy" },
    });
    expect(needsDeclarativePolicy(weakPolicy)).toBe(true);
    expect(needsDeclarativePolicy(missing)).toBe(false);
  });

  it("is one SNS message: email, Chatbot card, machine copy, and attributes naming the accounts", () => {
    // Act
    const message = orgPostureMessage(report([swept(), managed, missing]));

    // Assess
    expect(message.Subject).toBe(
      "[imdsv2-guard] ALERT: organization posture - 3 accounts, 1 with drift, 3 allowing IMDSv1",
    );
    expect(message.MessageAttributes).toEqual({
      verdict: { DataType: "String", StringValue: "alert" },
      verdicts: { DataType: "String.Array", StringValue: '["alert"]' },
      report: { DataType: "String", StringValue: "org-posture" },
      accounts: { DataType: "String.Array", StringValue: '["111100000000","333300000000","222200000000"]' },
    });
    const body = JSON.parse(message.Message) as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(["default", "https", "lambda", "sqs"]);
    const machine = JSON.parse(body.sqs ?? "{}");
    expect(machine).toMatchObject({
      schema: ORG_POSTURE_SCHEMA,
      totals: { accounts: 3, drift: 1, driftAccounts: 1, swept: 2 },
    });
    expect(machine.rows).toHaveLength(3);
    const card = JSON.parse(body.https ?? "{}");
    expect(card.content.description).toContain("sandbox (222200000000)/eu-west-1: drift: spoke missing");
    expect(card.content.nextSteps).toHaveLength(2);
    // A clean organization is a pass, which Slack's default verdicts leave out.
    expect(orgPostureMessage(report([managed])).MessageAttributes.verdict?.StringValue).toBe("pass");
  });

  it("fits SNS with a thousand account/region pairs, shrinking the machine copy, and caps the email's table", () => {
    // Prepare
    const rows = Array.from({ length: 1500 }, (_, i) =>
      swept({ account: String(100000000000 + i), accountName: `account-with-a-long-name-${i}` }),
    );

    // Act
    const message = orgPostureMessage(report(rows));

    // Assess
    expect(Buffer.byteLength(message.Message)).toBeLessThan(256 * 1024);
    const body = JSON.parse(message.Message) as Record<string, string>;
    const machine = JSON.parse(body.sqs ?? "{}");
    expect(machine.rows).toBeUndefined();
    expect(machine.compactRows).toHaveLength(1500);
    expect(body.default).toContain("... and 1300 more row(s)");
  });

  it("keeps hostile account names out of the email's control characters and the card's markup", () => {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the assertion is about control characters.
    const control = /[\u0000-\u0008\u000b-\u001f\u007f]/;
    for (const hostile of Object.values(HOSTILE_STRINGS)) {
      const message = orgPostureMessage(report([swept({ accountName: hostile }), missing]));
      const body = JSON.parse(message.Message) as Record<string, string>;
      expect(body.default, hostile).not.toMatch(control);
      expect(JSON.parse(body.https ?? "{}").content.description, hostile).not.toMatch(control);
    }
  });
});

describe("organization sweep helpers", () => {
  it("names executions per sweep window, account and region, within Step Functions' 80 characters", () => {
    const name = orgSweepExecutionName("sweep-202611280900", "111100000000", "ap-southeast-3", 12);
    expect(name).toBe("sweep-202611280900-111100000000-ap-southeast-3-12");
    expect(name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
  });

  it("tells a missing spoke from a region not enabled, a missing permission and a passing failure", () => {
    expect(unreachableRow("assume-role", "AccessDenied", "m")).toEqual({
      status: "drift",
      drift: "spoke missing",
      reason: "m",
    });
    expect(unreachableRow("assume-role", "RegionDisabledException", "m").drift).toBe("region not enabled");
    expect(unreachableRow("call", "AuthFailure", "m").drift).toBe("region not enabled");
    expect(unreachableRow("call", "UnauthorizedOperation", "m").drift).toBe("spoke role lacks a permission");
    expect(unreachableRow("assume-role", "Throttling", "m")).toEqual({ status: "error", reason: "m" });
  });

  it("reads the hub's sweep settings: regions (default: the hub's), concurrency, topics", () => {
    const base = {
      STATE_MACHINE_ARN: "arn:aws:states:eu-west-1:999900000000:stateMachine:imdsv2-guard-prod",
      AWS_REGION: "eu-west-1",
      ACCOUNT_ID: "999900000000",
    };
    expect(loadSweepConfig(base).organization).toBeUndefined();
    const hub = loadSweepConfig({
      ...base,
      ORGANIZATION_ID: "o-a1b2c3d4e5",
      TOPIC_ARN: "arn:aws:sns:eu-west-1:999900000000:alerts",
      SLACK_TOPIC_ARN: "",
    }).organization;
    expect(hub).toMatchObject({
      id: "o-a1b2c3d4e5",
      regions: ["eu-west-1"],
      concurrency: 8,
      spokeRoleName: "imdsv2-guard-spoke",
    });
    expect(hub?.topics).toEqual({
      topicArn: "arn:aws:sns:eu-west-1:999900000000:alerts",
      slackVerdicts: ["fail", "error", "held", "unverified", "alert"],
    });
    const listed = loadSweepConfig({
      ...base,
      ORGANIZATION_ID: "o-a1b2c3d4e5",
      TOPIC_ARN: "arn:aws:sns:eu-west-1:999900000000:alerts",
      SWEEP_REGIONS: "eu-west-1, us-east-1,eu-west-1",
      SWEEP_CONCURRENCY: "3",
    }).organization;
    expect(listed).toMatchObject({ regions: ["eu-west-1", "us-east-1"], concurrency: 3 });
    expect(() =>
      loadSweepConfig({ ...base, ORGANIZATION_ID: "o-a1b2c3d4e5", TOPIC_ARN: "arn:x", SWEEP_REGIONS: "mars-1" }),
    ).toThrow(/SWEEP_REGIONS/);
  });
});
