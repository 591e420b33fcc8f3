import { type EvidenceRecord, proofAgeDays } from "../domain/evidence.js";
import { textTable } from "./text-table.js";

/**
 * `imdsv2-guard evidence` (and `npm start -- evidence`): every instance of an account and region with its standing
 * verdict, the age of its proof, and why. Table for people, JSON (docs/schemas/evidence.v1.json) for programs, CSV
 * for auditors' spreadsheets.
 */

export const EVIDENCE_SCHEMA = "imdsv2-guard.evidence.v1";

export interface EvidenceListing {
  schema: typeof EVIDENCE_SCHEMA;
  generatedAt: string;
  instances: (EvidenceRecord & { proofAgeDays: number | null })[];
}

/** Open records first (worst verdict first within them), closed ones last: what needs attention leads. */
function ordered(records: readonly EvidenceRecord[]): EvidenceRecord[] {
  const rank: Record<string, number> = { fail: 0, error: 1, held: 2, unverified: 3, exempt: 4, skipped: 5, pass: 6 };
  return [...records].sort(
    (a, b) =>
      Number(a.closedAt !== undefined) - Number(b.closedAt !== undefined) ||
      (rank[a.verdict] ?? 9) - (rank[b.verdict] ?? 9) ||
      `${a.account}${a.region}${a.instanceId}`.localeCompare(`${b.account}${b.region}${b.instanceId}`),
  );
}

export function evidenceJson(records: readonly EvidenceRecord[], now: Date): EvidenceListing {
  return {
    schema: EVIDENCE_SCHEMA,
    generatedAt: now.toISOString(),
    instances: ordered(records).map((r) => ({ ...r, proofAgeDays: proofAgeDays(r, now) ?? null })),
  };
}

const COLUMNS = ["account", "region", "instance", "verdict", "proof age", "attempts", "state", "why"] as const;

function rowOf(r: EvidenceRecord, now: Date): string[] {
  return [
    r.account,
    r.region,
    r.instanceId,
    r.verdict.toUpperCase(),
    proofAgeText(r, now),
    String(r.attempts),
    r.closedAt ? `closed ${r.closedAt.slice(0, 10)}` : "open",
    r.reason,
  ];
}

/** "3 d", or "5 h" within the first day (a fresh proof still reads as fresh), or "never proven". */
function proofAgeText(r: EvidenceRecord, now: Date): string {
  if (!r.lastProofAt) return "never proven";
  const hours = Math.floor((now.getTime() - Date.parse(r.lastProofAt)) / 3_600_000);
  return hours < 24 ? `${hours} h` : `${Math.floor(hours / 24)} d`;
}

/** The table for a terminal `width` columns wide; the reason wraps inside its column. */
export function evidenceTable(records: readonly EvidenceRecord[], now: Date, width: number): string {
  if (records.length === 0) return "No evidence recorded yet: the guard has not judged an instance here.\n";
  const columns = COLUMNS.map((header) =>
    header === "why" ? { header, minWidth: 24 } : header === "attempts" ? { header, right: true } : { header },
  );
  return `${textTable(
    columns,
    ordered(records).map((r) => rowOf(r, now)),
    width,
  )}\n`;
}

/**
 * RFC 4180 CSV. A cell a spreadsheet would run as a formula (=, +, -, @ first: a reason quotes tag values) is
 * prefixed with a quote mark, so opening the file runs nothing.
 */
export function evidenceCsv(records: readonly EvidenceRecord[], now: Date): string {
  const cell = (value: string) => {
    const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
    return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
  };
  const header = [
    "account",
    "region",
    "instanceId",
    "verdict",
    "verdictAt",
    "lastProofAt",
    "proofAgeDays",
    "attempts",
    "closedAt",
    "eventId",
    "actor",
    "reason",
  ];
  const lines = ordered(records).map((r) =>
    [
      r.account,
      r.region,
      r.instanceId,
      r.verdict,
      r.verdictAt,
      r.lastProofAt ?? "",
      String(proofAgeDays(r, now) ?? ""),
      String(r.attempts),
      r.closedAt ?? "",
      r.event.eventId,
      r.event.actor,
      r.reason,
    ]
      .map(cell)
      .join(","),
  );
  return `${[header.join(","), ...lines].join("\r\n")}\r\n`;
}
