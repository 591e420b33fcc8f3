import type { AccountPosture } from "../shared/domain/account-posture.js";
import type { Exemption } from "../shared/domain/exemption.js";
import { textTable, wrapText } from "../shared/report/text-table.js";
import {
  AUDIT_SCHEMA,
  type AuditedInstance,
  type Readiness,
  type RegionAudit,
  type StartedExecution,
} from "./audit.js";

export interface RegionError {
  region: string;
  kind: string;
  code?: string;
  message: string;
}

export interface RegionExecutions {
  region: string;
  stateMachineArn: string;
  executions: StartedExecution[];
}

export interface AuditReport {
  generatedAt: Date;
  regions: RegionAudit[];
  errors: RegionError[];
  /** Undefined without --start. */
  started?: RegionExecutions[];
}

/** The `--json` document. Its shape is versioned by `schema`: add fields, never rename or remove them. */
export function auditJson(report: AuditReport) {
  return {
    schema: AUDIT_SCHEMA,
    generatedAt: report.generatedAt.toISOString(),
    regions: report.regions.map((r) => ({
      region: r.region,
      account: r.account,
      instances: r.instances,
      summary: r.summary,
    })),
    errors: report.errors,
    executions: (report.started ?? []).flatMap((s) =>
      s.executions.map((e) => ({ region: s.region, stateMachineArn: s.stateMachineArn, ...e })),
    ),
  };
}

const READINESS_LABELS: Record<Readiness, string> = {
  compliant: "compliant",
  ready: "READY",
  "imdsv1-in-use": "IMDSv1 IN USE",
  exempt: "exempt",
  "imds-disabled": "IMDS off",
  "shutting-down": "shutting down",
};

/**
 * The columns of the instance table. Name and exemption give up width when the terminal is narrow, and wrap; the
 * readiness, what the table is for, keeps its width at the end of the row.
 */
const COLUMNS = [
  { header: "instance" },
  { header: "name", minWidth: 6 },
  { header: "state" },
  // "tokens": HttpTokens, as the region line above the table names it; short, so 80 columns hold the row.
  { header: "tokens" },
  { header: "exempt", minWidth: 6 },
  // IMDSv1 calls (MetadataNoToken) in 24 hours / 7 days, as the summary below the table says; one column, so the row
  // fits 80.
  { header: "v1 24h/7d", right: true },
  { header: "readiness" },
];

/**
 * The readable report: per region, the account's defaults, one row per instance, and what to do next, in `width`
 * columns.
 */
export function auditText(
  report: AuditReport,
  options: { start: boolean; command: string; width: number; hint?: boolean },
): string {
  const out: string[] = [];
  const prose = (text: string, indent = "") =>
    wrapText(text, options.width - indent.length).map((l, i) => (i === 0 ? l : `${indent}${l}`));
  for (const r of report.regions) {
    out.push(...prose(`== ${r.region}: account default ${postureText(r.account)}`, "   "), "");
    if (r.instances.length === 0) {
      out.push("No instances (other than terminated ones).", "");
    } else {
      out.push(textTable(COLUMNS, r.instances.map(row), options.width), "");
    }
    out.push(...summaryText(r).flatMap((line) => prose(line, "    ")), "");
  }
  if (report.regions.length > 1) out.push(...totalText(report.regions).flatMap((line) => prose(line, "    ")), "");
  for (const s of report.started ?? []) {
    const instances = s.executions.reduce((n, e) => n + e.instances, 0);
    out.push(
      `Started ${plural(s.executions.length, "execution")} of ${s.stateMachineArn} for ${plural(instances, "instance")}:`,
    );
    for (const e of s.executions)
      out.push(`  ${e.executionArn}${e.alreadyStarted ? "  (already started earlier)" : ""}`);
    out.push("");
  }
  const ready = report.regions.reduce((n, r) => n + r.summary.readyToEnforce.length, 0);
  if (!options.start && ready > 0 && options.hint !== false) {
    out.push(
      ...prose(
        `Next: \`${options.command} --start\` sends the ${plural(ready, "ready instance")} through the guard's state machine (or pick some with --instances).`,
        "      ",
      ),
    );
  }
  return `${out.join("\n").trimEnd()}\n`;
}

/** A call count in at most 4 characters (10080 -> 10k): exact counts are in --output json and csv. */
function count(n: number): string {
  return n < 10_000 ? String(n) : n < 1_000_000 ? `${Math.round(n / 1000)}k` : `${Math.round(n / 1_000_000)}M`;
}

function postureText(p: AccountPosture): string {
  return `HttpTokens=${p.httpTokens}, HttpTokensEnforced=${p.httpTokensEnforced ? "enabled" : "disabled"}, managed by ${p.managedBy}`;
}

function row(i: AuditedInstance): string[] {
  return [
    i.instanceId,
    clip(i.name ?? "-", 24),
    i.state,
    i.httpTokens,
    clip(exemptionText(i.exemption), 160),
    `${count(i.imdsV1Calls.last24h)}/${count(i.imdsV1Calls.last7d)}`,
    READINESS_LABELS[i.readiness],
  ];
}

function exemptionText(e: Exemption): string {
  switch (e.status) {
    case "none":
      return "-";
    case "active":
      return `${e.until ? `until ${e.until}` : e.warning ? "until ? (not a date)" : "no end"}: ${e.reason}`;
    case "lapsed":
      return `LAPSED ${e.until}: ${e.reason}`;
  }
}

function summaryText(r: RegionAudit): string[] {
  const s = r.summary;
  return [
    `${r.region}: ${plural(s.instances, "instance")}: ${s.requireImdsV2} requiring IMDSv2, ${s.allowImdsV1} allowing IMDSv1` +
      `${s.imdsDisabled ? `, ${s.imdsDisabled} with IMDS off` : ""}; ${s.exempt} exempt, ${plural(s.lapsedExemptions, "lapsed exemption")}; ` +
      `IMDSv1 used by ${s.imdsV1Use24h} in the last 24 h and ${s.imdsV1Use7d} in the last 7 days.`,
    `  Ready to enforce (${s.readyToEnforce.length}): ${idList(s.readyToEnforce)}`,
    `  Needs work first, IMDSv1 in use (${s.needsWork.length}): ${idList(s.needsWork)}`,
  ];
}

function totalText(regions: readonly RegionAudit[]): string[] {
  const sum = (f: (r: RegionAudit) => number) => regions.reduce((n, r) => n + f(r), 0);
  return [
    `All ${plural(regions.length, "region")}: ${plural(
      sum((r) => r.summary.instances),
      "instance",
    )}, ` +
      `${sum((r) => r.summary.requireImdsV2)} requiring IMDSv2, ${sum((r) => r.summary.allowImdsV1)} allowing IMDSv1, ` +
      `${sum((r) => r.summary.exempt)} exempt, ${plural(
        sum((r) => r.summary.lapsedExemptions),
        "lapsed exemption",
      )}; ` +
      `${sum((r) => r.summary.readyToEnforce.length)} ready to enforce, ${sum((r) => r.summary.needsWork.length)} need work first.`,
  ];
}

function idList(ids: readonly string[]): string {
  return ids.length === 0 ? "none" : ids.join(", ");
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/**
 * Tag values are anyone's text: control characters (terminal escapes) are shown as `?` so a tag cannot repaint the
 * operator's terminal, and long values are cut to keep the table a table.
 */
function clip(text: string, max: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
  const safe = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return safe.length > max ? `${safe.slice(0, max - 1)}…` : safe;
}

/** One account of `--accounts`: its regions' audits, or why it (or some of its regions) could not be entered. */
export interface AccountAudit {
  account: string;
  name?: string;
  regions: RegionAudit[];
  errors: RegionError[];
}

export interface AccountsAuditReport {
  generatedAt: Date;
  roleName: string;
  accounts: AccountAudit[];
}

function accountLabel(a: { account: string; name?: string }): string {
  return a.name ? `${clip(a.name, 50)} (${a.account})` : a.account;
}

function accountTotals(a: AccountAudit) {
  const sum = (f: (r: RegionAudit) => number) => a.regions.reduce((n, r) => n + f(r), 0);
  return {
    regionsAudited: a.regions.length,
    regionsFailed: a.errors.length,
    instances: sum((r) => r.summary.instances),
    requireImdsV2: sum((r) => r.summary.requireImdsV2),
    allowImdsV1: sum((r) => r.summary.allowImdsV1),
    exempt: sum((r) => r.summary.exempt),
    readyToEnforce: sum((r) => r.summary.readyToEnforce.length),
    needsWork: sum((r) => r.summary.needsWork.length),
  };
}

/**
 * The `--accounts --json` document: the same schema, with `account` on every region and error, the accounts
 * themselves, and a summary across the organization. Fields are only ever added to `imdsv2-guard.audit.v1`.
 */
export function accountsAuditJson(report: AccountsAuditReport) {
  const totals = report.accounts.map((a) => ({
    account: a.account,
    ...(a.name ? { name: a.name } : {}),
    ...accountTotals(a),
  }));
  const sum = (f: (t: (typeof totals)[number]) => number) => totals.reduce((n, t) => n + f(t), 0);
  return {
    schema: AUDIT_SCHEMA,
    generatedAt: report.generatedAt.toISOString(),
    roleName: report.roleName,
    accounts: totals,
    regions: report.accounts.flatMap((a) =>
      a.regions.map((r) => ({
        accountId: a.account,
        ...(a.name ? { accountName: a.name } : {}),
        region: r.region,
        account: r.account,
        instances: r.instances,
        summary: r.summary,
      })),
    ),
    errors: report.accounts.flatMap((a) => a.errors.map((e) => ({ accountId: a.account, ...e }))),
    executions: [],
    summary: {
      accounts: totals.length,
      accountsEntered: totals.filter((t) => t.regionsAudited > 0).length,
      accountsNotEntered: totals.filter((t) => t.regionsAudited === 0).length,
      instances: sum((t) => t.instances),
      requireImdsV2: sum((t) => t.requireImdsV2),
      allowImdsV1: sum((t) => t.allowImdsV1),
      exempt: sum((t) => t.exempt),
      readyToEnforce: sum((t) => t.readyToEnforce),
      needsWork: sum((t) => t.needsWork),
    },
  };
}

const ACCOUNT_COLUMNS = [
  { header: "account", minWidth: 14 },
  { header: "regions", right: true },
  { header: "instances", right: true },
  { header: "IMDSv2", right: true },
  { header: "IMDSv1", right: true },
  { header: "ready", right: true },
  { header: "needs work", right: true },
  { header: "status", minWidth: 16 },
];

/** `--accounts`: per account, the regions as without it; then one row per account across the organization. */
export function accountsAuditText(report: AccountsAuditReport, options: { command: string; width: number }): string {
  const out: string[] = [];
  const prose = (text: string, indent = "") =>
    wrapText(text, options.width - indent.length).map((l, i) => (i === 0 ? l : `${indent}${l}`));
  for (const a of report.accounts) {
    out.push(...prose(`=== Account ${accountLabel(a)}, as ${report.roleName}`, "    "), "");
    if (a.regions.length > 0) {
      out.push(
        auditText(
          { generatedAt: report.generatedAt, regions: a.regions, errors: a.errors },
          { start: false, command: options.command, width: options.width, hint: false },
        ).trimEnd(),
        "",
      );
    }
    for (const e of a.errors) out.push(...prose(`${e.region}: not audited: ${e.message}`, "    "));
    if (a.errors.length > 0) out.push("");
  }
  const rows = report.accounts.map((a) => {
    const t = accountTotals(a);
    // The reasons are above, per region; the row names the codes.
    const codes = [...new Set(a.errors.map((e) => e.code ?? e.kind))].join(", ");
    const status =
      t.regionsFailed === 0
        ? "audited"
        : t.regionsAudited === 0
          ? `NOT ENTERED: ${codes}`
          : `${t.regionsFailed} region(s) not audited (${a.errors.map((e) => e.region).join(", ")}): ${codes}`;
    return [
      accountLabel(a),
      `${t.regionsAudited}/${t.regionsAudited + t.regionsFailed}`,
      String(t.instances),
      String(t.requireImdsV2),
      String(t.allowImdsV1),
      String(t.readyToEnforce),
      String(t.needsWork),
      clip(status, 400),
    ];
  });
  const json = accountsAuditJson(report).summary;
  out.push(
    ...prose(
      `== Organization: ${plural(json.accounts, "account")}, ${json.accountsEntered} entered; ${plural(json.instances, "instance")}: ${json.requireImdsV2} requiring IMDSv2, ${json.allowImdsV1} allowing IMDSv1, ${json.exempt} exempt; ${json.readyToEnforce} ready to enforce, ${json.needsWork} need work first.`,
      "   ",
    ),
    "",
    textTable(ACCOUNT_COLUMNS, rows, options.width),
    "",
    ...prose(
      'IMDSv2 / IMDSv1: instances requiring / allowing it. The guard\'s daily organization sweep sends the ready ones through enforcement (README "Organization mode").',
    ),
  );
  return `${out.join("\n").trimEnd()}\n`;
}
