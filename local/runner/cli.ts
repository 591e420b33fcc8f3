import { parseArgs } from "node:util";
import { tableJsonOrCsv } from "../../audit/evidence-command.js";
import { evidenceCsv, evidenceJson, evidenceTable } from "../../shared/report/evidence-table.js";
import { outputWidth, textTable, wrapText } from "../../shared/report/text-table.js";
import defaultScenario from "../scenarios/default.json" with { type: "json" };
import { deliveredNotification, notificationText } from "./channels.js";
import { type FlowRun, runFlow } from "./run-flow.js";
import { parseScenario, readScenarioFile } from "./scenario.js";
import { runSimulatedAudit } from "./simulated-audit.js";
import { runSimulatedDoctor, runSimulatedSelftest } from "./simulated-ops.js";
import { describeWeather, weatherSchema } from "./weather.js";

const USAGE = `Usage: npm start -- [--scenario FILE] [--weather-seed N] [--json] [--verbose]
                    [--show-notifications]
       npm start -- evidence [--scenario FILE] [--output table|json|csv]
       npm start -- audit|doctor|selftest [--help]

Runs imdsv2-guard end to end on a simulated AWS account: the real state
machine (infra/state-machine.asl.json), the real Lambda handlers, and the real
probes against an IMDS emulator on loopback (Linux in sh; Windows in pwsh when
installed, else computed, as the "probe" column says). No AWS credentials.

  --scenario FILE       a scenario (events + instances) instead of the
                        built-in mixed fleet (docs/commands.md, "Scenarios");
                        a relative path is read from where you run npm
  --weather-seed N      seeded AWS weather: throttles, 5xx, late and
                        duplicate deliveries, lagging describes, slow
                        applies, late SSM agents; the same for the same N
                        (a scenario may set "weather": {"seed": N})
  --json                the reports as JSON (docs/schemas/run.schema.json):
                        each result, each report, each notification as every
                        channel receives it. npm prints a banner on stdout
                        first; for a file that parses, use
                          npm start --silent -- --json > out.json
  --verbose             the handlers' structured JSON logs, on stderr
  --show-notifications  each notification in full, as the email and the
                        Slack card (default: one line each)

  evidence              runs the scenario, then lists every instance's
                        standing truth as imdsv2-guard evidence does
                        (docs/evidence.md): its verdict, the age of its
                        proof, and why
  audit                 the audit (imdsv2-guard audit) on a simulated fleet
  doctor                the pre-flight (imdsv2-guard doctor) on a simulated,
                        healthy deploy
  selftest              the smoke test (imdsv2-guard selftest) on the
                        simulation: the guard itself runs on one launch
`;

async function main(argv: string[]): Promise<number> {
  const io = { stdout: process.stdout, stderr: process.stderr };
  if (argv[0] === "audit") return runSimulatedAudit(argv.slice(1), io);
  if (argv[0] === "doctor") return runSimulatedDoctor(argv.slice(1), io);
  if (argv[0] === "selftest") return runSimulatedSelftest(argv.slice(1), io);
  const evidenceCommand = argv[0] === "evidence";
  let args: ReturnType<typeof parse>;
  let format: "table" | "json" | "csv" = "table";
  try {
    args = parse(evidenceCommand ? argv.slice(1) : argv);
    format = tableJsonOrCsv(args.values);
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
    const seed = args.values["weather-seed"];
    if (seed !== undefined) scenario = { ...scenario, weather: parseWeatherSeed(seed) };
  } catch (error) {
    process.stderr.write(`imdsv2-guard: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const progress = runProgress(process.stderr, process.stdout.isTTY === true && format === "table");
  let run: FlowRun;
  const restoreStdout = logsToStderr();
  try {
    run = await runFlow(scenario);
  } finally {
    restoreStdout();
    progress.stop();
  }
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
  if (format === "csv") {
    process.stderr.write("imdsv2-guard: --output csv is for npm start -- evidence; the run prints table or json\n");
    return 2;
  }
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(jsonOutput(run), null, 2)}\n`);
  } else {
    process.stdout.write(humanOutput(run, outputWidth(process.env, process.stdout), args.values["show-notifications"]));
  }
  const failedExecutions = run.executions.filter((e) => e.status === "failed");
  const deadLettered = run.asyncInvocations.filter((a) => a.deadLettered !== undefined || a.refused !== undefined);
  for (const r of run.refusedDeliveries) process.stderr.write(`Event ${r.eventIndex} was not delivered: ${r.reason}\n`);
  return failedExecutions.length > 0 || deadLettered.length > 0 || run.refusedDeliveries.length > 0 ? 1 : 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      scenario: { type: "string" },
      "weather-seed": { type: "string" },
      json: { type: "boolean", default: false },
      csv: { type: "boolean", default: false },
      output: { type: "string" },
      verbose: { type: "boolean", default: false },
      "show-notifications": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
}

/** `--weather-seed N`: a whole number, as the scenario's `weather.seed` takes it. */
function parseWeatherSeed(text: string): { seed: number } {
  const parsed = weatherSchema.safeParse({ seed: /^\d+$/.test(text) ? Number(text) : Number.NaN });
  if (!parsed.success) throw new Error(`--weather-seed must be a whole number from 0 to ${2 ** 31 - 1}, not "${text}"`);
  return parsed.data;
}

function jsonOutput(run: FlowRun) {
  return {
    scenario: run.scenario.name,
    ...(run.scenario.weather ? { weather: { seed: run.scenario.weather.seed } } : {}),
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
    // Scenario events AWS would not deliver (over EventBridge's 256 KB), and records CloudTrail delivers truncated.
    refusedDeliveries: run.refusedDeliveries,
    truncatedDeliveries: run.truncatedDeliveries,
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

/** From this width on, the reason is a column of the result table; below it, lines under each row. */
const REASON_COLUMN_WIDTH = 100;

function humanOutput(run: FlowRun, width: number, showNotifications: boolean): string {
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
  if (run.weather) out.push(...prose(describeWeather(run.weather.seed, run.weather.knobs).join("; ")));
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
    if (width >= REASON_COLUMN_WIDTH) out.push(textTable(RESULT_COLUMNS, rows, width), "");
    else {
      // Narrower than that, a reason column would break its words into pieces: the reason goes under its row,
      // across the whole width, each row's lines together.
      const table = textTable(
        RESULT_COLUMNS.slice(0, -1),
        rows.map((r) => r.slice(0, -1)),
        width,
      ).split("\n");
      out.push(...table.slice(0, 2));
      rows.forEach((r, i) => {
        out.push(table[i + 2] ?? "", ...wrapText(r[5] ?? "", width - 4).map((l) => `    ${l}`));
      });
      out.push("");
    }
  }
  const failed = run.executions.filter((e) => e.status === "failed");
  for (const e of failed)
    out.push(...prose(`!! execution ${e.name ?? `for event ${e.eventIndex}`} failed: ${e.error}`));
  for (const a of run.asyncInvocations.filter((x) => x.deadLettered !== undefined)) {
    const what = a.eventIndex === undefined ? a.functionName : `${a.functionName} for event ${a.eventIndex}`;
    out.push(...prose(`!! ${what} ended in its dead-letter queue after ${a.attempts} attempts: ${a.deadLettered}`));
  }
  for (const a of run.asyncInvocations.filter((x) => x.refused !== undefined)) {
    out.push(...prose(`!! Lambda refused the asynchronous invocation of ${a.functionName}: ${a.refused}`));
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
  const notifications = run.sim.published.map((p) => deliveredNotification(p.input));
  if (showNotifications) {
    out.push(
      ...prose("== Notifications, as each channel shows them: the email, and the Slack card AWS Chatbot posts"),
      "",
    );
    for (const n of notifications) out.push(...notificationText(n, width), "-".repeat(width), "");
  } else {
    out.push(...prose(`== Notifications (${notifications.length}), one line each`));
    for (const n of notifications) {
      out.push(
        ...wrapText(`- ${n.subject}${n.slack ? " (email, Slack)" : " (email)"}`, width).map((l, i) =>
          i === 0 ? l : `  ${l}`,
        ),
      );
    }
    out.push("");
  }
  out.push(...summary(run, notifications, width));
  // A tag value reaches these lines (reasons, subjects): no terminal escape code gets through raw.
  return `${out.join("\n").split("\n").map(terminalSafe).join("\n")}\n`;
}

/**
 * While the flow runs, whatever writes to stdout goes to stderr: the handlers' structured logs (--verbose; Powertools
 * writes them to process.stdout), so stdout holds the report alone and `--json --verbose` stays one JSON document.
 */
function logsToStderr(): () => void {
  const write = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  return () => {
    process.stdout.write = write;
  };
}

/** What the run came to, per event; what to do next; where the notifications went. */
function summary(run: FlowRun, notifications: readonly { topicArn: string }[], width: number): string[] {
  const prose = (text: string) => wrapText(text, width);
  const out = ["== Summary", ""];
  const rows = reportsInEventOrder(run).map((r) => [
    r.event.eventName,
    r.verdict.toUpperCase(),
    Object.entries(r.counts)
      .filter(([, n]) => n > 0)
      .map(([v, n]) => `${n} ${v}`)
      .join(", "),
  ]);
  out.push(
    textTable([{ header: "event" }, { header: "report" }, { header: "verdicts", minWidth: 16 }], rows, width),
    "",
  );
  const totals = new Map<string, number>();
  for (const r of run.reports) for (const [v, n] of Object.entries(r.counts)) totals.set(v, (totals.get(v) ?? 0) + n);
  const next: string[] = [];
  const has = (v: string) => (totals.get(v) ?? 0) > 0;
  if (has("fail"))
    next.push(
      "fail: IMDSv1 still answers on those instances; the reason says why (a local metadata proxy, a template): fix it there.",
    );
  if (has("held"))
    next.push(
      "held: software used IMDSv1 within the look-back; fix it, then the sweep enforces (or set onV1Usage=enforce).",
    );
  if (has("unverified"))
    next.push("unverified: no SSM managed node to probe from; `npm start -- doctor` shows SSM coverage.");
  if (has("error")) next.push("error: the guard could not finish; the reason names the call and the fix.");
  if (next.length === 0) next.push("nothing: every instance passed or was exempt.");
  out.push(
    "What to do next:",
    ...next.flatMap((n) => wrapText(`- ${n}`, width).map((l, i) => (i === 0 ? l : `  ${l}`))),
    "",
  );
  const topics = [...new Set(notifications.map((n) => n.topicArn))];
  out.push(
    ...prose(
      `Notifications: ${notifications.length} published to ${topics.length === 1 ? "the topic" : `${topics.length} topics`} ${topics.join(", ")} (email, and Slack through AWS Chatbot). Read them in full with:`,
    ),
    ...commandLine("npm start -- --show-notifications", width),
    ...prose("or as JSON with:"),
    ...commandLine("npm start --silent -- --json > out.json", width),
  );
  return out;
}

/** A command on its own line, indented when that still fits, never broken. */
function commandLine(command: string, width: number): string[] {
  return [command.length + 2 <= width ? `  ${command}` : command];
}

/** Control characters out of a line (tab and escape codes from a tag value); the line itself stays one line. */
function terminalSafe(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
  return line.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, "?");
}

/**
 * `running scenario... 12 s` on stderr while a run takes longer than 2 s, for a person at a terminal. Real timers,
 * captured before runFlow installs its fake clock, so simulated time does not drive them.
 */
const realSetInterval = globalThis.setInterval;
const realClearInterval = globalThis.clearInterval;
function runProgress(stream: NodeJS.WriteStream, wanted: boolean): { stop(): void } {
  if (!wanted || !stream.isTTY) return { stop: () => {} };
  const started = performance.now();
  let shown = false;
  const timer = realSetInterval(() => {
    const seconds = Math.round((performance.now() - started) / 1000);
    if (seconds < 2) return;
    stream.write(`\r\u001b[2Krunning the scenario... ${seconds} s`);
    shown = true;
  }, 500);
  timer.unref();
  return {
    stop: () => {
      realClearInterval(timer);
      if (shown) stream.write("\r\u001b[2K");
    },
  };
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
