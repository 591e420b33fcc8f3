import { parseArgs } from "node:util";
import { awsErrorCode } from "../shared/aws/errors.js";
import type { ExemptionKeys } from "../shared/domain/exemption.js";
import { INSTANCE_ID_PATTERN } from "../shared/domain/model.js";
import { outputWidth, wrapText } from "../shared/report/text-table.js";
import { mapLimit } from "../shared/runtime/map-limit.js";
import {
  type AuditProgress,
  auditIdAt,
  auditRegion,
  DEFAULT_EXEMPTION_KEYS,
  findGuardStateMachine,
  listEnabledRegions,
  type RegionAudit,
  startEnforcement,
} from "./audit.js";
import { type AwsAccess, sdkAccess } from "./aws-access.js";
import { accumulated, csv, type OutputFormat, outputFormat, single, useProfile, VERSION } from "./conventions.js";
import { describeFailure } from "./failure.js";
import {
  type AccountAudit,
  type AccountsAuditReport,
  type AuditReport,
  accountsAuditJson,
  accountsAuditText,
  auditJson,
  auditText,
  type RegionError,
  type RegionExecutions,
} from "./render.js";

/**
 * Who is running the audit: the installed command against AWS, or `npm start -- audit` against the simulated
 * account. Usage and hints name the command of the mode the user is in, so following one never changes the target.
 */
export interface AuditMode {
  /** How the user types this command: `imdsv2-guard audit`, `npm start -- audit`. */
  command: string;
  /** One sentence of what the command audits, for --help. */
  target: string;
  /** Options of this mode only, as --help lines (the simulation's --scenario). */
  extraOptions?: string;
  /** The only regions this account has, checked with the other options (the simulated account has one). */
  regions?: readonly string[];
  /** The role --accounts enters when --role-name is not given (default: the auditor role). */
  defaultRoleName?: string;
}

export const AWS_MODE: AuditMode = {
  command: "imdsv2-guard audit",
  target:
    "Uses your default AWS credentials (profile, environment, SSO...); the instance metadata service is not asked " +
    "for credentials unless AWS_EC2_METADATA_DISABLED=false.",
};

/** The --help text of this mode; every line fits 80 columns. */
export function usage(mode: AuditMode = AWS_MODE): string {
  const target = wrapText(mode.target, 80).join("\n");
  return `Usage: ${mode.command} [--regions r1,r2|all] [--output table|json|csv]
         [--fail-on optional] [--start [--instances i-a,i-b]]
         [--accounts all|ID,ID [--role-name NAME]] [--profile NAME]${mode.extraOptions ? "\n         [--scenario FILE]" : ""}

Lists every EC2 instance that is not terminated, with its IMDS settings, its
exemption and its IMDSv1 use (CloudWatch AWS/EC2 MetadataNoToken over 24 hours
and 7 days), and says which instances can be switched to IMDSv2 now and which
need work first. Read-only unless --start is given.
${target}

  --regions LIST, --region R  regions (repeat or comma-separate), or "all"
                              (every enabled region); default: the region
                              your AWS configuration names
  --output FORMAT             table (default), json, csv; --json = json
                              (docs/schemas/audit.schema.json)
  --fail-on optional          exit 3 when an instance still allows IMDSv1
  --start                     send the instances ready to enforce through the
                              deployed guard's state machine
  --instances LIST            with --start: these instances instead
  --state-machine-arn ARN     with --start: the state machine to use (repeat,
                              one per region); default: the only one named
                              imdsv2-guard-* in the region
  --accounts all|ID,ID        audit these accounts of the organization: assumes
                              --role-name in each with your credentials; "all"
                              lists them (Organizations ListAccounts). Not with
                              --start.
  --role-name NAME            with --accounts: the role to assume (default
                              ${mode.defaultRoleName ?? `${DEFAULT_ROLE_NAME}, read-only, created by`}${mode.defaultRoleName ? "" : "\n                              infra/spoke/spoke-account.yml"})
  --exempt-tag-key KEY        exemption tag (default imdsv2-guard:exempt)
  --exempt-until-tag-key KEY  exemption end-date tag
                              (default imdsv2-guard:exempt-until)
  --profile NAME              the AWS profile to use
  --version                   print the version
${mode.extraOptions ?? ""}  -h, --help                  this help

Exit status: 0 when every region was audited (and every start succeeded), 1
when something failed, 2 on bad usage, 3 with --fail-on optional when an
instance still allows IMDSv1.
`;
}

/** Regions are audited this many at a time: `--regions all` is about 17 regions of a few calls each. */
const REGION_CONCURRENCY = 4;

/** Accounts are entered this many at a time with --accounts (each then covers its regions one after another). */
const ACCOUNT_CONCURRENCY = 4;

/**
 * The role --accounts enters by default: the read-only auditor role infra/spoke/spoke-account.yml creates for people
 * (the spoke role trusts only the hub's functions, so no person can assume it).
 */
export const DEFAULT_ROLE_NAME = "imdsv2-guard-auditor";

const ACCOUNT_ID_PATTERN = /^\d{12}$/;
const ROLE_NAME_PATTERN = /^[\w+=,.@-]{1,64}$/;

const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const STATE_MACHINE_ARN_PATTERN = /^arn:aws[a-z-]*:states:([a-z0-9-]+):(\d{12}):stateMachine:[A-Za-z0-9_-]{1,80}$/;

export interface Terminal {
  write(text: string): unknown;
  isTTY?: boolean;
  /** A terminal's width (Node sets it on a TTY stream). */
  columns?: number;
}

export interface AuditIo {
  stdout: Terminal;
  stderr: Terminal;
  /** Columns the text report may use; default: COLUMNS, else the terminal's, else 100 (outputWidth). */
  width?: number;
}

export interface AuditHooks {
  /** Use this account instead of AWS (the simulation, tests). */
  access?: AwsAccess;
  /** Default: the installed command against AWS. */
  mode?: AuditMode;
}

interface AuditOptions {
  regions: "default" | "all" | string[];
  /** --accounts: other accounts of the organization, entered through `roleName`. */
  accounts?: "all" | string[];
  roleName: string;
  json: boolean;
  output: OutputFormat;
  /** --fail-on optional: exit 3 when an audited instance still allows IMDSv1. */
  failOnOptional: boolean;
  start: boolean;
  instances?: string[];
  stateMachineArns: Map<string, string>;
  exemptionKeys: ExemptionKeys;
}

class UsageError extends Error {
  override readonly name = "UsageError";
}

/** ListAccounts failed (--accounts all): the message says so, whatever the cause. */
class AccountListError extends Error {
  override readonly name = "AccountListError";
  constructor(cause: unknown) {
    super("ListAccounts failed", { cause });
  }
}

/** DescribeRegions failed: the message says so, whatever the cause. */
class RegionListError extends Error {
  override readonly name = "RegionListError";
  constructor(cause: unknown) {
    super("DescribeRegions failed", { cause });
  }
}

const PREFIX = "imdsv2-guard audit:";

/**
 * Runs `imdsv2-guard audit` with these arguments; returns the exit status. Never throws, never prints a stack.
 * Closes the access it is given, whatever happens.
 */
export async function runAudit(argv: readonly string[], io: AuditIo, hooks: AuditHooks = {}): Promise<number> {
  const mode = hooks.mode ?? AWS_MODE;
  let options: AuditOptions | "help" | "version";
  try {
    options = parseOptions(argv, mode);
  } catch (error) {
    hooks.access?.close();
    io.stderr.write(`${PREFIX} ${error instanceof Error ? error.message : String(error)}\n\n${usage(mode)}`);
    return 2;
  }
  if (options === "help" || options === "version") {
    hooks.access?.close();
    io.stdout.write(options === "help" ? usage(mode) : `${VERSION}\n`);
    return 0;
  }
  const access = hooks.access ?? sdkAccess();
  try {
    return await audit(options, access, io, mode);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`${PREFIX} ${error.message}\n`);
      return 2;
    }
    // Only a failure that concerns every region gets here: one line, and stop.
    if (process.env.IMDSV2_GUARD_DEBUG) io.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    const listing = error instanceof RegionListError || error instanceof AccountListError;
    const failure = describeFailure(listing ? error.cause : error);
    const context =
      error instanceof RegionListError
        ? "--regions all: listing the regions: "
        : error instanceof AccountListError
          ? "--accounts all: listing the organization's accounts (Organizations ListAccounts needs the management account, a delegated administrator or a delegation policy): "
          : "";
    io.stderr.write(`${PREFIX} ${context}${failure.message}\n`);
    return 1;
  } finally {
    access.close();
  }
}

async function audit(options: AuditOptions, access: AwsAccess, io: AuditIo, mode: AuditMode): Promise<number> {
  await access.checkCredentials();
  if (options.accounts) return auditAccounts(options, options.accounts, access, io, mode);
  const regions =
    options.regions === "all"
      ? await access.enabledRegions().catch((error: unknown) => {
          throw new RegionListError(error);
        })
      : options.regions === "default"
        ? [await access.defaultRegion()]
        : options.regions;
  const unaudited = [...options.stateMachineArns.keys()].filter((region) => !regions.includes(region));
  if (unaudited.length > 0) {
    throw new UsageError(
      `--state-machine-arn: ${unaudited.join(", ")} is not audited (add it to --regions, or drop that ARN)`,
    );
  }
  // Drawn on stderr, for a person watching: not into a pipe, a file, or a JSON consumer.
  const progress = new ProgressLine(io.stderr, io.stdout.isTTY === true && io.stderr.isTTY === true && !options.json);
  const errors: RegionError[] = [];
  const fail = (region: string, error: unknown): void => {
    const failure = describeFailure(error);
    if (failure.global) throw error;
    errors.push({
      region,
      kind: failure.kind,
      ...(failure.code ? { code: failure.code } : {}),
      message: failure.message,
    });
  };

  const audits = await mapLimit(regions, REGION_CONCURRENCY, async (region): Promise<RegionAudit | undefined> => {
    try {
      const onProgress = (p: AuditProgress) =>
        progress.show(
          p.phase === "instances"
            ? `scanning ${region}: ${p.instances} instances…`
            : `reading IMDSv1 metrics for ${p.instances} instances in ${region}…`,
        );
      return await auditRegion(access.clientsFor(region), { region, exemptionKeys: options.exemptionKeys, onProgress });
    } catch (error) {
      fail(region, error);
      return undefined;
    } finally {
      progress.clear();
    }
  });
  const audited = audits.filter((a): a is RegionAudit => a !== undefined);

  let started: RegionExecutions[] | undefined;
  if (options.start) {
    started = [];
    for (const { audit: r, instanceIds } of startTargets(options, audited, errors)) {
      if (instanceIds.length === 0) continue;
      const clients = access.clientsFor(r.region);
      let stateMachineArn: string;
      try {
        stateMachineArn =
          options.stateMachineArns.get(r.region) ??
          access.defaultStateMachineArn(r.region) ??
          (await findGuardStateMachine(clients.sfn, r.region));
      } catch (error) {
        fail(r.region, error);
        continue;
      }
      const outcome = await startEnforcement(clients, {
        stateMachineArn,
        region: r.region,
        auditId: auditIdAt(clients.now()),
        accountPosture: r.account,
        instanceIds,
        fleet: { allowingImdsV1: r.summary.allowImdsV1, exempt: r.summary.exempt },
      });
      if (outcome.executions.length > 0) {
        started.push({ region: r.region, stateMachineArn, executions: outcome.executions });
      }
      if (outcome.failure) fail(r.region, outcome.failure);
    }
  }

  // Errors in the order the regions were asked for, not the order they failed in.
  errors.sort((a, b) => regions.indexOf(a.region) - regions.indexOf(b.region));
  const report: AuditReport = { generatedAt: new Date(), regions: audited, errors, ...(started ? { started } : {}) };
  if (options.json) io.stdout.write(`${JSON.stringify(auditJson(report), null, 2)}\n`);
  else if (options.output === "csv") io.stdout.write(instancesCsv(audited.map((r) => ({ regionAudit: r }))));
  else if (audited.length > 0)
    io.stdout.write(
      auditText(report, {
        start: options.start,
        command: mode.command,
        width: io.width ?? outputWidth(process.env, io.stdout),
      }),
    );
  for (const e of errors) io.stderr.write(`${PREFIX} ${e.region}: ${e.message}\n`);
  if (errors.length > 0) return 1;
  return options.failOnOptional && allowsImdsV1(audited) ? 3 : 0;
}

/** --fail-on optional: some audited instance still allows IMDSv1 (exempt ones included: they do allow it). */
function allowsImdsV1(audits: readonly RegionAudit[]): boolean {
  return audits.some((r) => r.summary.allowImdsV1 > 0);
}

/** `--output csv`: one row per instance, for a spreadsheet. */
function instancesCsv(rows: readonly { account?: string; regionAudit: RegionAudit }[]): string {
  return csv(
    [
      "account",
      "region",
      "instanceId",
      "name",
      "state",
      "platform",
      "httpTokens",
      "httpEndpoint",
      "imdsV1Calls24h",
      "imdsV1Calls7d",
      "readiness",
    ],
    rows.flatMap(({ account, regionAudit: r }) =>
      r.instances.map((i) => [
        account ?? "",
        r.region,
        i.instanceId,
        i.name,
        i.state,
        i.platform,
        i.httpTokens,
        i.httpEndpoint,
        i.imdsV1Calls.last24h,
        i.imdsV1Calls.last7d,
        i.readiness,
      ]),
    ),
  );
}

/**
 * `--accounts`: each account entered through the role, each of its regions audited as without --accounts. An account
 * or region it cannot enter (no spoke, a trust that does not name the caller, a region not enabled) is a row that
 * says why; the others go on. Exit status 1 when any was not audited.
 */
async function auditAccounts(
  options: AuditOptions,
  wanted: "all" | string[],
  access: AwsAccess,
  io: AuditIo,
  mode: AuditMode,
): Promise<number> {
  const { listAccounts, clientsInAccount } = access;
  if (!listAccounts || !clientsInAccount) throw new UsageError("--accounts is not available here");
  const listed =
    wanted === "all"
      ? (
          await listAccounts().catch((error: unknown) => {
            throw new AccountListError(error);
          })
        ).filter((a) => a.status === undefined || a.status === "ACTIVE")
      : wanted.map((id) => ({ id }) as { id: string; name?: string });
  const defaultRegion = options.regions === "default" ? await access.defaultRegion() : undefined;
  const progress = new ProgressLine(io.stderr, io.stdout.isTTY === true && io.stderr.isTTY === true && !options.json);
  const accounts = await mapLimit(listed, ACCOUNT_CONCURRENCY, async (a): Promise<AccountAudit> => {
    const result: AccountAudit = { account: a.id, ...(a.name ? { name: a.name } : {}), regions: [], errors: [] };
    const fail = (region: string, error: unknown) =>
      result.errors.push({ region, ...accountFailure(error, a.id, region, options.roleName) });
    let regions: string[];
    if (options.regions === "all") {
      // The regions this account has enabled, asked in the caller's region with the account's own session.
      const home = await access.defaultRegion().catch(() => "us-east-1");
      try {
        regions = await listEnabledRegions((await clientsInAccount(a.id, options.roleName, home)).ec2);
      } catch (error) {
        fail(home, error);
        return result;
      }
    } else {
      regions = options.regions === "default" ? [defaultRegion ?? "us-east-1"] : options.regions;
    }
    for (const region of regions) {
      try {
        progress.show(`scanning ${a.id} ${region}…`);
        const clients = await clientsInAccount(a.id, options.roleName, region);
        result.regions.push(await auditRegion(clients, { region, exemptionKeys: options.exemptionKeys }));
      } catch (error) {
        fail(region, error);
      } finally {
        progress.clear();
      }
    }
    return result;
  });
  const report: AccountsAuditReport = { generatedAt: new Date(), roleName: options.roleName, accounts };
  if (options.json) io.stdout.write(`${JSON.stringify(accountsAuditJson(report), null, 2)}\n`);
  else if (options.output === "csv")
    io.stdout.write(
      instancesCsv(accounts.flatMap((a) => a.regions.map((r) => ({ account: a.account, regionAudit: r })))),
    );
  else
    io.stdout.write(
      accountsAuditText(report, { command: mode.command, width: io.width ?? outputWidth(process.env, io.stdout) }),
    );
  const errors = accounts.flatMap((a) => a.errors.map((e) => ({ account: a.account, ...e })));
  for (const e of errors) io.stderr.write(`${PREFIX} ${e.account} ${e.region}: ${e.message}\n`);
  if (errors.length > 0) return 1;
  return options.failOnOptional && allowsImdsV1(accounts.flatMap((a) => a.regions)) ? 3 : 0;
}

/** Why an account and region could not be audited, in one line: the role, the account, the region, the code. */
function accountFailure(
  error: unknown,
  account: string,
  region: string,
  roleName: string,
): Omit<RegionError, "region"> {
  if ((error as { name?: unknown } | null)?.name === "NonRetryableSpokeUnreachableError") {
    const code = awsErrorCode((error as { cause?: unknown }).cause) ?? "UnknownError";
    const why =
      code === "RegionDisabledException"
        ? `region ${region} is not enabled in account ${account}`
        : `is ${roleName} deployed there (infra/spoke/spoke-account.yml), and does its trust name you (AuditorAccountId, AuditorRolePattern)?`;
    return {
      kind: code === "RegionDisabledException" ? "region-not-enabled" : "cannot-assume-role",
      code,
      message: `cannot assume ${roleName} in ${account} (${region}): ${code}: ${why}`,
    };
  }
  const failure = describeFailure(error);
  return { kind: failure.kind, ...(failure.code ? { code: failure.code } : {}), message: failure.message };
}

/**
 * Which instances --start sends, per region: the ready ones, or those --instances names. When one of those is not
 * found in any audited region (a typo, another region, terminated), nothing is started: the list needs a look.
 */
function startTargets(
  options: AuditOptions,
  audited: readonly RegionAudit[],
  errors: RegionError[],
): { audit: RegionAudit; instanceIds: string[] }[] {
  if (!options.instances) return audited.map((r) => ({ audit: r, instanceIds: r.summary.readyToEnforce }));
  const wanted = new Set(options.instances);
  const targets = audited.map((r) => ({
    audit: r,
    instanceIds: r.instances.map((i) => i.instanceId).filter((id) => wanted.has(id)),
  }));
  const found = new Set(targets.flatMap((t) => t.instanceIds));
  const missing = options.instances.filter((id) => !found.has(id));
  if (missing.length > 0) {
    errors.push({
      region: audited.map((r) => r.region).join(",") || "-",
      kind: "not-found",
      message: `--instances: not found (or terminated) in the audited regions: ${missing.join(", ")}; nothing started`,
    });
    return [];
  }
  return targets;
}

function parseOptions(argv: readonly string[], mode: AuditMode): AuditOptions | "help" | "version" {
  let parsed: ReturnType<typeof parseRaw>;
  try {
    parsed = parseRaw(argv);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const v = parsed.values;
  if (v.help) return "help";
  if (v.version) return "version";
  let output: OutputFormat;
  try {
    output = outputFormat(v.output, v.json);
    if (v.profile !== undefined) useProfile(v.profile);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (v["fail-on"] !== undefined && v["fail-on"] !== "optional") {
    throw new UsageError(`--fail-on: ${v["fail-on"]} is not a condition (optional: an instance still allows IMDSv1)`);
  }
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument: ${parsed.positionals[0]}`);
  if (!v.start && (v.instances !== undefined || v["state-machine-arn"] !== undefined)) {
    throw new UsageError("--instances and --state-machine-arn only apply with --start");
  }
  let accounts: AuditOptions["accounts"];
  if (v.accounts !== undefined) {
    const list = splitList(v.accounts);
    if (list.length === 1 && list[0] === "all") accounts = "all";
    else {
      const bad = list.filter((a) => !ACCOUNT_ID_PATTERN.test(a));
      if (list.length === 0 || bad.length > 0) {
        throw new UsageError(`--accounts: not an account id: ${bad.join(", ") || "(empty)"} (12 digits, or all)`);
      }
      accounts = [...new Set(list)];
    }
    if (v.start) {
      throw new UsageError(
        "--start does not apply with --accounts: in organization mode the hub's daily sweep sends every account's ready instances through the guard",
      );
    }
  }
  if (v["role-name"] !== undefined && accounts === undefined) {
    throw new UsageError("--role-name only applies with --accounts");
  }
  const roleName = v["role-name"] ?? mode.defaultRoleName ?? DEFAULT_ROLE_NAME;
  if (!ROLE_NAME_PATTERN.test(roleName)) throw new UsageError(`--role-name: not a role name: ${roleName}`);

  let regions: AuditOptions["regions"] = "default";
  if (v.regions !== undefined) {
    const list = splitList(v.regions);
    if (list.length === 1 && list[0] === "all") regions = "all";
    else {
      const bad = list.filter((r) => !REGION_PATTERN.test(r));
      if (list.length === 0 || bad.length > 0) {
        throw new UsageError(`--regions: not a region name: ${bad.join(", ") || "(empty)"} (e.g. eu-west-1, or all)`);
      }
      regions = [...new Set(list)];
    }
  }
  const only = mode.regions;
  if (only && Array.isArray(regions) && regions.some((r) => !only.includes(r))) {
    throw new UsageError(`--regions: this account has only ${only.join(", ")}`);
  }

  let instances: string[] | undefined;
  if (v.instances !== undefined) {
    instances = [...new Set(splitList(v.instances))];
    const bad = instances.filter((id) => !INSTANCE_ID_PATTERN.test(id));
    if (instances.length === 0 || bad.length > 0) {
      throw new UsageError(`--instances: not an instance id: ${bad.join(", ") || "(empty)"}`);
    }
  }

  const stateMachineArns = new Map<string, string>();
  for (const arn of (v["state-machine-arn"] ?? []).flatMap(splitList)) {
    const region = STATE_MACHINE_ARN_PATTERN.exec(arn)?.[1];
    if (region === undefined) {
      throw new UsageError(`--state-machine-arn: not a state machine ARN: ${arn}`);
    }
    if (stateMachineArns.has(region)) throw new UsageError(`--state-machine-arn: two state machines in ${region}`);
    stateMachineArns.set(region, arn);
  }

  const exemptionKeys = {
    exemptTagKey: v["exempt-tag-key"] ?? DEFAULT_EXEMPTION_KEYS.exemptTagKey,
    exemptUntilTagKey: v["exempt-until-tag-key"] ?? DEFAULT_EXEMPTION_KEYS.exemptUntilTagKey,
  };
  for (const [flag, key] of [
    ["--exempt-tag-key", exemptionKeys.exemptTagKey],
    ["--exempt-until-tag-key", exemptionKeys.exemptUntilTagKey],
  ] as const) {
    if (key.length === 0 || key.length > 128) throw new UsageError(`${flag}: a tag key has 1 to 128 characters`);
  }

  return {
    regions,
    ...(accounts ? { accounts } : {}),
    roleName,
    json: output === "json",
    output,
    failOnOptional: v["fail-on"] === "optional",
    start: v.start,
    ...(instances ? { instances } : {}),
    stateMachineArns,
    exemptionKeys,
  };
}

function parseRaw(argv: readonly string[]) {
  // Every string flag is `multiple`, so a repeated one is seen: lists accumulate, the others are refused.
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      regions: { type: "string", multiple: true },
      region: { type: "string", multiple: true },
      json: { type: "boolean", default: false },
      output: { type: "string", multiple: true },
      "fail-on": { type: "string", multiple: true },
      profile: { type: "string", multiple: true },
      version: { type: "boolean", default: false },
      start: { type: "boolean", default: false },
      instances: { type: "string", multiple: true },
      "state-machine-arn": { type: "string", multiple: true },
      "exempt-tag-key": { type: "string", multiple: true },
      "exempt-until-tag-key": { type: "string", multiple: true },
      accounts: { type: "string", multiple: true },
      "role-name": { type: "string", multiple: true },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  const v = values as Record<string, unknown>;
  const regionLists = [accumulated(v, "regions"), accumulated(v, "region")].filter((x) => x !== undefined);
  return {
    positionals,
    values: {
      help: values.help,
      version: values.version,
      json: values.json,
      start: values.start,
      regions: regionLists.length > 0 ? regionLists.join(",") : undefined,
      instances: accumulated(v, "instances"),
      accounts: accumulated(v, "accounts"),
      "state-machine-arn": values["state-machine-arn"],
      output: single(v, "output"),
      "fail-on": single(v, "fail-on"),
      profile: single(v, "profile"),
      "exempt-tag-key": single(v, "exempt-tag-key"),
      "exempt-until-tag-key": single(v, "exempt-until-tag-key"),
      "role-name": single(v, "role-name"),
    },
  };
}

function splitList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** One self-overwriting status line on stderr, only for a person at a terminal. */
class ProgressLine {
  private shown = false;
  constructor(
    private readonly stream: Terminal,
    private readonly enabled: boolean,
  ) {}
  show(text: string): void {
    if (!this.enabled) return;
    this.stream.write(`\r\u001b[2K${text}`);
    this.shown = true;
  }
  clear(): void {
    if (!this.shown) return;
    this.stream.write("\r\u001b[2K");
    this.shown = false;
  }
}
