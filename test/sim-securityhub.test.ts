import { BatchImportFindingsCommand, GetFindingsCommand, SecurityHubClient } from "@aws-sdk/client-securityhub";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { scenarioInstanceSchema } from "../local/runner/scenario.js";
import { SimAccount } from "../local/sim/sim-account.js";
import { SimOrganization } from "../local/sim/sim-organization.js";
import { spokeCredentialCache } from "../shared/aws/spoke-credentials.js";
import { nextEvidence } from "../shared/domain/evidence.js";
import { findingFor, type GuardFinding } from "../shared/domain/finding.js";

/** The simulated Security Hub's contract (local/sim/securityhub.ts), provoked through a real SDK client. */

const ACCOUNT = "111122223333";
const REGION = "eu-west-1";
const T0 = new Date("2026-11-28T10:00:00.000Z");
const INSTANCE = "i-0a1b2c3d4e5f60001";

function finding(account = ACCOUNT, instanceId = INSTANCE, region = REGION): GuardFinding {
  const record = nextEvidence(
    undefined,
    { instanceId, verdict: "pass", reason: "proven", warnings: [], account, region },
    { event: { eventId: "e-1", eventName: "RunInstances", actor: "someone" }, now: T0 },
  );
  return findingFor(record, { partition: "aws", now: T0 });
}

const client = new SecurityHubClient({
  region: REGION,
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
});

describe("the simulated Security Hub refuses what AWS refuses", () => {
  let sim: SimAccount;
  beforeEach(() => {
    sim = new SimAccount([scenarioInstanceSchema.parse({ id: INSTANCE, httpTokens: "required" })]);
    sim.install();
  });
  afterEach(() => sim.restore());

  it("keeps an imported finding, and the same Id again updates it", async () => {
    // Act
    await client.send(new BatchImportFindingsCommand({ Findings: [finding()] }));
    await client.send(new BatchImportFindingsCommand({ Findings: [{ ...finding(), RecordState: "ARCHIVED" }] }));

    // Assess
    expect(sim.securityHub.findings.map((f) => f.RecordState)).toEqual(["ARCHIVED"]);
  });

  it("refuses more than 100 findings in one call", async () => {
    // Prepare
    const many = Array.from({ length: 101 }, (_, i) =>
      finding(ACCOUNT, `i-0a1b2c3d4e5f6${String(i).padStart(4, "0")}`),
    );

    // Act / Assess
    await expect(client.send(new BatchImportFindingsCommand({ Findings: many }))).rejects.toMatchObject({
      name: "InvalidInputException",
    });
    expect(sim.securityHub.findings).toEqual([]);
  });

  it("refuses a finding without a required attribute", async () => {
    // Prepare
    const { Severity: _severity, ...withoutSeverity } = finding();

    // Act / Assess
    await expect(
      client.send(new BatchImportFindingsCommand({ Findings: [withoutSeverity as GuardFinding] })),
    ).rejects.toThrow(/missing required attribute\(s\) Severity/);
  });

  it("refuses another account's finding under the default product ARN", async () => {
    // Act / Assess
    await expect(
      client.send(new BatchImportFindingsCommand({ Findings: [finding("444455556666")] })),
    ).rejects.toMatchObject({ name: "AccessDeniedException" });
  });

  it("answers GetFindings with the EC2.8 control finding of an instance, and refuses more than 20 values", async () => {
    // Prepare
    const arn = `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${INSTANCE}`;

    // Act
    const found = await client.send(
      new GetFindingsCommand({
        Filters: {
          ComplianceSecurityControlId: [{ Value: "EC2.8", Comparison: "EQUALS" }],
          ResourceId: [{ Value: arn, Comparison: "EQUALS" }],
        },
      }),
    );

    // Assess
    expect(found.Findings?.map((f) => f.Compliance?.Status)).toEqual(["PASSED"]);
    await expect(
      client.send(
        new GetFindingsCommand({
          Filters: {
            ResourceId: Array.from({ length: 21 }, (_, i) => ({ Value: `${arn}${i}`, Comparison: "EQUALS" })),
          },
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidInputException" });
  });
});

describe("in an organization, a finding goes in only through its own account", () => {
  const MEMBER = "222200000000";
  let org: SimOrganization;
  beforeEach(() => {
    org = new SimOrganization(
      {
        id: "o-a1b2c3d4e5",
        hubAccount: "999900000000",
        hubRegion: REGION,
        accounts: [{ id: MEMBER, name: "member", regions: [REGION], spoke: true }],
        allowedAccounts: [],
      },
      [scenarioInstanceSchema.parse({ id: INSTANCE, account: MEMBER })],
    );
    org.install();
  });
  afterEach(() => org.restore());

  it("refuses the member's finding from the hub's own client, and keeps it through the member's spoke session", async () => {
    // Prepare
    const hubClient = new SecurityHubClient({ region: REGION });
    const access = spokeCredentialCache({ roleName: "imdsv2-guard-spoke" });
    const credentials = await access.credentialsFor({ account: MEMBER, region: REGION, eventId: "e-1" });
    const memberClient = new SecurityHubClient({ region: REGION, credentials });

    // Act / Assess
    await expect(hubClient.send(new BatchImportFindingsCommand({ Findings: [finding(MEMBER)] }))).rejects.toMatchObject(
      { name: "AccessDeniedException" },
    );
    await memberClient.send(new BatchImportFindingsCommand({ Findings: [finding(MEMBER)] }));
    expect(org.member(MEMBER, REGION).securityHub.findings).toHaveLength(1);
    expect(org.hub.securityHub.findings).toHaveLength(0);
  });
});
