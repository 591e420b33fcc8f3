import type { AccountPosture } from "./account-posture.js";

/**
 * The organization sweep's view of one account in one region: what it read there and what it started, or why it
 * could not look. One row per account × region; the posture report is these rows.
 */
export interface OrgSweepRow {
  account: string;
  accountName?: string;
  region: string;
  /**
   * - `swept`: the guard entered the account and region, read the defaults and the instances;
   * - `drift`: it could not enter (no spoke, region not enabled, the spoke role lacks a permission): the
   *   organization and the guard's deployment disagree, and someone must act;
   * - `error`: something that may pass (throttling, a 5xx); the next sweep tries again;
   * - `outside-allow-list`: the hub's allow-list excludes the account, so the guard did not look.
   */
  status: "swept" | "drift" | "error" | "outside-allow-list";
  /** Set when `status` is not `swept`: what failed, as the API said it. */
  reason?: string;
  /** With `drift`: what is missing, in the words the report uses. */
  drift?: DriftKind;
  posture?: AccountPosture;
  /** Instances EC2 reports with HttpTokens=optional (not terminated), IMDS off excluded. */
  allowingImdsV1?: number;
  exempt?: number;
  /** Of the instances allowing IMDSv1, those sent through the state machine (not exempt). */
  sentToGuard?: number;
  executions?: { name: string; instances: number; alreadyStarted: boolean }[];
}

export type DriftKind = "spoke missing" | "region not enabled" | "spoke role lacks a permission";

/** The codes that mean "the spoke role is not there or not for us": the spoke stack is missing in that account. */
const SPOKE_MISSING = new Set(["AccessDenied", "AccessDeniedException", "NoSuchEntity"]);
/** The codes of a region the account has not enabled (opt-in regions), from STS or from EC2. */
const REGION_NOT_ENABLED = new Set(["RegionDisabledException", "OptInRequired", "AuthFailure", "InvalidClientTokenId"]);
/** The spoke role was assumed, but it may not make a call the sweep needs (an older or read-only spoke, an SCP). */
const NOT_PERMITTED = new Set(["UnauthorizedOperation", "AccessDeniedException", "AccessDenied"]);

/**
 * What a failure to enter an account and region means for the report. `stage` says whether AssumeRole failed
 * (no session at all) or a call made with the session did.
 */
export function unreachableRow(
  stage: "assume-role" | "call",
  code: string | undefined,
  message: string,
): Pick<OrgSweepRow, "status" | "reason" | "drift"> {
  const known = code ?? "UnknownError";
  if (stage === "assume-role" && SPOKE_MISSING.has(known)) {
    return { status: "drift", drift: "spoke missing", reason: message };
  }
  if (REGION_NOT_ENABLED.has(known)) return { status: "drift", drift: "region not enabled", reason: message };
  if (stage === "call" && NOT_PERMITTED.has(known)) {
    return { status: "drift", drift: "spoke role lacks a permission", reason: message };
  }
  return { status: "error", reason: message };
}

/**
 * Where the organization's EC2 declarative policy would change something: the defaults do not require IMDSv2. A
 * policy that manages the defaults but sets them to something else is named too: it is the policy to change.
 */
export function needsDeclarativePolicy(row: OrgSweepRow): boolean {
  return row.status === "swept" && row.posture !== undefined && row.posture.httpTokens !== "required";
}

/** A row someone must look at: drift, an error, defaults not requiring IMDSv2, or instances still allowing IMDSv1. */
export function needsAttention(row: OrgSweepRow): boolean {
  return (
    row.status === "drift" || row.status === "error" || needsDeclarativePolicy(row) || (row.allowingImdsV1 ?? 0) > 0
  );
}

/**
 * Execution names of the organization sweep: unique per account, region and sweep window, so a retried sweep (the
 * same scheduled time) asks for the same names and StartExecution refuses to start the work twice. Step Functions
 * allows 80 characters of [A-Za-z0-9_-]; "sweep-YYYYMMDDHHMM-<12 digits>-<region>-<n>" stays well inside.
 */
export function orgSweepExecutionName(sweepId: string, account: string, region: string, n: number): string {
  return `${sweepId}-${account}-${region}-${n}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 80);
}
