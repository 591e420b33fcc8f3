import { parseArgs } from "node:util";
import { EC2Client } from "@aws-sdk/client-ec2";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { SSMClient } from "@aws-sdk/client-ssm";
import { STSClient } from "@aws-sdk/client-sts";
import type { AuditIo, Terminal } from "../audit/command.js";
import {
  accumulated,
  csv,
  type OutputFormat,
  outputFormat,
  printable,
  single,
  useProfile,
  useRegion,
  VERSION,
} from "../audit/conventions.js";
import { describeFailure } from "../audit/failure.js";
import { organizationsDirectory } from "../shared/aws/organization-directory.js";
import { spokeCredentialCache } from "../shared/aws/spoke-credentials.js";
import { outputWidth, textTable, wrapText } from "../shared/report/text-table.js";
import {
  type ControlPlaneClients,
  controlPlaneClients,
  type RegionClients,
  regionClientsWith,
  sdkDoctorReaders,
  sdkSelftestActions,
  sdkTrailAndStackReaders,
  spokeThrough,
} from "./aws-readers.js";
import { type DoctorReaders, type DoctorReport, runDoctor } from "./doctor.js";
import { runSelftest, type SelftestActions, type SelftestClock, type SelftestReport } from "./selftest.js";

/** The role `--accounts` enters by default: the read-only one a person may assume (infra/spoke/spoke-account.yml). */
export const AUDITOR_ROLE_NAME = "imdsv2-guard-auditor";

/** How the user types the commands: `imdsv2-guard doctor`, or `npm start -- doctor` on the simulation. */
export interface OpsMode {
  command: string;
  /** The regions to check when none is given. */
  defaultRegion?: string;
}

export interface DoctorHooks {
  mode?: OpsMode;
  /** The simulated account's readers; default: AWS through the SDK. */
  readers?: (regionsOfAccounts: boolean) => DoctorReaders;
  close?: () => void;
}

export interface SelftestHooks {
  mode?: OpsMode;
  actions?: (region: string) => SelftestActions;
  clock?: SelftestClock;
  close?: () => void;
}

const COMMON_OPTIONS = {
  region: { type: "string", multiple: true },
  regions: { type: "string", multiple: true },
  profile: { type: "string", multiple: true },
  stage: { type: "string", multiple: true },
  output: { type: "string", multiple: true },
  json: { type: "boolean", default: false },
  version: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

const CLIENT_SETTINGS = {
  maxAttempts: 3,
  retryMode: "standard",
  requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
} as const;

export function doctorUsage(mode: OpsMode = { command: "imdsv2-guard doctor" }): string {
  return `Usage: ${mode.command} [--region R]... [--stage S] [--accounts ID,...]
         [--role-name NAME] [--output table|json|csv] [--profile NAME]

Read-only pre-flight of the guard in one account, or with --accounts in the
organization's member accounts. It checks: a trail logging management events;
SSM coverage (instances that will end unverified); the stack, its parameters
and alarms; Chatbot when Slack is set; Organizations access for the hub;
spokes and their probe documents; the account's IMDS defaults; and whether
executions are running (run it before an upgrade or uninstall).

  --region R, --regions LIST  the regions to check (repeat or comma-separate);
                              default: your configured region
  --stage S                   the stage deployed (default dev)
  --accounts ID,...           check these member accounts' spokes too
  --role-name NAME            the role --accounts enters
                              (default ${AUDITOR_ROLE_NAME})
  --output FORMAT             table (default), json, csv; --json = json
  --profile NAME              the AWS profile to use
  --version                   print the version
  -h, --help                  this help

Exit status: 0 when every check holds, 3 when something needs attention,
1 when it could not run, 2 on bad usage. Each problem comes with the command
that fixes it. JSON: docs/schemas/doctor.schema.json.
`;
}

export function selftestUsage(mode: OpsMode = { command: "imdsv2-guard selftest" }): string {
  return `Usage: ${mode.command} [--region R] [--stage S] [--subnet-id ID]
         [--instance-profile NAME] [--keep] [--output table|json|csv]

After a deploy: launches one small instance that allows IMDSv1, waits for the
guard's verdict and expects pass. Prints launch, HttpTokens=required applied,
and the verdict, with times. It always terminates the instance (--keep leaves
it). The probe needs SSM: give --instance-profile with
AmazonSSMManagedInstanceCore, or turn on Default Host Management.

  --region R                  where to launch (default: your configured region)
  --stage S                   the stage deployed (default dev)
  --subnet-id ID              launch here (default: the default VPC)
  --instance-profile NAME     the instance profile to launch with
  --instance-type TYPE        default t4g.nano
  --timeout-seconds N         give up after N s (default 1500)
  --keep                      leave the instance running
  --output FORMAT             table (default), json, csv; --json = json
  --profile NAME              the AWS profile to use
  --version                   print the version
  -h, --help                  this help

Exit status: 0 on pass, 3 on any other verdict or none in time, 1 when it could
not run, 2 on bad usage. JSON: docs/schemas/selftest.schema.json.
`;
}

/** Runs `imdsv2-guard doctor`; returns the exit status; never throws, never prints a stack. */
export async function runDoctorCommand(argv: readonly string[], io: AuditIo, hooks: DoctorHooks = {}): Promise<number> {
  const mode = hooks.mode ?? { command: "imdsv2-guard doctor" };
  const prefix = "imdsv2-guard doctor:";
  let parsed: ReturnType<typeof parseDoctor>;
  try {
    parsed = parseDoctor(argv);
  } catch (error) {
    hooks.close?.();
    io.stderr.write(`${prefix} ${printable(errorMessage(error))}\n\n${doctorUsage(mode)}`);
    return 2;
  }
  if (parsed === "help" || parsed === "version") {
    hooks.close?.();
    io.stdout.write(parsed === "help" ? doctorUsage(mode) : `${VERSION}\n`);
    return 0;
  }
  const progress = progressLine(io, parsed.output);
  let access: { readers: DoctorReaders; close(): void } | undefined;
  try {
    const regions = parsed.regions ?? [mode.defaultRegion ?? (await configuredRegion())];
    access = hooks.readers
      ? { readers: hooks.readers(parsed.accounts !== undefined), close: () => hooks.close?.() }
      : awsDoctorAccess();
    const report = await runDoctor(access.readers, {
      regions,
      stage: parsed.stage,
      stackName: `imdsv2-guard-${parsed.stage}`,
      ...(parsed.accounts ? { accounts: parsed.accounts } : {}),
      roleName: parsed.roleName,
      expectedVersion: VERSION,
      now: () => new Date(),
      onProgress: (what) => progress.show(`doctor: ${what}…`),
    });
    progress.clear();
    io.stdout.write(doctorOutput(report, parsed.output, io.width ?? outputWidth(process.env, io.stdout)));
    return report.attention > 0 ? 3 : 0;
  } catch (error) {
    progress.clear();
    io.stderr.write(`${prefix} ${printable(describeFailure(error).message)}\n`);
    return 1;
  } finally {
    access?.close();
  }
}

/** Runs `imdsv2-guard selftest`; returns the exit status; never throws, never prints a stack. */
export async function runSelftestCommand(
  argv: readonly string[],
  io: AuditIo,
  hooks: SelftestHooks = {},
): Promise<number> {
  const mode = hooks.mode ?? { command: "imdsv2-guard selftest" };
  const prefix = "imdsv2-guard selftest:";
  let parsed: ReturnType<typeof parseSelftest>;
  try {
    parsed = parseSelftest(argv);
  } catch (error) {
    hooks.close?.();
    io.stderr.write(`${prefix} ${printable(errorMessage(error))}\n\n${selftestUsage(mode)}`);
    return 2;
  }
  if (parsed === "help" || parsed === "version") {
    hooks.close?.();
    io.stdout.write(parsed === "help" ? selftestUsage(mode) : `${VERSION}\n`);
    return 0;
  }
  const clients: RegionClients[] = [];
  try {
    const region = parsed.region ?? mode.defaultRegion ?? (await configuredRegion());
    const actions = hooks.actions
      ? hooks.actions(region)
      : sdkSelftestActions(track(clients, regionClients(region)), {
          ...(parsed.subnetId ? { subnetId: parsed.subnetId } : {}),
          ...(parsed.instanceProfile ? { instanceProfile: parsed.instanceProfile } : {}),
          instanceType: parsed.instanceType,
          stackName: `imdsv2-guard-${parsed.stage}`,
        });
    const clock = hooks.clock ?? {
      now: () => new Date(),
      sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
    };
    // The steps go to stderr as they happen (a person waits minutes); stdout gets the report alone.
    const report = await runSelftest(actions, clock, {
      timeoutSeconds: parsed.timeoutSeconds,
      pollSeconds: 10,
      keep: parsed.keep,
      onStep: (s) => {
        const line = printable(`selftest: +${s.atSeconds}s ${s.step}: ${s.detail}`);
        io.stderr.write(`${wrapIndented(line, io.width ?? outputWidth(process.env, io.stderr), "  ").join("\n")}\n`);
      },
    });
    io.stdout.write(selftestOutput(report, parsed.output, io.width ?? outputWidth(process.env, io.stdout)));
    return report.outcome === "pass" ? 0 : 3;
  } catch (error) {
    io.stderr.write(`${prefix} ${printable(describeFailure(error).message)}\n`);
    return 1;
  } finally {
    for (const c of clients) for (const client of Object.values(c)) client.destroy();
    hooks.close?.();
  }
}

type OptionSpec = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>;

function parseCommon(argv: readonly string[], extra: OptionSpec) {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...COMMON_OPTIONS, ...extra },
    strict: true,
    allowPositionals: true,
  });
  const v = values as Record<string, unknown>;
  if (positionals.length > 0) throw new Error(`unexpected argument: ${positionals[0]}`);
  if (v.help) return "help" as const;
  if (v.version) return "version" as const;
  const profile = single(v, "profile");
  if (profile !== undefined) useProfile(profile);
  const regionList = [accumulated(v, "region"), accumulated(v, "regions")].filter((x) => x !== undefined).join(",");
  const regions = regionList
    ? [
        ...new Set(
          regionList
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
        ),
      ]
    : undefined;
  for (const r of regions ?? []) useRegion(r, {});
  const stage = single(v, "stage") ?? "dev";
  if (!/^[a-zA-Z0-9-]{1,32}$/.test(stage)) throw new Error(`--stage: not a stage name: ${stage}`);
  return { v, regions, stage, output: outputFormat(single(v, "output"), v.json === true) };
}

function parseDoctor(argv: readonly string[]) {
  const common = parseCommon(argv, {
    accounts: { type: "string", multiple: true },
    "role-name": { type: "string", multiple: true },
  });
  if (common === "help" || common === "version") return common;
  const { v } = common;
  const accountList = accumulated(v, "accounts");
  let accounts: string[] | undefined;
  if (accountList !== undefined) {
    accounts = [
      ...new Set(
        accountList
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    ];
    const bad = accounts.filter((a) => !/^\d{12}$/.test(a));
    if (accounts.length === 0 || bad.length > 0) {
      throw new Error(`--accounts: not an account id: ${bad.join(", ") || "(empty)"} (12 digits)`);
    }
  }
  const roleName = single(v, "role-name") ?? AUDITOR_ROLE_NAME;
  if (!/^[\w+=,.@-]{1,64}$/.test(roleName)) throw new Error(`--role-name: not a role name: ${roleName}`);
  return { ...common, accounts, roleName };
}

function parseSelftest(argv: readonly string[]) {
  const common = parseCommon(argv, {
    "subnet-id": { type: "string", multiple: true },
    "instance-profile": { type: "string", multiple: true },
    "instance-type": { type: "string", multiple: true },
    "timeout-seconds": { type: "string", multiple: true },
    keep: { type: "boolean", default: false },
  });
  if (common === "help" || common === "version") return common;
  const { v } = common;
  if ((common.regions?.length ?? 0) > 1) throw new Error("--region: the selftest launches in one region");
  const subnetId = single(v, "subnet-id");
  if (subnetId !== undefined && !/^subnet-[0-9a-f]{8,17}$/.test(subnetId)) {
    throw new Error(`--subnet-id: not a subnet id: ${subnetId}`);
  }
  const timeout = Number(single(v, "timeout-seconds") ?? "1500");
  if (!Number.isInteger(timeout) || timeout < 60 || timeout > 7200) {
    throw new Error("--timeout-seconds: a whole number of seconds from 60 to 7200");
  }
  return {
    ...common,
    region: common.regions?.[0],
    subnetId,
    instanceProfile: single(v, "instance-profile"),
    instanceType: single(v, "instance-type") ?? "t4g.nano",
    timeoutSeconds: timeout,
    keep: v.keep === true,
  };
}

export function doctorOutput(report: DoctorReport, format: OutputFormat, width: number): string {
  if (format === "json") return `${JSON.stringify(report, null, 2)}\n`;
  if (format === "csv") {
    return csv(
      ["check", "status", "account", "region", "detail", "fix"],
      report.checks.map((c) => [c.check, c.status, c.account, c.region, c.detail, c.fix]),
    );
  }
  const mark = { ok: "[ok]", attention: "[!!]", "not-checked": "[??]" } as const;
  const out: string[] = [];
  for (const c of report.checks) {
    const where = [c.account, c.region].filter(Boolean).join(" ");
    out.push(...wrapIndented(`${mark[c.status]} ${c.check}${where ? ` (${where})` : ""}: ${c.detail}`, width, "     "));
    if (c.fix && c.status !== "ok") out.push(...commandLines(c.fix, width, "     "));
  }
  const notChecked = report.checks.filter((c) => c.status === "not-checked").length;
  out.push(
    "",
    ...wrapText(
      report.attention === 0
        ? `All ${report.checks.length - notChecked} checks hold${notChecked ? `; ${notChecked} not checked (see [??])` : ""}.`
        : `${report.attention} of ${report.checks.length} checks need attention: run the command under each [!!].`,
      width,
    ),
  );
  return `${out.map(printable).join("\n")}\n`;
}

export function selftestOutput(report: SelftestReport, format: OutputFormat, width: number): string {
  if (format === "json") return `${JSON.stringify(report, null, 2)}\n`;
  if (format === "csv") {
    return csv(
      ["step", "atSeconds", "detail"],
      report.steps.map((s) => [s.step, s.atSeconds, s.detail]),
    );
  }
  const table = textTable(
    [{ header: "step" }, { header: "at", right: true }, { header: "detail", minWidth: 20 }],
    report.steps.map((s) => [s.step, `+${s.atSeconds}s`, printable(s.detail)]),
    width,
  );
  const verdict =
    report.outcome === "pass"
      ? `selftest passed: ${report.instanceId ?? "the instance"} got pass.`
      : `selftest FAILED: ${report.verdict ? `verdict ${report.verdict}, expected pass` : "no verdict"}${report.terminated ? "" : report.instanceId ? `; ${report.instanceId} is still running` : ""}.`;
  return `${table}\n\n${wrapText(printable(verdict), width).join("\n")}\n`;
}

/**
 * A command to copy is never broken mid-word: it wraps between its words, each broken line ending in ` \\` so the
 * shell reads it as one; a note after two spaces ("cmd  (or ...)") is prose on its own lines.
 */
export function commandLines(fix: string, width: number, indent = ""): string[] {
  const [command = "", ...notes] = fix.split(/ {2}/);
  const lines: string[] = [];
  let line = `${indent}$`;
  for (const word of command.split(" ").filter(Boolean)) {
    if (line.length + 1 + word.length + 2 > width && line.trim() !== "$") {
      lines.push(`${line} \\`);
      line = `${indent}    ${word}`;
    } else line = `${line} ${word}`;
  }
  lines.push(line);
  for (const note of notes) lines.push(...wrapIndented(`${indent}${note}`, width, indent));
  return lines;
}

function wrapIndented(text: string, width: number, indent: string): string[] {
  const [first = "", ...rest] = wrapText(text, width);
  if (rest.length === 0) return [first];
  return [first, ...wrapText(rest.join(" "), width - indent.length).map((l) => `${indent}${l}`)];
}

function regionClients(region: string): RegionClients {
  return regionClientsWith({ ...CLIENT_SETTINGS, region });
}

function track<T>(list: T[], item: T): T {
  list.push(item);
  return item;
}

/** The doctor's readers against AWS, with the caller's credentials; spokes through the auditor role. */
function awsDoctorAccess(): { readers: DoctorReaders; close(): void } {
  const sets = new Map<string, RegionClients>();
  const destroyable: { destroy(): void }[] = [];
  const clientsFor = (region: string) => {
    let set = sets.get(region);
    if (!set) {
      set = regionClients(region);
      sets.set(region, set);
    }
    return set;
  };
  const stsFor = (region: string) => {
    const client = new STSClient({ ...CLIENT_SETTINGS, region, useGlobalEndpoint: false });
    destroyable.push(client);
    return client;
  };
  const controlPlane = new Map<string, ControlPlaneClients>();
  const controlPlaneFor = (region: string) => {
    let set = controlPlane.get(region);
    if (!set) {
      set = controlPlaneClients({ ...CLIENT_SETTINGS, region });
      controlPlane.set(region, set);
      destroyable.push(set.cloudtrail, set.cloudformation);
    }
    return set;
  };
  const caches = new Map<string, ReturnType<typeof spokeCredentialCache>>();
  const readers = sdkDoctorReaders(clientsFor, {
    ...sdkTrailAndStackReaders(controlPlaneFor),
    organizationAccounts: async () => {
      const org = new OrganizationsClient({ ...CLIENT_SETTINGS, region: "us-east-1" });
      destroyable.push(org);
      return (await organizationsDirectory(org).accounts()).map((a) => a.id);
    },
    spoke: (account, region, roleName) =>
      spokeThrough(async () => {
        let cache = caches.get(roleName);
        if (!cache) {
          cache = spokeCredentialCache({ roleName, stsFor });
          caches.set(roleName, cache);
        }
        const credentials = await cache.credentialsFor({ account, region, eventId: "doctor" });
        const ssm = new SSMClient({ ...CLIENT_SETTINGS, region, credentials });
        destroyable.push(ssm);
        return ssm;
      }),
  });
  return {
    readers,
    close: () => {
      for (const set of sets.values()) for (const c of Object.values(set)) c.destroy();
      for (const c of destroyable) c.destroy();
    },
  };
}

async function configuredRegion(): Promise<string> {
  const probe = new EC2Client({});
  try {
    return await probe.config.region();
  } finally {
    probe.destroy();
  }
}

/** Drawn on stderr while a run takes time, only when both streams are a terminal and the output is for a person. */
function progressLine(io: { stdout: Terminal; stderr: Terminal }, format: OutputFormat) {
  const enabled = io.stdout.isTTY === true && io.stderr.isTTY === true && format === "table";
  let shown = false;
  return {
    show(text: string) {
      if (!enabled) return;
      io.stderr.write(`\r\u001b[2K${printable(text).slice(0, 79)}`);
      shown = true;
    },
    clear() {
      if (shown) io.stderr.write("\r\u001b[2K");
      shown = false;
    },
  };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
