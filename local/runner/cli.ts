import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import defaultScenario from "../scenarios/default.json" with { type: "json" };
import { type FlowRun, runFlow } from "./run-flow.js";
import { parseScenario } from "./scenario.js";

const USAGE = `Usage: npm start -- [--scenario FILE] [--json] [--verbose]

Runs imdsv2-guard end to end on a simulated AWS account: the real state machine (infra/state-machine.asl.json),
the real Lambda handlers, and the real probes against an IMDS emulator on loopback (Linux in sh; Windows in pwsh when
installed, else computed, as the "probe" column says). No AWS credentials needed.

  --scenario FILE  a scenario (events + instances) instead of the built-in mixed fleet; see README "Scenarios"
  --json           print the reports as JSON (a "results" array with instanceId, verdict, reason, ...)
  --verbose        keep the handlers' structured JSON logs (POWERTOOLS_LOG_LEVEL=INFO)
`;

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
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
    scenario = file
      ? parseScenario(JSON.parse(readFileSync(file, "utf8")) as unknown, file)
      : parseScenario(defaultScenario, "built-in default");
  } catch (error) {
    process.stderr.write(`imdsv2-guard: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const run = await runFlow(scenario);
  if (args.values.json) {
    process.stdout.write(`${JSON.stringify(jsonOutput(run), null, 2)}\n`);
  } else {
    process.stdout.write(humanOutput(run));
  }
  const failedExecutions = run.executions.filter((e) => e.status === "failed");
  return failedExecutions.length > 0 ? 1 : 0;
}

function parse() {
  return parseArgs({
    options: {
      scenario: { type: "string" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
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
    executions: run.executions.map((e) => ({
      eventIndex: e.eventIndex,
      delivery: e.delivery,
      status: e.status,
      ...(e.error ? { error: e.error } : {}),
      stats: e.stats,
    })),
    apiCalls: run.sim.calls,
    lambdaInvocations: run.lambdaInvocations,
  };
}

function humanOutput(run: FlowRun): string {
  const out: string[] = [];
  out.push(`imdsv2-guard, local run of scenario "${run.scenario.name}" on a simulated account`);
  if (run.scenario.description) out.push(run.scenario.description);
  out.push(
    `${run.scenario.events.length} event(s), ${run.scenario.instances.length} instance(s); ${run.simulatedSeconds.toFixed(0)} s of simulated AWS time in ${(run.wallMilliseconds / 1000).toFixed(1)} s.`,
    "",
  );
  for (const report of reportsInEventOrder(run)) {
    out.push(`== ${report.event.eventName} ${report.event.eventId} by ${report.event.actor}`);
    const rows = report.results.map((r) => [
      r.instanceId,
      r.verdict.toUpperCase(),
      r.reading ? (probeSources(run).get(r.instanceId) ?? "computed") : "-",
      r.secondsToApplied === undefined ? "-" : `${r.secondsToApplied}s`,
      r.secondsToVerdict === undefined ? "-" : `${r.secondsToVerdict}s`,
      r.reason + (r.warnings.length ? ` [${r.warnings.join("; ")}]` : ""),
    ]);
    out.push(table(["instance", "verdict", "probe", "applied", "verdict at", "reason"], rows), "");
  }
  const failed = run.executions.filter((e) => e.status === "failed");
  for (const e of failed) out.push(`!! execution for event ${e.eventIndex} failed: ${e.error}`);
  out.push("== Notifications, as people receive them (email / SNS default)", "");
  for (const p of run.sim.published) {
    const message = JSON.parse(p.input.Message ?? "{}") as { default?: string };
    out.push(`Subject: ${p.input.Subject ?? ""}`, "", message.default ?? "", "", "-".repeat(100), "");
  }
  return `${out.join("\n")}\n`;
}

/**
 * Per instance, how its probe reading came about: `real` when the script itself ran (sh for Linux, pwsh for
 * Windows), `computed` when a Windows instance's answers were computed because pwsh is not installed.
 */
function probeSources(run: FlowRun): Map<string, string> {
  return new Map(
    run.sim.probeRuns.map((p) => [
      p.instanceId,
      p.source === "computed" ? "computed" : `real (${p.platform === "windows" ? "pwsh" : "sh"})`,
    ]),
  );
}

function reportsInEventOrder(run: FlowRun) {
  return [...run.reports].sort((a, b) => a.event.eventTime.localeCompare(b.event.eventTime));
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (i === header.length - 1 ? 0 : (r[i] ?? "").length))),
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`imdsv2-guard: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
