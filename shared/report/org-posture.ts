import { needsAttention, needsDeclarativePolicy, type OrgSweepRow } from "../domain/org-posture.js";
import type { SnsMessage } from "./report.js";
import { markdownSafe, plainSafe, toAscii } from "./text-safety.js";
import { textTable } from "./text-table.js";

export const ORG_POSTURE_SCHEMA = "imdsv2-guard.org-posture.v1";

/** One organization sweep's report: every account × region it was asked to cover. */
export interface OrgPostureReport {
  sweepId: string;
  organizationId: string;
  generatedAt: string;
  regions: string[];
  rows: OrgSweepRow[];
}

/**
 * The organization's EC2 declarative policy that makes `required` the IMDS default of every account and region it
 * is attached to, and (second step) refuses launches that do not require IMDSv2. Shape from AWS Organizations,
 * "Declarative policy syntax and examples", Instance Metadata Defaults
 * (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_declarative_syntax.html):
 * `ec2_attributes.instance_metadata_defaults` with `http_tokens` (no_preference | required | optional) and
 * `http_tokens_enforced` (disabled | enabled), each set with `@@assign`. Accounts then read
 * `ManagedBy: declarative-policy` from GetInstanceMetadataDefaults and cannot change the defaults themselves.
 */
export const DECLARATIVE_POLICY = {
  ec2_attributes: {
    instance_metadata_defaults: {
      http_tokens: { "@@assign": "required" },
    },
  },
};

/** The second step, once no account shows instances still using IMDSv1: launches that allow it are refused. */
export const DECLARATIVE_POLICY_ENFORCED = {
  ec2_attributes: {
    instance_metadata_defaults: {
      http_tokens: { "@@assign": "required" },
      http_tokens_enforced: { "@@assign": "enabled" },
    },
  },
};

export interface OrgPostureTotals {
  accounts: number;
  rows: number;
  swept: number;
  /** Account/region pairs in drift (rows); `driftAccounts` counts the accounts. */
  drift: number;
  driftAccounts: number;
  errors: number;
  allowingImdsV1: number;
  sentToGuard: number;
  notRequiredByDefault: number;
  managedByPolicy: number;
}

/** The report's totals, as the subject, the summary line and the machine copy give them. */
export function orgPostureTotals(report: OrgPostureReport): OrgPostureTotals {
  const rows = report.rows;
  return {
    accounts: new Set(rows.map((r) => r.account)).size,
    rows: rows.length,
    swept: rows.filter((r) => r.status === "swept").length,
    drift: rows.filter((r) => r.status === "drift").length,
    driftAccounts: new Set(rows.filter((r) => r.status === "drift").map((r) => r.account)).size,
    errors: rows.filter((r) => r.status === "error").length,
    allowingImdsV1: rows.reduce((n, r) => n + (r.allowingImdsV1 ?? 0), 0),
    sentToGuard: rows.reduce((n, r) => n + (r.sentToGuard ?? 0), 0),
    notRequiredByDefault: rows.filter(needsDeclarativePolicy).length,
    managedByPolicy: rows.filter((r) => r.posture?.managedBy === "declarative-policy").length,
  };
}

const COLUMNS = [
  { header: "account", minWidth: 14 },
  { header: "region" },
  { header: "defaults" },
  { header: "enforced" },
  { header: "managed" },
  { header: "IMDSv1", right: true },
  { header: "sent", right: true },
  { header: "status", minWidth: 12 },
];

/** Rows in the text are capped so the email stays readable and inside SNS's size; the machine copy has them all. */
const MAX_TEXT_ROWS = 200;

function accountLabel(row: OrgSweepRow): string {
  return row.accountName ? `${row.accountName} (${row.account})` : row.account;
}

/** The short status of a row: what the table says; the reason, when there is one, follows the table. */
export function statusLabel(row: OrgSweepRow): string {
  switch (row.status) {
    case "swept":
      return needsDeclarativePolicy(row) ? "defaults allow IMDSv1" : "ok";
    case "drift":
      return `drift: ${row.drift ?? "unreachable"}`;
    case "error":
      return "error (next sweep retries)";
    case "outside-allow-list":
      return "skipped: allow-list";
  }
}

function statusText(row: OrgSweepRow): string {
  return row.reason ? `${statusLabel(row)} (${row.reason})` : statusLabel(row);
}

function tableRow(row: OrgSweepRow): string[] {
  const p = row.posture;
  return [
    plainSafe(accountLabel(row)),
    plainSafe(row.region),
    p ? plainSafe(p.httpTokens) : "-",
    p ? (p.httpTokensEnforced ? "on" : "off") : "-",
    p ? (p.managedBy === "declarative-policy" ? "policy" : plainSafe(p.managedBy)) : "-",
    row.allowingImdsV1 === undefined ? "-" : String(row.allowingImdsV1),
    row.sentToGuard === undefined ? "-" : String(row.sentToGuard),
    plainSafe(statusLabel(row)),
  ];
}

/** Rows that need someone first, then the rest, each group in account and region order. */
function ordered(rows: readonly OrgSweepRow[]): OrgSweepRow[] {
  const key = (r: OrgSweepRow) => `${needsAttention(r) ? 0 : 1}#${r.accountName ?? ""}#${r.account}#${r.region}`;
  return [...rows].sort((a, b) => key(a).localeCompare(key(b)));
}

/** Where the defaults do not require IMDSv2, as `account/region` labels. */
function policyTargets(report: OrgPostureReport): string[] {
  return report.rows.filter(needsDeclarativePolicy).map((r) => `${accountLabel(r)}/${r.region}`);
}

const POLICY_COMMANDS = [
  "aws organizations enable-policy-type --root-id <r-...> --policy-type DECLARATIVE_POLICY_EC2",
  `aws organizations create-policy --type DECLARATIVE_POLICY_EC2 --name imdsv2-required --description "IMDSv2 required by default" --content '${JSON.stringify(DECLARATIVE_POLICY)}'`,
  "aws organizations attach-policy --policy-id <p-...> --target-id <r-... or ou-...>",
];

/** The email text (SNS `default`): the table per account and region, the totals, and what to do. */
export function orgPostureText(report: OrgPostureReport, width = 96): string {
  const t = orgPostureTotals(report);
  const rows = ordered(report.rows);
  const shown = rows.slice(0, MAX_TEXT_ROWS);
  const lines = [
    `imdsv2-guard: organization posture from sweep ${plainSafe(report.sweepId)} of ${plainSafe(report.organizationId)} at ${plainSafe(report.generatedAt)}`,
    `${t.accounts} account(s) x ${report.regions.length} region(s) (${report.regions.map(plainSafe).join(", ")}): ${t.swept} pair(s) swept, ${t.drift} pair(s) in drift (${t.driftAccounts} account(s)), ${t.errors} error(s); ` +
      `${t.allowingImdsV1} instance(s) still allow IMDSv1, ${t.sentToGuard} sent through the guard (each gets its own report); ` +
      `defaults allow IMDSv1 in ${t.notRequiredByDefault}, managed by a declarative policy in ${t.managedByPolicy}.`,
    "",
    textTable(COLUMNS, shown.map(tableRow), width),
    ...(rows.length > shown.length
      ? [`... and ${rows.length - shown.length} more row(s), all fine or in the machine-readable copy (sqs/lambda).`]
      : []),
    "",
    "defaults, enforced, managed: the account's IMDS defaults in that region (GetInstanceMetadataDefaults: HttpTokens, HttpTokensEnforced, ManagedBy; policy = an AWS Organizations declarative policy). IMDSv1: instances allowing it (IMDS off not counted); sent: of those, the ones not exempt, sent through the guard.",
  ];
  const why = rows.filter((r) => r.reason !== undefined).slice(0, MAX_TEXT_ROWS);
  if (why.length > 0) {
    lines.push(
      "",
      "Why:",
      ...why.map((r) => `- ${plainSafe(accountLabel(r))}/${plainSafe(r.region)}: ${plainSafe(r.reason ?? "")}`),
    );
  }
  const drift = report.rows.filter((r) => r.status === "drift");
  if (drift.length > 0) {
    lines.push(
      "",
      `Drift in ${drift.length} account/region pair(s): deploy the spoke stacks there (README "Organization mode": spoke-account.yml once per account, spoke-region.yml per region), enable the region, or remove it from sweepRegions. Events from there are not guarded either.`,
    );
  }
  const targets = policyTargets(report);
  if (targets.length > 0) {
    lines.push(
      "",
      `Recommended: the organization's EC2 declarative policy, so that new launches require IMDSv2 by default in every account and region it covers; the defaults do not require it in ${targets.length} place(s): ${targets.slice(0, 30).map(plainSafe).join(", ")}${targets.length > 30 ? ", ..." : ""}.`,
      "From the management account or a delegated administrator for declarative policies:",
      ...POLICY_COMMANDS.map((c) => `  ${c}`),
      `Once no account shows instances still using IMDSv1, add "http_tokens_enforced": {"@@assign": "enabled"} to refuse launches that allow it: ${JSON.stringify(DECLARATIVE_POLICY_ENFORCED)}`,
      "The policy governs defaults and new launches only; the guard keeps covering existing instances.",
    );
  }
  return lines.join("\n");
}

/** The compact rows of the machine copy when the full one would not fit in SNS. */
function compactRows(rows: readonly OrgSweepRow[]) {
  return rows.map((r) => [r.account, r.region, r.status, r.allowingImdsV1 ?? null, r.posture?.httpTokens ?? null]);
}

const SNS_MESSAGE_BUDGET_BYTES = 250_000;

/**
 * The posture report as one SNS message: email text, an AWS Chatbot card, and the machine copy. Attributes:
 * `verdict` (`alert` when something needs acting on, else `pass`), `report` = `org-posture`, and `accounts`, every
 * account in the report (String.Array), so a subscription can filter for the report at all or for an account.
 */
export function orgPostureMessage(report: OrgPostureReport): SnsMessage {
  const t = orgPostureTotals(report);
  const attention = ordered(report.rows).filter(needsAttention);
  const verdict = attention.length > 0 ? "alert" : "pass";
  const text = orgPostureText(report);
  const targets = policyTargets(report);
  const chatbot = {
    version: "1.0",
    source: "custom",
    id: `${report.sweepId}-org-posture`,
    content: {
      textType: "client-markdown",
      title: `${verdict === "alert" ? "⚠️" : "✅"} imdsv2-guard: organization posture (${t.accounts} accounts, ${t.driftAccounts} with drift, ${t.allowingImdsV1} instances allowing IMDSv1)`,
      description: [
        `Sweep ${markdownSafe(report.sweepId)} of ${markdownSafe(report.organizationId)}: ${t.swept} of ${t.rows} account/region pairs swept; ${t.sentToGuard} instance(s) sent through the guard.`,
        ...attention
          .slice(0, 20)
          .map((r) => `• ${markdownSafe(accountLabel(r))}/${markdownSafe(r.region)}: ${markdownSafe(statusText(r))}`),
        ...(attention.length > 20 ? [`… and ${attention.length - 20} more (see the email).`] : []),
      ]
        .join("\n")
        .slice(0, 3800),
      nextSteps: [
        ...(t.drift > 0 ? ["Deploy the spoke stacks where the report says drift (README: Organization mode)."] : []),
        ...(targets.length > 0
          ? [
              `Attach the EC2 declarative policy: \`${JSON.stringify(DECLARATIVE_POLICY)}\` (${targets.length} place(s))`,
            ]
          : []),
      ],
      keywords: ["org-posture", report.organizationId],
    },
  };
  const full = { schema: ORG_POSTURE_SCHEMA, ...report, totals: t };
  let machine = JSON.stringify(full);
  const build = () => JSON.stringify({ default: text, https: JSON.stringify(chatbot), sqs: machine, lambda: machine });
  let message = build();
  if (Buffer.byteLength(message) > SNS_MESSAGE_BUDGET_BYTES) {
    machine = JSON.stringify({ ...full, rows: undefined, compactRows: compactRows(report.rows) });
    message = build();
  }
  const accounts = [...new Set(report.rows.map((r) => toAscii(r.account)))];
  return {
    Subject: toAscii(
      `[imdsv2-guard] ${verdict === "alert" ? "ALERT" : "PASS"}: organization posture - ${t.accounts} accounts, ${t.driftAccounts} with drift, ${t.allowingImdsV1} allowing IMDSv1`,
    ).slice(0, 99),
    MessageStructure: "json",
    Message: message,
    MessageAttributes: {
      verdict: { DataType: "String", StringValue: verdict },
      verdicts: { DataType: "String.Array", StringValue: JSON.stringify([verdict]) },
      report: { DataType: "String", StringValue: "org-posture" },
      accounts: { DataType: "String.Array", StringValue: JSON.stringify(accounts.length ? accounts : ["none"]) },
    },
  };
}
