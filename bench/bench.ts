import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import {
  burstScenario,
  modifyLowerBoundSeconds,
  organizationBurstScenario,
  stormScenario,
} from "../local/runner/burst-scenarios.js";
import { type FlowRun, runFlow } from "../local/runner/run-flow.js";
import { parseScenario, type Scenario } from "../local/runner/scenario.js";
import { EC2_REQUEST_BUCKETS } from "../local/sim/ec2-throttling.js";
import { functionBuildOptions, functionEntries, sourceOf } from "../scripts/function-bundles.js";
import { flowCosts } from "./flow-costs.js";
import { scaleFigures } from "./scale.js";
import { weatherFigures } from "./weather.js";

/**
 * `npm run bench`: everything measured side by side in one run, on this machine, and printed as ratios where the
 * machine's noise would otherwise dominate. Simulated-time figures are deterministic.
 */

const IMPORT_SAMPLES = Number(process.env.BENCH_IMPORT_SAMPLES ?? 15);

function section(title: string): void {
  process.stdout.write(`\n## ${title}\n\n`);
}

function row(cells: (string | number)[]): string {
  return `| ${cells.join(" | ")} |`;
}

const SINGLE_ID = "i-0c000000000000001";

/**
 * One launch, as it reaches a deployed guard: EC2's `pending` notification first, then the CloudTrail record. Both
 * invoke the intake (the second finds the instance claimed, hands its actor to the waiting report and starts
 * nothing), so the figure is everything one launch costs.
 */
function singleInstanceScenario(signals: "both" | "cloudtrail") {
  const record = {
    eventDelaySeconds: signals === "both" ? CLOUDTRAIL_DELAYS_SECONDS[0] : 0,
    "detail-type": "AWS API Call via CloudTrail",
    source: "aws.ec2",
    account: "111122223333",
    region: "eu-west-1",
    detail: {
      eventName: "RunInstances",
      eventID: "bench-one",
      eventTime: "2026-11-28T09:00:00Z",
      userIdentity: { arn: "arn:aws:iam::111122223333:user/bench" },
      responseElements: {
        instancesSet: { items: [{ instanceId: SINGLE_ID, launchTime: Date.parse("2026-11-28T09:00:00Z") }] },
      },
    },
  };
  const pending = {
    eventDelaySeconds: STATE_CHANGE_DELAY_SECONDS,
    id: "bench-one-pending",
    "detail-type": "EC2 Instance State-change Notification",
    source: "aws.ec2",
    account: "111122223333",
    region: "eu-west-1",
    time: "2026-11-28T09:00:00Z",
    detail: { "instance-id": SINGLE_ID, state: "pending" },
  };
  return parseScenario(
    {
      name: "one instance",
      eventSpacingSeconds: 0,
      events: signals === "both" ? [pending, record] : [record],
      instances: [{ id: SINGLE_ID }],
    },
    "bench",
  );
}

const LAUNCH_RESERVATION = "r-0c0000000000000a1";
const LAUNCH_TOKEN = "bench-launch-token";

/**
 * One launch of `n` instances as AWS delivers it (issue 20): EC2's `pending` notification for each instance first,
 * then, a minute later, the RunInstances record: listing its instances with their launchTime, or truncated by
 * CloudTrail (`responseElements: {omitted: true}`), to be found by its client token.
 */
function launchScenario(n: number, record: "listed" | "truncated") {
  const ids = Array.from({ length: n }, (_, i) => `i-0d${i.toString(16).padStart(15, "0")}`);
  const launchedAt = Date.parse("2026-11-28T09:00:00Z");
  const pending = ids.map((id) => ({
    eventDelaySeconds: STATE_CHANGE_DELAY_SECONDS,
    id: `bench-launch-pending-${id}`,
    "detail-type": "EC2 Instance State-change Notification",
    source: "aws.ec2",
    account: "111122223333",
    region: "eu-west-1",
    time: "2026-11-28T09:00:02Z",
    detail: { "instance-id": id, state: "pending" },
  }));
  const runInstances = {
    eventDelaySeconds: CLOUDTRAIL_DELAYS_SECONDS[0],
    "detail-type": "AWS API Call via CloudTrail",
    source: "aws.ec2",
    account: "111122223333",
    region: "eu-west-1",
    detail: {
      eventName: "RunInstances",
      eventID: `bench-launch-${record}`,
      eventTime: "2026-11-28T09:00:01Z",
      userIdentity: { arn: "arn:aws:iam::111122223333:user/bench" },
      requestParameters: {
        instancesSet: { items: [{ imageId: "ami-0abcdef1234567890", minCount: n, maxCount: n }] },
        clientToken: LAUNCH_TOKEN,
      },
      responseElements:
        record === "truncated"
          ? { omitted: true }
          : {
              reservationId: LAUNCH_RESERVATION,
              instancesSet: { items: ids.map((instanceId) => ({ instanceId, launchTime: launchedAt })) },
            },
    },
  };
  return parseScenario(
    {
      name: `launch of ${n}`,
      eventSpacingSeconds: 0,
      events: [...pending, runInstances],
      instances: ids.map((id) => ({ id, reservationId: LAUNCH_RESERVATION, clientToken: LAUNCH_TOKEN })),
    },
    "bench",
  );
}

/**
 * Simulated seconds to each member account's last report: EC2 and SSM throttle per account and region, so one
 * account's burst must not hold up another's.
 */
function lastReportByAccount(run: FlowRun): Record<string, number> {
  const start = Date.parse("2026-11-28T09:00:00Z");
  const last: Record<string, number> = {};
  for (const p of run.sim.published) {
    const account = p.input.MessageAttributes?.account?.StringValue ?? "unknown";
    last[account] = Math.max(last[account] ?? 0, (p.at - start) / 1000);
  }
  return last;
}

/**
 * The launch path with the standing truth in full (issue 21): evidence records and, with securityHub on, one
 * finding per instance imported (with its EC2.8 lookup), so the cost targets hold with both.
 */
function withSecurityHub(scenario: Scenario): Scenario {
  return { ...scenario, settings: { ...scenario.settings, securityHub: true } };
}

async function flowFigures(): Promise<void> {
  section(
    "Per instance, on the simulated account: everything each event caused, at list price: the intake's invocation for every signal (duplicates included), the execution it started (Step Functions Standard transitions and Express children), Lambda (arm64 256 MB, 100 ms billed per invocation assumed), the Scheduler watch, the ledger (evidence records included), metrics and SNS calls, and Security Hub finding ingestion (securityHub on for the launch, burst and storm runs; priced past the free tier of 10,000 a month per account and region)",
  );
  const runs: [string, FlowRun][] = [];
  runs.push([
    `1 instance, pass path: state-change at ${STATE_CHANGE_DELAY_SECONDS} s + CloudTrail record at ${CLOUDTRAIL_DELAYS_SECONDS[0]} s`,
    await runFlow(withSecurityHub(singleInstanceScenario("both"))),
  ]);
  runs.push(["1 instance, pass path: CloudTrail record only", await runFlow(singleInstanceScenario("cloudtrail"))]);
  const defaultScenario = parseScenario(
    JSON.parse(readFileSync("local/scenarios/single-account.json", "utf8")),
    "single-account",
  );
  runs.push([
    `single-account scenario (${defaultScenario.instances.length} instances, ${defaultScenario.events.length} events)`,
    await runFlow(defaultScenario),
  ]);
  const launch = await runFlow(launchScenario(100, "listed"));
  runs.push([
    `1 launch x 100 instances: 100 state-changes at ${STATE_CHANGE_DELAY_SECONDS} s + CloudTrail record at ${CLOUDTRAIL_DELAYS_SECONDS[0]} s`,
    launch,
  ]);
  const truncatedLaunch = await runFlow(launchScenario(100, "truncated"));
  runs.push(["1 launch x 100 instances, the record truncated (omitted: true)", truncatedLaunch]);
  const burst = await runFlow(withSecurityHub(burstScenario(1000)), { faults: { ec2Throttling: true } });
  runs.push(["burst: 1 event x 1,000 instances, throttled", burst]);
  const storm = await runFlow(withSecurityHub(stormScenario(1000)), { faults: { ec2Throttling: true } });
  runs.push(["storm: 1,000 events x 1 instance, throttled", storm]);
  const orgBurst = await runFlow(organizationBurstScenario(1000), { faults: { ec2Throttling: true } });
  runs.push(["organization burst: 3 accounts x 1 event, 1,000 instances, throttled", orgBurst]);

  process.stdout.write(
    `${row(["run", "executions", "API calls", "Standard transitions", "Express runs", "Express billed s", "Lambda invocations", "s to last verdict", "USD per 1,000 instances", "of which transitions / Express / Lambda / Scheduler / ledger, metrics, SNS / Security Hub", "largest state payload B (quota 262,144)", "failed executions"])}\n${row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"])}\n`,
  );
  for (const [name, run] of runs) {
    const c = flowCosts(run);
    process.stdout.write(
      `${row([
        name,
        c.executions,
        c.apiCallsPerInstance.toFixed(1),
        c.transitionsPerInstance.toFixed(1),
        c.expressExecutionsPerInstance.toFixed(2),
        c.expressBilledSecondsPerInstance.toFixed(1),
        c.lambdaInvocationsPerInstance.toFixed(1),
        run.lastReportSeconds.toFixed(0),
        `$${c.usdPer1000Instances.toFixed(3)}`,
        `$${c.usdPer1000.transitions.toFixed(3)} / $${c.usdPer1000.express.toFixed(3)} / $${c.usdPer1000.lambda.toFixed(3)} / $${c.usdPer1000.scheduler.toFixed(3)} / $${c.usdPer1000.ledgerMetricsSns.toFixed(3)} / $${c.usdPer1000.securityHub.toFixed(3)}`,
        Math.max(0, ...run.executions.map((e) => e.stats.maxStatePayloadBytes)),
        run.executions.filter((e) => e.status === "failed").length,
      ])}\n`,
    );
  }
  process.stdout.write(
    "\nPer instance, except executions (per run) and s to last verdict (simulated, from the first event).\n",
  );

  section("One launch, one report: a 100-instance launch, both signals in the order AWS sends them (issue 20)");
  process.stdout.write(
    `${row(["run", "signals", "executions", "notifications (reports)", "verdicts", "actor", "USD per instance", "s to the report"])}\n${row(["---", "---:", "---:", "---:", "---:", "---", "---:", "---:"])}\n`,
  );
  for (const [name, run] of [
    ["record lists its instances", launch],
    ["record truncated (omitted: true)", truncatedLaunch],
  ] as const) {
    const c = flowCosts(run);
    process.stdout.write(
      `${row([
        name,
        run.asyncInvocations.filter((a) => a.functionName === "AdmitEvent").length,
        c.executions,
        run.reports.length,
        run.reports.reduce((n, r) => n + r.results.length, 0),
        run.reports.map((r) => r.event.actor).join("; "),
        `$${(c.usdPer1000Instances / 1000).toFixed(6)}`,
        run.lastReportSeconds.toFixed(0),
      ])}\n`,
    );
  }

  const modify = EC2_REQUEST_BUCKETS.ModifyInstanceMetadataOptions;
  const describe = EC2_REQUEST_BUCKETS.DescribeInstances;
  section(
    `Bursts under EC2's documented per-API token buckets (ModifyInstanceMetadataOptions ${modify.capacity} / ${modify.refillPerSecond} per s, DescribeInstances ${describe.capacity} / ${describe.refillPerSecond} per s)`,
  );
  const bound = modifyLowerBoundSeconds(1000);
  process.stdout.write(
    `${row(["run", "verdicts", "simulated s to last verdict", "lower bound s", "ratio", "max history events / execution", "wall s"])}\n${row(["---", "---", "---:", "---:", "---:", "---:", "---:"])}\n`,
  );
  for (const [name, run] of [
    ["burst 1 x 1,000", burst],
    ["storm 1,000 x 1", storm],
    ["organization burst 3 accounts x 333", orgBurst],
  ] as const) {
    const verdicts: Record<string, number> = {};
    for (const r of run.reports) for (const x of r.results) verdicts[x.verdict] = (verdicts[x.verdict] ?? 0) + 1;
    const maxHistory = Math.max(
      ...run.executions.flatMap((e) => [e.stats.historyEvents, e.stats.maxChildHistoryEvents]),
    );
    process.stdout.write(
      `${row([
        name,
        Object.entries(verdicts)
          .map(([v, n]) => `${n} ${v}`)
          .join(", "),
        run.lastReportSeconds.toFixed(0),
        bound.toFixed(0),
        (run.lastReportSeconds / bound).toFixed(2),
        maxHistory,
        (run.wallMilliseconds / 1000).toFixed(1),
      ])}\n`,
    );
  }
  process.stdout.write(
    `\nOrganization burst, simulated s to each account's last verdict (lower bound per account ${modifyLowerBoundSeconds(Math.ceil(1000 / 3)).toFixed(0)} s; the single-account lower bound for 1,000 is ${bound.toFixed(0)} s): ${Object.entries(
      lastReportByAccount(orgBurst),
    )
      .map(([account, seconds]) => `${account} ${seconds.toFixed(0)} s`)
      .join(", ")}\n`,
  );
}

/**
 * Assumed delivery delays (AWS documents no figure for either): EC2's state-change notification arrives within
 * seconds; CloudTrail's record reaches EventBridge after a delay that is typically a minute or more and best effort.
 */
const STATE_CHANGE_DELAY_SECONDS = 2;
const CLOUDTRAIL_DELAYS_SECONDS = [60, 300];
const EXPOSED_ID = "i-0c000000000000002";

function exposureScenario(events: unknown[]) {
  return parseScenario(
    {
      name: "exposure window",
      eventSpacingSeconds: 0,
      settings: { watchRejectedSeconds: 0 },
      events,
      instances: [{ id: EXPOSED_ID }],
    },
    "bench",
  );
}

function runInstancesRecord(delaySeconds: number) {
  return {
    eventDelaySeconds: delaySeconds,
    "detail-type": "AWS API Call via CloudTrail",
    source: "aws.ec2",
    account: "111122223333",
    region: "eu-west-1",
    detail: {
      eventName: "RunInstances",
      eventID: `bench-exposure-${delaySeconds}`,
      eventTime: "2026-11-28T09:00:00Z",
      userIdentity: { arn: "arn:aws:iam::111122223333:user/bench" },
      responseElements: { instancesSet: { items: [{ instanceId: EXPOSED_ID }] } },
    },
  };
}

function pendingNotification(delaySeconds: number) {
  return {
    eventDelaySeconds: delaySeconds,
    id: "bench-pending",
    "detail-type": "EC2 Instance State-change Notification",
    source: "aws.ec2",
    account: "111122223333",
    region: "eu-west-1",
    time: "2026-11-28T09:00:00Z",
    detail: { "instance-id": EXPOSED_ID, state: "pending" },
  };
}

/** Seconds from the instance's `pending` (the run's start) until EC2 applied HttpTokens=required. */
function exposureSeconds(run: FlowRun): number {
  const applied = run.sim.instance(EXPOSED_ID)?.tokenHistory.find((h) => h.tokens === "required");
  return applied ? (applied.at - Date.parse("2026-11-28T09:00:00Z")) / 1000 : Number.NaN;
}

async function exposureFigures(): Promise<void> {
  section(
    "Exposure window per trigger: from the instance's pending to HttpTokens=required applied (EC2's apply time in the simulation: 20 s)",
  );
  process.stdout.write(
    `${row(["trigger", "delivery delay assumed", "exposure s (pending -> applied)", "report at s", "reports"])}\n${row(["---", "---", "---:", "---:", "---:"])}\n`,
  );
  for (const ct of CLOUDTRAIL_DELAYS_SECONDS) {
    const run = await runFlow(
      exposureScenario([pendingNotification(STATE_CHANGE_DELAY_SECONDS), runInstancesRecord(ct)]),
    );
    process.stdout.write(
      `${row([`state-change (record at ${ct} s names the actor)`, `state-change ${STATE_CHANGE_DELAY_SECONDS} s`, exposureSeconds(run).toFixed(0), run.lastReportSeconds.toFixed(0), run.reports.length])}\n`,
    );
  }
  const alone = await runFlow(exposureScenario([pendingNotification(STATE_CHANGE_DELAY_SECONDS)]));
  process.stdout.write(
    `${row(["state-change, no record (actor unknown)", `state-change ${STATE_CHANGE_DELAY_SECONDS} s`, exposureSeconds(alone).toFixed(0), alone.lastReportSeconds.toFixed(0), alone.reports.length])}\n`,
  );
  for (const ct of CLOUDTRAIL_DELAYS_SECONDS) {
    const run = await runFlow(exposureScenario([runInstancesRecord(ct)]));
    process.stdout.write(
      `${row(["CloudTrail record only", `CloudTrail ${ct} s`, exposureSeconds(run).toFixed(0), run.lastReportSeconds.toFixed(0), run.reports.length])}\n`,
    );
  }
}

async function bundleFigures(): Promise<void> {
  section("Per function: bundle size, and cold import time bundled vs unbundled (tsc output + node_modules)");
  const esbuildOptions = functionBuildOptions();
  rmSync(".build/bench", { recursive: true, force: true });
  // The same code, unbundled: tsc's output next to the probe scripts it imports, resolving node_modules as usual.
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.unbundled.json"], {
    stdio: "inherit",
  });
  cpSync("shared/probes", ".build/unbundled/shared/probes", { recursive: true });

  process.stdout.write(
    `${row(["function", "bundle KiB", "gzip KiB", "bundled import ms (median)", "unbundled import ms (median)", "unbundled / bundled"])}\n${row(["---", "---:", "---:", "---:", "---:", "---:"])}\n`,
  );
  const hooks = pathToFileURL(resolve("bench/text-module-hooks.mjs")).href;
  const carried: string[] = [];
  for (const { name, entry } of functionEntries()) {
    const outfile = `.build/bench/${name}.mjs`;
    const { metafile } = await build({
      ...esbuildOptions,
      entryPoints: [entry],
      outfile,
      metafile: true,
      logLevel: "error",
    });
    const code = readFileSync(outfile);
    const bundled = pathToFileURL(resolve(outfile)).href;
    const unbundled = pathToFileURL(resolve(`.build/unbundled/${entry.replace(/\.ts$/, ".js")}`)).href;
    const times = { bundled: [] as number[], unbundled: [] as number[] };
    // Alternate the two, so the machine's noise falls on both alike.
    for (let i = 0; i < IMPORT_SAMPLES; i++) {
      times.bundled.push(coldImportMs(bundled, hooks));
      times.unbundled.push(coldImportMs(unbundled, hooks));
    }
    const b = median(times.bundled);
    const u = median(times.unbundled);
    process.stdout.write(
      `${row([name, (code.length / 1024).toFixed(0), (gzipSync(code).length / 1024).toFixed(0), b.toFixed(1), u.toFixed(1), `${(u / b).toFixed(1)}x`])}\n`,
    );
    const inputs = Object.values(metafile.outputs).find((output) => output.entryPoint === entry)?.inputs ?? {};
    const bySource = new Map<string, number>();
    for (const [path, input] of Object.entries(inputs)) {
      bySource.set(sourceOf(path), (bySource.get(sourceOf(path)) ?? 0) + input.bytesInOutput);
    }
    const top = [...bySource].sort((x, y) => y[1] - x[1]).slice(0, 5);
    carried.push(row([name, top.map(([source, bytes]) => `${source} ${(bytes / 1024).toFixed(0)}`).join(", ")]));
  }
  section("Per function: what the bundle carries, largest first (KiB of minified output, from esbuild's metafile)");
  process.stdout.write(`${row(["function", "top contributors"])}\n${row(["---", "---"])}\n${carried.join("\n")}\n`);
}

/** A fresh Node process imports the module once: what a Lambda cold start pays for loading the code. */
function coldImportMs(url: string, hooks: string): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(url)}); process.stdout.write(String(performance.now() - t));`;
  const out = spawnSync(process.execPath, ["--import", hooks, "--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...process.env, AWS_REGION: "eu-west-1", POWERTOOLS_LOG_LEVEL: "SILENT" },
  });
  if (out.status !== 0) throw new Error(`import of ${url} failed: ${out.stderr}`);
  return Number(out.stdout);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

process.stdout.write(`# imdsv2-guard bench (${new Date().toISOString()}, Node ${process.version}, ${process.arch})\n`);
// BENCH_SECTIONS=flow,exposure runs only those sections (a quick look while working); the default is all of them.
const sections = (process.env.BENCH_SECTIONS ?? "flow,exposure,bundles,weather").split(",");
if (sections.includes("flow")) await flowFigures();
if (sections.includes("exposure")) await exposureFigures();
if (sections.includes("bundles")) await bundleFigures();
if (sections.includes("weather")) {
  section("Seeded AWS weather: the invariants over many seeds");
  await weatherFigures((text) => process.stdout.write(text));
}
// Not in the default: the 20,000-instance sweep alone runs for many minutes (issue 18's scale proof).
if (sections.includes("scale")) {
  section("Scale: a 5,000-instance launch and a 20,000-instance sweep, 50 maximum-length tags each (issue 18)");
  await scaleFigures((text) => process.stdout.write(text));
}
