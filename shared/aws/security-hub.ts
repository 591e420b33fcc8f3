import {
  BatchImportFindingsCommand,
  type BatchImportFindingsCommandOutput,
  GetFindingsCommand,
  type GetFindingsCommandOutput,
  type SecurityHubClient,
} from "@aws-sdk/client-securityhub";
import type { SpokeTarget } from "../domain/confused-deputy.js";
import type { EvidenceRecord } from "../domain/evidence.js";
import { findingFor, type GuardFinding, partitionOf, type RelatedFinding } from "../domain/finding.js";
import { classifyAwsError } from "./errors.js";

/** "Guidelines for using the BatchImportFindings API": up to 100 findings per batch. */
export const MAX_FINDINGS_PER_IMPORT = 100;
/** "AwsSecurityFindingFilters": up to 20 values per filtered attribute. */
export const MAX_FILTER_VALUES = 20;
/** The Security Hub CSPM control that checks HttpTokens through the API ("Security Hub CSPM controls for EC2"). */
export const EC2_8_CONTROL_ID = "EC2.8";

export interface ImportOutcome {
  imported: number;
  /** Findings Security Hub refused one by one (FailedFindings), with its code and message. */
  failed: { id: string; code: string; message: string }[];
}

/**
 * Imports findings at most 100 per call. A call that fails as a whole throws, classified by its retry behaviour; a
 * finding refused on its own (FailedFindings) is reported back, not thrown, so one bad finding never drops the rest.
 */
export async function importFindings(
  client: SecurityHubClient,
  findings: readonly GuardFinding[],
): Promise<ImportOutcome> {
  const outcome: ImportOutcome = { imported: 0, failed: [] };
  for (let start = 0; start < findings.length; start += MAX_FINDINGS_PER_IMPORT) {
    const chunk = findings.slice(start, start + MAX_FINDINGS_PER_IMPORT);
    let answer: BatchImportFindingsCommandOutput;
    try {
      answer = await client.send(new BatchImportFindingsCommand({ Findings: chunk.map((f) => ({ ...f })) }));
    } catch (error) {
      throw classifyAwsError(error, "BatchImportFindings", `(${chunk.length} findings)`);
    }
    outcome.imported += answer.SuccessCount ?? 0;
    for (const f of answer.FailedFindings ?? []) {
      outcome.failed.push({ id: f.Id ?? "?", code: f.ErrorCode ?? "?", message: f.ErrorMessage ?? "" });
    }
  }
  return outcome;
}

/**
 * The active EC2.8 control findings of these instances (by instance ARN), so the guard's finding can point at the
 * API-level check it confirms or contradicts. Up to 20 ARNs per call (the filters' limit); pages followed.
 */
export async function controlFindingsFor(
  client: SecurityHubClient,
  instanceArns: readonly string[],
): Promise<Map<string, RelatedFinding>> {
  const found = new Map<string, RelatedFinding>();
  for (let start = 0; start < instanceArns.length; start += MAX_FILTER_VALUES) {
    const arns = instanceArns.slice(start, start + MAX_FILTER_VALUES);
    let token: string | undefined;
    do {
      let page: GetFindingsCommandOutput;
      try {
        page = await client.send(
          new GetFindingsCommand({
            Filters: {
              ComplianceSecurityControlId: [{ Value: EC2_8_CONTROL_ID, Comparison: "EQUALS" }],
              ResourceId: arns.map((arn) => ({ Value: arn, Comparison: "EQUALS" })),
              RecordState: [{ Value: "ACTIVE", Comparison: "EQUALS" }],
            },
            MaxResults: 100,
            NextToken: token,
          }),
        );
      } catch (error) {
        throw classifyAwsError(error, "GetFindings", "(EC2.8)");
      }
      for (const f of page.Findings ?? []) {
        const resource = f.Resources?.find((r) => r.Id !== undefined && arns.includes(r.Id));
        if (resource?.Id && f.Id && f.ProductArn) found.set(resource.Id, { ProductArn: f.ProductArn, Id: f.Id });
      }
      token = page.NextToken;
    } while (token);
  }
  return found;
}

/**
 * The findings of instances the sweep found gone, archived (RecordState ARCHIVED, their last compliance kept), in
 * their own account. Throws like importFindings; the caller decides what a failure means.
 */
export async function archiveFindings(
  closed: readonly EvidenceRecord[],
  eventId: string,
  securityHubFor: (target: SpokeTarget) => Promise<SecurityHubClient>,
  now: Date,
): Promise<ImportOutcome | undefined> {
  const first = closed[0];
  if (!first) return undefined;
  const client = await securityHubFor({ account: first.account, region: first.region, eventId });
  const partition = partitionOf(first.region);
  return importFindings(
    client,
    closed.map((r) => findingFor(r, { partition, now })),
  );
}
