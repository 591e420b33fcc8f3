import type { Logger } from "@aws-lambda-powertools/logger";
import type { SecurityHubClient } from "@aws-sdk/client-securityhub";
import type { EvidenceStore } from "../aws/evidence-store.js";
import { controlFindingsFor, type ImportOutcome, importFindings } from "../aws/security-hub.js";
import type { SpokeTarget } from "../domain/confused-deputy.js";
import { type EvidenceContext, type EvidenceRecord, nextEvidence } from "../domain/evidence.js";
import { findingFor, instanceArn, partitionOf } from "../domain/finding.js";
import { INSTANCE_ID_PATTERN, type InstanceResult } from "../domain/model.js";
import { type EventReport, withNotice } from "../report/report.js";
import { mapLimit } from "../runtime/map-limit.js";

export interface StandingTruthDeps {
  evidence: EvidenceStore;
  /** Security Hub in an account and region: the caller's own client, or the member's spoke session. */
  securityHubFor: (target: SpokeTarget) => Promise<SecurityHubClient>;
  logger: Logger;
  now: () => Date;
}

export interface StandingTruthOutcome {
  /** Evidence records written. */
  recorded: number;
  /** Set when `securityHub` is on: findings imported, refused one by one, and pointing at an EC2.8 finding. */
  findings?: { imported: number; failed: ImportOutcome["failed"]; related: number };
  /** What could not be recorded or imported, one sentence each: the report's notice says so. */
  problems: string[];
}

/** Evidence writes in flight at a time: a storm's thousand instances must not spend the ledger's burst at once. */
const EVIDENCE_CONCURRENCY = 8;
/** A conditional write lost to a concurrent writer is read and written again this many times. */
const EVIDENCE_WRITE_ATTEMPTS = 3;

/**
 * Keeps the standing truth of every instance of a report: its evidence record updated with the new verdict, and,
 * with `securityHub` on, its one finding imported (in its own account: the default product ARN allows no other).
 * Nothing here throws: the report must go out even when the evidence cannot be kept, and it then says so.
 */
export async function recordStandingTruth(
  report: EventReport,
  settings: { securityHub?: boolean | undefined },
  deps: StandingTruthDeps,
): Promise<StandingTruthOutcome> {
  const now = deps.now();
  const problems: string[] = [];
  const context: EvidenceContext = {
    event: report.event,
    ...(report.trigger ? { trigger: report.trigger } : {}),
    now,
  };
  const located = report.results
    .filter((r) => INSTANCE_ID_PATTERN.test(r.instanceId))
    .map((r) => ({ ...r, account: r.account ?? report.event.account, region: r.region ?? report.event.region }));
  const written = await mapLimit(located, EVIDENCE_CONCURRENCY, async (result) => {
    try {
      return await writeEvidence(deps.evidence, result, {
        ...context,
        ...(result.probeDocumentHash ? { probeDocumentHash: result.probeDocumentHash } : {}),
      });
    } catch (error) {
      problems.push(`${result.instanceId}: evidence not kept (${messageOf(error)})`);
      return undefined;
    }
  });
  const records = written.filter((r): r is EvidenceRecord => r !== undefined);
  const outcome: StandingTruthOutcome = { recorded: records.length, problems };
  if (settings.securityHub) outcome.findings = await importStandingFindings(records, report.event.eventId, deps, now);
  if (outcome.findings) {
    for (const f of outcome.findings.failed) problems.push(`finding ${f.id} refused: ${f.code} ${f.message}`);
  }
  if (problems.length > 0) deps.logger.error("Standing truth incomplete", { problems });
  return outcome;
}

async function writeEvidence(
  store: EvidenceStore,
  result: InstanceResult & { account: string; region: string },
  context: EvidenceContext,
): Promise<EvidenceRecord> {
  for (let attempt = 1; ; attempt++) {
    const previous = await store.get(result.account, result.region, result.instanceId);
    // Notify run again for the same event (a retry after the publish failed) records nothing twice.
    if (previous?.history.at(-1)?.eventId === context.event.eventId && previous.verdict === result.verdict) {
      return previous;
    }
    const record = nextEvidence(previous, result, context);
    if (await store.put(record, previous?.attempts ?? 0)) return record;
    if (attempt >= EVIDENCE_WRITE_ATTEMPTS) throw new Error("another writer kept winning the conditional write");
  }
}

/**
 * One import per account and region (at most 100 findings a call), each through that account's own client. The
 * EC2.8 lookup is best effort: without it the finding still goes in, only without RelatedFindings.
 */
async function importStandingFindings(
  records: readonly EvidenceRecord[],
  eventId: string,
  deps: StandingTruthDeps,
  now: Date,
): Promise<NonNullable<StandingTruthOutcome["findings"]>> {
  const total: NonNullable<StandingTruthOutcome["findings"]> = { imported: 0, failed: [], related: 0 };
  const groups = new Map<string, EvidenceRecord[]>();
  for (const r of records) {
    const key = `${r.account}#${r.region}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const group of groups.values()) {
    const first = group[0];
    if (!first) continue;
    const partition = partitionOf(first.region);
    const arnOf = (r: EvidenceRecord) => instanceArn(partition, r.region, r.account, r.instanceId);
    let client: SecurityHubClient;
    try {
      client = await deps.securityHubFor({ account: first.account, region: first.region, eventId });
    } catch (error) {
      for (const r of group)
        total.failed.push({ id: r.instanceId, code: "SpokeUnreachable", message: messageOf(error) });
      continue;
    }
    let related = new Map<string, { ProductArn: string; Id: string }>();
    try {
      related = await controlFindingsFor(client, group.map(arnOf));
    } catch (error) {
      deps.logger.warn("Could not look up the EC2.8 control findings", { error: messageOf(error) });
    }
    const findings = group.map((r) => {
      const control = related.get(arnOf(r));
      return findingFor(r, { partition, now, ...(control ? { relatedFindings: [control] } : {}) });
    });
    total.related += findings.filter((f) => f.FindingProviderFields.RelatedFindings).length;
    try {
      const outcome = await importFindings(client, findings);
      total.imported += outcome.imported;
      total.failed.push(...outcome.failed);
    } catch (error) {
      for (const f of findings) total.failed.push({ id: f.Id, code: "ImportFailed", message: messageOf(error) });
    }
  }
  return total;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The report, with a sentence in its notice when the standing truth could not be kept in full. */
export function withStandingTruth(report: EventReport, outcome: StandingTruthOutcome): EventReport {
  if (outcome.problems.length === 0) return report;
  const shown = outcome.problems.slice(0, 3).join("; ");
  const more = outcome.problems.length > 3 ? ` (and ${outcome.problems.length - 3} more)` : "";
  return withNotice(report, `The standing truth was not kept in full: ${shown}${more}.`);
}
