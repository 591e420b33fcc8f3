import { parseArgs } from "node:util";
import { evidenceCsv, evidenceJson, evidenceTable } from "../../shared/report/evidence-table.js";
import { outputWidth, textTable, wrapText } from "../../shared/report/text-table.js";
import defaultScenario from "../scenarios/default.json" with { type: "json" };
import { deliveredNotification, notificationText } from "./channels.js";
import { type FlowRun, runFlow } from "./run-flow.js";
import { parseScenario, readScenarioFile } from "./scenario.js";
import { runSimulatedAudit } from "./simulated-audit.js";

const USAGE = `Usage: npm start -- [--scenario FILE] [--json] [--verbose]
       npm start -- evidence [--scenario FILE] [--json | --csv | --output table|json|csv]
       npm start -- audit [--help]

Runs imdsv2-guard end to end on a simulated AWS account: the real state machine (infra/state-machine.asl.json),
the real Lambda handlers, and the real probes against an IMDS emulator on loopback (Linux in sh; Windows in pwsh when
installed, else computed, as the "probe" column says). No AWS credentials needed.

  --scenario FILE  a scenario (events + instances) instead of the built-in mixed fleet; see README "Scenarios".
                   A relative path is read from the directory you run npm in.
  --json           print the reports as JSON: each instance's result, each report, and each notification as
                   every channel receives it (email text, Slack card). npm prints a banner on stdout before it:
                   for a file that parses, use  npm start --silent -- --json > out.json
  --verbose        keep the handlers' structured JSON logs (POWERTOOLS_LOG_LEVEL=INFO)

  evidence         runs the scenario, then lists every instance's standing truth as \`imdsv2-guard evidence\` does
                   (docs/evidence.md): its verdict, the age of its proof, and why
  audit            the audit command (imdsv2-guard audit) against a simulated fleet instead of AWS;
                   npm start -- audit --help lists its options
`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "audit") {
    return runSimulatedAudit(argv.slice(1), { stdout: process.stdout, stderr: process.stderr });
  }
  const evidenceCommand = argv[0] === "evidence";
  let args: ReturnType<typeof parse>;
  let format: "table" | "json" | "csv" = "table";
  try {
    args = parse(evidenceCommand ? argv.slice(1) : argv);
    format = outputFormat(args.values);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let scenario: ReturnType<typeof parseScenario>;
  try {
    const file = args.values.scenario;
    scenario = file ? readScenarioFile(file) : parseScenario(defaultScenario, "built-in default");
  } catch (error) {
    process.stderr.write(`imdsv2-guard: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const run = await runFlow(scenario);
  if (evidenceCommand) {
    const now = new Date(Date.parse("2026-11-28T09:00:00Z") + run.simulatedSeconds * 1000);
    process.stdout.write(
      format === "json"
        ? `${JSON.stringify(evidenceJson(run.evidence, now), null, 2)}\n`
        : format === "csv"
          ? evidenceCsv(run.evidence, now)
          : evidenceTable(run.evidence, now, outputWidth(process.env, process.stdout)),
    );
    return 0;
  }
  if (args.values.json) {
    process.stdout.write(`${JSON.stringify(jsonOutput(run), null, 2)}\n`);
  } else {
    process.stdout.write(humanOutput(run, outputWidth(process.env, process.stdout)));
  }
  const failedExecutions = run.executions.filter((e) => e.status === "failed");
  const deadLettered = run.asyncInvocations.filter((a) => a.deadLettered !== undefined);
  return failedExecutions.length > 0 || deadLettered.length > 0 ? 1 : 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      scenario: { type: "string" },
      json: { type: "boolean", default: false },
      csv: { type: "boolean", default: false },
      output: { type: "string" },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
}

/** `--output table|json|csv`, or its short forms `--json` and `--csv`; two that disagree are an error. */
function outputFormat(values: { json?: boolean; csv?: boolean; output?: string }): "table" | "json" | "csv" {
  const asked = [values.output, values.json ? "json" : undefined, values.csv ? "csv" : undefined].filter(
    (v): v is string => v !== undefined,
  );
  const format = asked[0] ?? "table";
  if (format !== "table" && format !== "json" && format !== "csv") {
    throw new Error(`--output must be table, json or csv, not ${format}`);
  }
  if (asked.some((a) => a !== format)) throw new Error(`conflicting output formats: ${asked.join(" and ")}`);
  return format;
}

function jsonOutput(run: FlowRun) {
  return {
    scenario: run.scenario.name,
    simulatedSeconds: run.simulatedSeconds,
    results: run.reports.flatMap((r) =>
      r.results.map((x) => ({
        eventId: r.event.eventId,
        eventName: r.event.eventName,
        ...x,
        ...(x.reading ? { probe: probeSources(run).get(x.instanceId) ?? "computed" } : {}),
      })),
    ),
    reports: run.reports,
    // The standing truth at the end of the run: each instance's evidence record (docs/evidence.md), and the findings
    // imported into Security Hub (with the securityHub setting), as Security Hub keeps them.
    evidence: run.evidence,
    findings: run.findings,
    // Every published message, as each channel receives it: `email` is SNS's default text, `slack` the AWS Chatbot
    // custom notification (title, description, nextSteps) that Slack shows.
    notifications: run.sim.published.map((p) => deliveredNotification(p.input)),
    // What EventBridge's asynchronous invocations of the intake (and Scheduler's of the watch) came to.
    asyncInvocations: run.asyncInvocations.map(({ payload: _payload, ...rest }) => rest),
    executions: run.executions.map((e) => ({
      ...(e.name ? { name: e.name } : {}),
      eventIndex: e.eventIndex,
      delivery: e.delivery,
      status: e.status,
      ...(e.error ? { error: e.error } : {}),
      stats: e.stats,
    })),
    apiCalls: run.org?.calls ?? run.sim.calls,
    ...(run.org
      ? {
          organization: {
            id: run.org.spec.id,
            hubAccount: run.org.spec.hubAccount,
            assumeRoleCalls: run.org.assumeRoleCalls.map(({ at: _at, ...call }) => call),
          },
        }
      : {}),
    lambdaInvocations: run.lambdaInvocations,
  };
}

/** The verdict comes before the reason, and keeps its width: a narrow terminal wraps the reason, never the verdict. */
const RESULT_COLUMNS = [
  { header: "instance" },
  { header: "verdict" },
  { header: "probe" },
  { header: "applied", right: true },
  { header: "verdict at", right: true },
  { header: "reason", minWidth: 24 },
];

function humanOutput(run: FlowRun, width: number): string {
  const out: string[] = [];
  const prose = (text: string) => wrapText(text, width);
  const org = run.scenario.organization;
  out.push(
    ...prose(
      org
        ? `imdsv2-guard, local run of scenario "${run.scenario.name}" on a simulated organization ${org.id}: hub ${org.hubAccount} in ${org.hubRegion}, ${org.accounts.length} member account(s)`
        : `imdsv2-guard, local run of scenario "${run.scenario.name}" on a simulated account`,
    ),
  );
  if (run.scenario.description) out.push(...prose(run.scenario.description));
  out.push(
    ...prose(
      `${run.scenario.events.length} event(s), ${run.scenario.instances.length} instance(s); ${run.simulatedSeconds.toFixed(0)} s of simulated AWS time in ${(run.wallMilliseconds / 1000).toFixed(1)} s.`,
    ),
    "",
  );
  for (const report of reportsInEventOrder(run)) {
    const e = report.event;
    const where = `${e.accountName ? `${e.accountName} (${e.account})` : e.account}/${e.region}`;
    out.push(...prose(`== ${e.eventName} ${e.eventId} in ${where} by ${e.actor}`));
    const rows = report.results.map((r) => [
      r.instanceId,
      r.verdict.toUpperCase(),
      r.reading ? (probeSources(run).get(r.instanceId) ?? "computed") : "-",
      r.secondsToApplied === undefined ? "-" : `${r.secondsToApplied}s`,
      r.secondsToVerdict === undefined ? "-" : `${r.secondsToVerdict}s`,
      r.reason + (r.warnings.length ? ` [${r.warnings.join("; ")}]` : ""),
    ]);
    out.push(textTable(RESULT_COLUMNS, rows, width), "");
  }
  const failed = run.executions.filter((e) => e.status === "failed");
  for (const e of failed)
    out.push(...prose(`!! execution ${e.name ?? `for event ${e.eventIndex}`} failed: ${e.error}`));
  for (const a of run.asyncInvocations.filter((x) => x.deadLettered !== undefined)) {
    const what = a.eventIndex === undefined ? a.functionName : `${a.functionName} for event ${a.eventIndex}`;
    out.push(...prose(`!! ${what} ended in its dead-letter queue after ${a.attempts} attempts: ${a.deadLettered}`));
  }
  if (run.evidence.length > 0) {
    // One line here; `npm start -- evidence` lists every instance (the table is wide: account and region too).
    const counts = new Map<string, number>();
    for (const r of run.evidence) {
      const key = r.closedAt ? `${r.verdict} (closed)` : r.verdict;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const summary = [...counts].map(([verdict, n]) => `${n} ${verdict}`).join(", ");
    out.push(
      ...prose(
        `== Standing truth: ${run.evidence.length} instance(s) recorded: ${summary}. npm start -- evidence lists each with the age of its proof and why.`,
      ),
      "",
    );
  }
  if (run.findings.length > 0) {
    out.push("== Security Hub findings, as Security Hub lists them", "");
    const rows = run.findings.map((f) => [
      f.Resources?.[0]?.Id?.split("/").at(-1) ?? "-",
      f.Compliance?.Status ?? "-",
      f.RecordState ?? "-",
      f.Severity?.Label ?? "-",
      f.RelatedFindings?.length ? "EC2.8" : "-",
      f.Title ?? "",
    ]);
    const columns = [
      { header: "resource" },
      { header: "compliance" },
      { header: "record" },
      { header: "severity" },
      { header: "related" },
      { header: "title", minWidth: 24 },
    ];
    out.push(textTable(columns, rows, width), "");
  }
  out.push("== Notifications, as each channel shows them: the email, and the Slack card AWS Chatbot posts", "");
  for (const p of run.sim.published) {
    out.push(...notificationText(deliveredNotification(p.input), width), "-".repeat(Math.min(width, 100)), "");
  }
  return `${out.join("\n")}\n`;
}

/**
 * Per instance, how its probe reading came about: `real` when the script itself ran (sh for Linux, pwsh for
 * Windows), `computed` when a Windows instance's answers were computed because pwsh is not installed.
 */
function probeSources(run: FlowRun): Map<string, string> {
  // In organization mode each member account runs its own instances' probes.
  const sims = [run.sim, ...(run.org?.memberAccounts().map((m) => m.sim) ?? [])];
  return new Map(
    sims
      .flatMap((sim) => sim.probeRuns)
      .map((p) => [
        p.instanceId,
        p.source === "computed" ? "computed" : `real (${p.platform === "windows" ? "pwsh" : "sh"})`,
      ]),
  );
}

function reportsInEventOrder(run: FlowRun) {
  return [...run.reports].sort((a, b) => a.event.eventTime.localeCompare(b.event.eventTime));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`imdsv2-guard: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
