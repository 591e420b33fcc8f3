import { BatchImportFindingsCommand, GetFindingsCommand, SecurityHubClient } from "@aws-sdk/client-securityhub";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { securityhub } from "../../shared/aws/clients/securityhub.js";
import type { EvidenceStore } from "../../shared/aws/evidence-store.js";
import { controlFindingsFor, importFindings, MAX_FINDINGS_PER_IMPORT } from "../../shared/aws/security-hub.js";
import {
  closeEvidence,
  type EvidenceRecord,
  instanceGone,
  needsReproof,
  nextEvidence,
} from "../../shared/domain/evidence.js";
import { COMPLIANCE_BY_VERDICT, findingFor } from "../../shared/domain/finding.js";
import type { InstanceResult } from "../../shared/domain/model.js";
import { evidenceCsv, evidenceJson, evidenceTable } from "../../shared/report/evidence-table.js";
import { buildReport, plainText } from "../../shared/report/report.js";
import { recordStandingTruth, withStandingTruth } from "../../shared/steps/standing-truth.js";
import { eventRef, ID_A, ID_B, ID_C, instanceIds, silentLogger } from "./support.js";

const hubMock = mockClient(SecurityHubClient);
const logger = silentLogger("standing-truth-test");
const ACCOUNT = "123456789012";
const REGION = "us-east-1";
const T0 = new Date("2026-11-28T10:00:00.000Z");
const READING = {
  v1: 200,
  v1Credentials: 200,
  token: 200,
  v2: 200,
  client: "curl",
  v6: { v1: null, v1Credentials: null, token: null, v2: null },
  answered: ["ipv4" as const],
};

function located(instanceId: string, extra: Partial<InstanceResult> = {}) {
  return {
    instanceId,
    verdict: "pass" as const,
    reason: "proven",
    warnings: [],
    account: ACCOUNT,
    region: REGION,
    ...extra,
  };
}

/** An in-memory store with DynamoDB's conditional write: a put on a stale attempt count loses. */
function memoryStore(): EvidenceStore & { records: Map<string, EvidenceRecord> } {
  const records = new Map<string, EvidenceRecord>();
  return {
    records,
    async get(_a, _r, id) {
      return records.get(id);
    },
    async put(record, previous) {
      if ((records.get(record.instanceId)?.attempts ?? 0) !== previous) return false;
      records.set(record.instanceId, record);
      return true;
    },
    async list() {
      return [...records.values()];
    },
  };
}

beforeEach(() => hubMock.reset());

describe("the evidence record", () => {
  it("keeps every verdict, the last proof and its readings, and counts the attempts", () => {
    // Prepare
    const context = { event: eventRef(), trigger: "launch" as const, now: T0 };

    // Act
    const first = nextEvidence(undefined, located(ID_A, { verdict: "unverified", reason: "no SSM" }), context);
    const later = new Date(T0.getTime() + 86_400_000);
    const second = nextEvidence(
      first,
      located(ID_A, { verdict: "pass", reading: READING, probeDocumentHash: "abc123" }),
      { ...context, trigger: "sweep", now: later, probeDocumentHash: "abc123" },
    );

    // Assess
    expect(first.lastProofAt).toBeUndefined();
    expect(second.history.map((h) => h.verdict)).toEqual(["unverified", "pass"]);
    expect(second.attempts).toBe(2);
    expect(second.firstSeenAt).toBe(T0.toISOString());
    expect(second.lastProofAt).toBe(later.toISOString());
    expect(second.reading?.v1).toBe(200);
    expect(second.probeDocumentHash).toBe("abc123");
  });

  it("keeps the last proof through a verdict without a reading", () => {
    // Prepare
    const context = { event: eventRef(), now: T0 };
    const proven = nextEvidence(undefined, located(ID_A, { reading: READING }), context);

    // Act
    const doubted = nextEvidence(proven, located(ID_A, { verdict: "unverified", reason: "stopped" }), context);

    // Assess
    expect(doubted.verdict).toBe("unverified");
    expect(doubted.lastProofAt).toBe(proven.lastProofAt);
    expect(doubted.reading).toEqual(READING);
  });

  it("is closed, not dropped, when the instance is gone", () => {
    // Prepare
    const gone = located(ID_A, { verdict: "skipped", reason: "Instance was terminated before it could be probed." });

    // Act
    const record = nextEvidence(undefined, gone, { event: eventRef(), now: T0 });

    // Assess
    expect(instanceGone(gone)).toBe(true);
    expect(instanceGone({ verdict: "skipped", reason: "Instance is stopped; nothing to protect." })).toBe(false);
    expect(record.closedAt).toBe(T0.toISOString());
    expect(closeEvidence(record, new Date(T0.getTime() + 1000)).closedAt).toBe(T0.toISOString());
  });

  it("asks for a new proof for every doubt and for an old pass, never for a closed record", () => {
    // Prepare
    const context = { event: eventRef(), now: T0 };
    const pass = nextEvidence(undefined, located(ID_A, { reading: READING }), context);
    const held = nextEvidence(undefined, located(ID_B, { verdict: "held" }), context);
    const day = 86_400_000;

    // Act / Assess
    expect(needsReproof(pass, new Date(T0.getTime() + 29 * day), 30)).toBe(false);
    expect(needsReproof(pass, new Date(T0.getTime() + 30 * day), 30)).toBe(true);
    expect(needsReproof(held, T0, 30)).toBe(true);
    expect(needsReproof(closeEvidence(held, T0), T0, 30)).toBe(false);
  });
});

describe("the finding", () => {
  const record = (verdict: InstanceResult["verdict"], extra: Partial<InstanceResult> = {}) =>
    nextEvidence(undefined, located(ID_A, { verdict, reason: `${verdict} because`, ...extra }), {
      event: eventRef(),
      now: T0,
    });

  it("has every required ASFF attribute, the caller's default product ARN and the instance's ARN", () => {
    // Act
    const finding = findingFor(record("pass", { reading: READING }), { partition: "aws", now: T0 });

    // Assess
    for (const name of [
      "AwsAccountId",
      "CreatedAt",
      "Description",
      "GeneratorId",
      "Id",
      "ProductArn",
      "Resources",
      "SchemaVersion",
      "Severity",
      "Title",
      "Types",
      "UpdatedAt",
    ] as const) {
      expect(finding[name], name).toBeTruthy();
    }
    expect(finding.ProductArn).toBe(`arn:aws:securityhub:${REGION}:${ACCOUNT}:product/${ACCOUNT}/default`);
    expect(finding.Resources[0]?.Id).toBe(`arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${ID_A}`);
    expect(finding.Compliance.Status).toBe("PASSED");
    expect(finding.RecordState).toBe("ACTIVE");
  });

  it("maps each verdict to the documented Compliance.Status", () => {
    // Assess
    expect(COMPLIANCE_BY_VERDICT).toEqual({
      pass: "PASSED",
      fail: "FAILED",
      held: "FAILED",
      unverified: "WARNING",
      exempt: "WARNING",
      error: "NOT_AVAILABLE",
      skipped: "NOT_AVAILABLE",
    });
  });

  it("carries the probe's readings per endpoint and path, and is archived once the instance is gone", () => {
    // Act
    const failed = findingFor(record("fail", { reading: READING }), { partition: "aws", now: T0 });
    const gone = findingFor(closeEvidence(record("fail", { reading: READING }), T0), { partition: "aws", now: T0 });

    // Assess
    expect(failed.Compliance.Status).toBe("FAILED");
    expect(failed.ProductFields).toMatchObject({
      "imdsv2-guard/probe/ipv4/v1": "200",
      "imdsv2-guard/probe/ipv4/v1Credentials": "200",
      "imdsv2-guard/probe/ipv6/v1": "none",
      "imdsv2-guard/probe/client": "curl",
    });
    expect(gone.RecordState).toBe("ARCHIVED");
    expect(gone.Compliance.Status).toBe("FAILED");
  });
});

describe("Security Hub calls", () => {
  it("imports at most 100 findings a call", async () => {
    // Prepare
    hubMock.on(BatchImportFindingsCommand).callsFake((input: { Findings: unknown[] }) => ({
      SuccessCount: input.Findings.length,
      FailedCount: 0,
      FailedFindings: [],
    }));
    const findings = instanceIds(250).map((id) =>
      findingFor(nextEvidence(undefined, located(id), { event: eventRef(), now: T0 }), { partition: "aws", now: T0 }),
    );

    // Act
    const outcome = await importFindings(securityhub, findings);

    // Assess
    const sizes = hubMock.commandCalls(BatchImportFindingsCommand).map((c) => c.args[0].input.Findings?.length);
    expect(sizes).toEqual([MAX_FINDINGS_PER_IMPORT, MAX_FINDINGS_PER_IMPORT, 50]);
    expect(outcome.imported).toBe(250);
  });

  it("asks for EC2.8 findings 20 instance ARNs at a time and maps each to its instance", async () => {
    // Prepare
    const arns = instanceIds(25).map((id) => `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${id}`);
    hubMock.on(GetFindingsCommand).callsFake((input: { Filters: { ResourceId: { Value: string }[] } }) => ({
      Findings: input.Filters.ResourceId.slice(0, 1).map((f) => ({
        Id: `control-${f.Value}`,
        ProductArn: "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        Resources: [{ Type: "AwsEc2Instance", Id: f.Value }],
      })),
    }));

    // Act
    const related = await controlFindingsFor(securityhub, arns);

    // Assess
    const calls = hubMock.commandCalls(GetFindingsCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.Filters?.ResourceId?.length)).toEqual([20, 5]);
    expect(calls[0]?.Filters?.ComplianceSecurityControlId).toEqual([{ Value: "EC2.8", Comparison: "EQUALS" }]);
    expect([...related.keys()]).toEqual([arns[0], arns[20]]);
  });
});

describe("recordStandingTruth", () => {
  it("records each instance, imports one finding each with its EC2.8 finding, and records nothing twice on a retry", async () => {
    // Prepare
    const store = memoryStore();
    hubMock.on(BatchImportFindingsCommand).resolves({ SuccessCount: 2, FailedCount: 0, FailedFindings: [] });
    hubMock.on(GetFindingsCommand).resolves({
      Findings: [
        {
          Id: "control-a",
          ProductArn: "arn:aws:securityhub:us-east-1::product/aws/securityhub",
          Resources: [{ Type: "AwsEc2Instance", Id: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${ID_A}` }],
        } as never,
      ],
    });
    const report = buildReport({
      event: eventRef({ account: ACCOUNT, region: REGION }),
      mode: "enforce",
      results: [located(ID_A, { reading: READING }), located(ID_B, { verdict: "fail", reading: READING })],
      rejected: [],
    });
    const deps = { evidence: store, securityHubFor: async () => securityhub, logger, now: () => T0 };

    // Act
    const outcome = await recordStandingTruth(report, { securityHub: true }, deps);
    await recordStandingTruth(report, { securityHub: true }, deps);

    // Assess
    expect(outcome.recorded).toBe(2);
    expect(outcome.findings?.related).toBe(1);
    expect(store.records.get(ID_A)?.attempts).toBe(1);
    const imported = hubMock.commandCalls(BatchImportFindingsCommand)[0]?.args[0].input.Findings ?? [];
    expect(imported.map((f) => f.Compliance?.Status)).toEqual(["PASSED", "FAILED"]);
    expect(imported[0]?.FindingProviderFields?.RelatedFindings).toEqual([
      { ProductArn: "arn:aws:securityhub:us-east-1::product/aws/securityhub", Id: "control-a" },
    ]);
  });

  it("imports nothing with securityHub off, and says in the report what it could not keep", async () => {
    // Prepare
    const store = memoryStore();
    store.put = async () => {
      throw new Error("ledger down");
    };
    const report = buildReport({ event: eventRef(), mode: "enforce", results: [located(ID_C)], rejected: [] });

    // Act
    const outcome = await recordStandingTruth(
      report,
      {},
      {
        evidence: store,
        securityHubFor: async () => securityhub,
        logger,
        now: () => T0,
      },
    );

    // Assess
    expect(hubMock.calls()).toHaveLength(0);
    expect(outcome.problems[0]).toContain("ledger down");
    expect(plainText(withStandingTruth(report, outcome))).toContain("The standing truth was not kept in full");
  });
});

describe("the FAIL advice fits how it failed", () => {
  it("points a probe-proven fail at the instance's software, and blames no actor", () => {
    // Prepare
    const report = buildReport({
      event: eventRef(),
      mode: "enforce",
      results: [located(ID_A, { verdict: "fail", reason: "IMDSv1 still answers on IPv4", reading: READING })],
      rejected: [],
    });

    // Act
    const text = plainText(report);

    // Assess
    expect(text).toContain("software on the instance answers token-less requests");
    expect(text).not.toContain("reverted");
    expect(text).not.toContain("actor above");
  });

  it("sends a fail the API showed (HttpTokens went back) to CloudTrail for who reverted it", () => {
    // Prepare
    const report = buildReport({
      event: eventRef(),
      mode: "enforce",
      results: [located(ID_A, { verdict: "fail", reason: "HttpTokens went back to optional: someone reverted it." })],
      rejected: [],
    });

    // Act
    const text = plainText(report);

    // Assess
    expect(text).toContain("look up ModifyInstanceMetadataOptions for the instance in CloudTrail");
    expect(text).not.toContain("software on the instance answers");
  });
});

describe("the evidence listing", () => {
  const context = { event: eventRef({ actor: '=HYPERLINK("http://x")' }), now: T0 };
  const records = [
    nextEvidence(undefined, located(ID_A, { reading: READING }), context),
    nextEvidence(undefined, located(ID_B, { verdict: "unverified", reason: 'no SSM, "agent" missing' }), context),
  ];
  const later = new Date(T0.getTime() + 3 * 86_400_000);

  it("puts doubts first, with the proof's age, in the table and the JSON", () => {
    // Act
    const table = evidenceTable(records, later, 120);
    const json = evidenceJson(records, later);

    // Assess
    const rows = table.split("\n").filter((l) => l.includes("i-"));
    expect(rows[0]).toContain("UNVERIFIED");
    expect(rows[0]).toContain("never proven");
    expect(rows[1]).toContain("3 d");
    expect(json.instances.map((i) => [i.instanceId, i.proofAgeDays])).toEqual([
      [ID_B, null],
      [ID_A, 3],
    ]);
  });

  it("writes CSV a spreadsheet opens without running a formula, quoting what needs quotes", () => {
    // Act
    const lines = evidenceCsv(records, later).trimEnd().split("\r\n");

    // Assess
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(
      "account,region,instanceId,verdict,verdictAt,lastProofAt,proofAgeDays,attempts,closedAt,eventId,actor,reason",
    );
    expect(lines[1]).toContain(`"'=HYPERLINK(""http://x"")"`);
    expect(lines[1]).toContain(`"no SSM, ""agent"" missing"`);
  });
});
