import type { EvidenceRecord } from "./evidence.js";
import type { EndpointReading, Verdict } from "./model.js";

/**
 * One Security Hub CSPM finding per instance, in the AWS Security Finding Format (ASFF), built from its evidence
 * record. Sources (AWS Security Hub User Guide and API Reference):
 * - "Required top-level ASFF attributes": AwsAccountId, CreatedAt, Description, GeneratorId, Id, ProductArn,
 *   Resources, SchemaVersion, Severity, Title, Types, UpdatedAt.
 * - "Integrating Security Hub CSPM with custom products": ProductArn `arn:aws:securityhub:REGION:ACCOUNT:product/
 *   ACCOUNT/default`; "Guidelines for using the BatchImportFindings API": call it from the account that is the
 *   finding's AwsAccountId, up to 100 findings per batch, 240 KB per finding.
 * - "Guidelines for mapping findings into the ASFF": SchemaVersion is always 2018-10-08, Title at most 256
 *   characters, Description at most 1024; to update a finding, resubmit it with the same Id.
 * - "FindingProviderFields" (API Reference): providers set and update Severity, Types and RelatedFindings there;
 *   BatchImportFindings should not update their top-level analogues after creation.
 * - "Compliance" (API Reference): Status is PASSED, WARNING, FAILED or NOT_AVAILABLE.
 */

export const ASFF_SCHEMA_VERSION = "2018-10-08";
export const FINDING_GENERATOR_ID = "imdsv2-guard/imds-probe";
/** ASFF types are namespace/category/classifier; this check is a configuration best practice. */
export const FINDING_TYPES = ["Software and Configuration Checks/AWS Security Best Practices/IMDSv2"];

/** The partitions ASFF's Resources.Partition takes. */
export type Partition = "aws" | "aws-cn" | "aws-us-gov";
export type ComplianceStatus = "PASSED" | "WARNING" | "FAILED" | "NOT_AVAILABLE";
type SeverityLabel = "INFORMATIONAL" | "LOW" | "MEDIUM" | "HIGH" | "CRITICAL";

/**
 * Compliance.Status from the verdict, by the API Reference's definitions ("Compliance"):
 * - `pass` → PASSED: the probe proved from inside that IMDSv1 is refused.
 * - `fail` → FAILED: IMDSv1 answers (proven by the probe, or HttpTokens was reverted).
 * - `held` → FAILED: the instance still allows IMDSv1 and uses it; the guard deferred enforcing, the check failed.
 * - `unverified` → WARNING ("some information is missing"): the guard enforced, but could not look inside (no SSM,
 *   stopped): EC2's word is all there is, and that is exactly what EC2.8 already says.
 * - `exempt` → WARNING ("this check is not supported for your configuration"): the exemption tag takes the instance
 *   out of the check by the owner's choice; it stays visible instead of PASSED or silently absent.
 * - `error` → NOT_AVAILABLE ("check could not be performed due to a service outage, API error").
 * - `skipped` → NOT_AVAILABLE: nothing to judge (a stopped or gone instance); a terminated one is archived.
 */
export const COMPLIANCE_BY_VERDICT: Record<Verdict, ComplianceStatus> = {
  pass: "PASSED",
  fail: "FAILED",
  held: "FAILED",
  unverified: "WARNING",
  exempt: "WARNING",
  error: "NOT_AVAILABLE",
  skipped: "NOT_AVAILABLE",
};

const SEVERITY_BY_VERDICT: Record<Verdict, SeverityLabel> = {
  pass: "INFORMATIONAL",
  fail: "HIGH",
  held: "MEDIUM",
  unverified: "LOW",
  exempt: "LOW",
  error: "LOW",
  skipped: "INFORMATIONAL",
};

export interface RelatedFinding {
  ProductArn: string;
  Id: string;
}

/** The finding as BatchImportFindings takes it (the SDK's AwsSecurityFinding, narrowed to what the guard sets). */
export interface GuardFinding {
  SchemaVersion: string;
  Id: string;
  ProductArn: string;
  GeneratorId: string;
  AwsAccountId: string;
  Region: string;
  Types: string[];
  CreatedAt: string;
  UpdatedAt: string;
  Severity: { Label: SeverityLabel };
  Title: string;
  Description: string;
  ProductFields: Record<string, string>;
  Resources: { Type: "AwsEc2Instance"; Id: string; Partition: Partition; Region: string }[];
  Compliance: { Status: ComplianceStatus; StatusReasons: { ReasonCode: string; Description: string }[] };
  RecordState: "ACTIVE" | "ARCHIVED";
  FindingProviderFields: {
    Severity: { Label: SeverityLabel; Original: string };
    Types: string[];
    RelatedFindings?: RelatedFinding[];
  };
}

/** The caller account's own product ARN: the only one a custom integration may import under. */
export function defaultProductArn(partition: string, region: string, account: string): string {
  return `arn:${partition}:securityhub:${region}:${account}:product/${account}/default`;
}

export function instanceArn(partition: string, region: string, account: string, instanceId: string): string {
  return `arn:${partition}:ec2:${region}:${account}:instance/${instanceId}`;
}

/** One finding per instance for good: the same Id at every verdict updates it instead of adding another. */
export function findingId(record: Pick<EvidenceRecord, "account" | "region" | "instanceId">): string {
  return `imdsv2-guard/${record.account}/${record.region}/${record.instanceId}`;
}

/** ProductFields values are strings; a missing reading is "none", never an empty string. */
function status(value: number | null | undefined): string {
  return value === null || value === undefined ? "none" : String(value);
}

function endpointFields(prefix: string, e: EndpointReading | undefined): Record<string, string> {
  if (!e) return {};
  return {
    [`${prefix}/v1`]: status(e.v1),
    [`${prefix}/v1Credentials`]: status(e.v1Credentials),
    [`${prefix}/token`]: status(e.token),
    [`${prefix}/v2`]: status(e.v2),
  };
}

/**
 * The probe's evidence as ProductFields: every status the probe saw, per endpoint and path (`none`: nothing
 * answered), the probe document's hash, when it ran, and the event and actor behind the verdict. Keys are
 * namespaced, as the ASFF asks of provider fields.
 */
export function evidenceFields(record: EvidenceRecord): Record<string, string> {
  const r = record.reading;
  const fields: Record<string, string> = {
    "imdsv2-guard/verdict": record.verdict,
    "imdsv2-guard/verdictAt": record.verdictAt,
    "imdsv2-guard/attempts": String(record.attempts),
    "imdsv2-guard/eventId": record.event.eventId.slice(0, 256),
    "imdsv2-guard/eventName": record.event.eventName.slice(0, 256),
    "imdsv2-guard/actor": record.event.actor.slice(0, 256),
    ...(record.event.trigger ? { "imdsv2-guard/trigger": record.event.trigger } : {}),
    ...(record.lastProofAt ? { "imdsv2-guard/lastProofAt": record.lastProofAt } : {}),
    ...(record.probeDocumentHash ? { "imdsv2-guard/probeDocumentSha256": record.probeDocumentHash } : {}),
  };
  if (r) {
    Object.assign(
      fields,
      endpointFields("imdsv2-guard/probe/ipv4", {
        v1: r.v1,
        v1Credentials: r.v1Credentials ?? null,
        token: r.token,
        v2: r.v2,
      }),
      endpointFields("imdsv2-guard/probe/ipv6", r.v6),
      { "imdsv2-guard/probe/client": r.client.slice(0, 64) },
    );
  }
  return fields;
}

const TITLES: Record<Verdict, string> = {
  pass: "IMDSv1 is refused on the instance, proven from inside",
  fail: "IMDSv1 still answers on the instance",
  held: "IMDSv1 is allowed and in use on the instance; enforcement held",
  unverified: "IMDSv1 could not be checked from inside the instance",
  exempt: "The instance is exempt from IMDSv2 enforcement",
  error: "The IMDSv2 check of the instance could not finish",
  skipped: "The instance was not checked for IMDSv1",
};

/**
 * The finding for an evidence record. `createdAt` is when the guard first recorded the instance, so an update keeps
 * its CreatedAt; a closed record (the instance terminated) is ARCHIVED, keeping its last compliance.
 */
export function findingFor(
  record: EvidenceRecord,
  options: { partition: Partition; now: Date; relatedFindings?: RelatedFinding[] },
): GuardFinding {
  const { partition } = options;
  const severity = SEVERITY_BY_VERDICT[record.verdict];
  const title = `${TITLES[record.verdict]} (${record.instanceId})`.slice(0, 256);
  const description = record.reason.slice(0, 1024);
  return {
    SchemaVersion: ASFF_SCHEMA_VERSION,
    Id: findingId(record),
    ProductArn: defaultProductArn(partition, record.region, record.account),
    GeneratorId: FINDING_GENERATOR_ID,
    AwsAccountId: record.account,
    Region: record.region,
    Types: FINDING_TYPES,
    CreatedAt: record.firstSeenAt,
    UpdatedAt: options.now.toISOString(),
    Severity: { Label: severity },
    Title: title,
    Description: description,
    ProductFields: evidenceFields(record),
    Resources: [
      {
        Type: "AwsEc2Instance",
        Id: instanceArn(partition, record.region, record.account, record.instanceId),
        Partition: partition,
        Region: record.region,
      },
    ],
    Compliance: {
      Status: COMPLIANCE_BY_VERDICT[record.verdict],
      StatusReasons: [{ ReasonCode: `IMDSV2_GUARD_${record.verdict.toUpperCase()}`, Description: description }],
    },
    RecordState: record.closedAt ? "ARCHIVED" : "ACTIVE",
    FindingProviderFields: {
      Severity: { Label: severity, Original: record.verdict },
      Types: FINDING_TYPES,
      ...(options.relatedFindings && options.relatedFindings.length > 0
        ? { RelatedFindings: options.relatedFindings }
        : {}),
    },
  };
}

/** The partition of a region: the ARNs of a finding must name the partition its account lives in. */
export function partitionOf(region: string): Partition {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}
