import { type FlowRun, runFlow } from "../local/runner/run-flow.js";
import { parseScenario, type Scenario } from "../local/runner/scenario.js";
import { type LedgerApi, SimLedger } from "../local/sim/dynamodb.js";

/**
 * Issue 18's scale proof: a 5,000-instance RunInstances launch and a 20,000-instance sweep, every instance with the
 * most tags EC2 allows at their longest ("Tag your Amazon EC2 resources": 50 tags per resource, keys up to 128 and
 * values up to 256 characters), must end with one verdict per instance and every state under Step Functions' 256 KiB
 * ("Step Functions service quotas": 256 KiB per state input or output). The runner enforces that limit uncatchably
 * (local/runner/aws-quotas.ts) and dynalite refuses an item over DynamoDB's 400 KB, so a run that ends well proves
 * both; the table shows how close each came.
 */

const ACCOUNT = "111122223333";
const LAUNCHED_AT = "2026-11-28T09:00:00Z";
const TAGS_PER_INSTANCE = 50;
const TAG_KEY_CHARS = 128;
const TAG_VALUE_CHARS = 256;

function ids(n: number, prefix: string): string[] {
  return Array.from({ length: n }, (_, i) => `i-0${prefix}${i.toString(16).padStart(15, "0")}`);
}

/**
 * 50 tags of maximum length. Keys are shared by the fleet, as real tag schemes are; every value names its instance,
 * so no two instances' tag text is the same string (nothing here is smaller in memory than it would be in AWS).
 */
function maxTags(instanceId: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (let t = 0; t < TAGS_PER_INSTANCE; t++) {
    tags[`team:tag-${t}-`.padEnd(TAG_KEY_CHARS, "k")] = `${instanceId}/${t}/`.padEnd(TAG_VALUE_CHARS, "v");
  }
  return tags;
}

/**
 * One RunInstances call of `n` instances with maximum tags, as CloudTrail records it. Its `responseElements` is over
 * CloudTrail's field size long before 5,000 instances (local/sim/sim-eventbridge.ts), so it reaches the guard
 * truncated (`omitted: true`), and the guard finds the launch from `requestParameters` (clientToken, maxCount,
 * imageId) with DescribeInstances.
 */
export function maxTagLaunchScenario(n: number): Scenario {
  const all = ids(n, "d");
  const clientToken = "scale-launch-0001";
  const reservationId = "r-0d00000000000001";
  const tagSet = { items: Object.entries(maxTags("i-template")).map(([key, value]) => ({ key, value })) };
  return parseScenario(
    {
      name: `max-tag-launch-${n}`,
      events: [
        {
          version: "0",
          id: "delivery-scale-launch",
          "detail-type": "AWS API Call via CloudTrail",
          source: "aws.ec2",
          account: ACCOUNT,
          region: "eu-west-1",
          time: LAUNCHED_AT,
          detail: {
            eventName: "RunInstances",
            eventSource: "ec2.amazonaws.com",
            eventID: "scale-launch",
            eventTime: LAUNCHED_AT,
            userIdentity: { type: "AssumedRole", arn: `arn:aws:sts::${ACCOUNT}:assumed-role/Autoscaler/scale` },
            requestParameters: {
              clientToken,
              instancesSet: { items: [{ imageId: "ami-0abcdef1234567890", minCount: n, maxCount: n }] },
              tagSpecificationSet: { items: [{ resourceType: "instance", tags: tagSet.items }] },
            },
            responseElements: {
              reservationId,
              instancesSet: {
                items: all.map((instanceId) => ({ instanceId, launchTime: Date.parse(LAUNCHED_AT), tagSet })),
              },
            },
          },
        },
      ],
      instances: all.map((id) => ({ id, tags: maxTags(id), reservationId, clientToken })),
    },
    "max-tag-launch",
  );
}

/**
 * A scheduled sweep at second 0 over `n` running instances that allow IMDSv1 and have run for two days without
 * using it, so the safety gate lets the guard enforce them all; executions at their largest (1,000 instances).
 */
export function maxTagSweepScenario(n: number): Scenario {
  return parseScenario(
    {
      name: `max-tag-sweep-${n}`,
      settings: { sweepInstancesPerExecution: 1000 },
      sweepAtSeconds: [0],
      instances: ids(n, "e").map((id) => ({
        id,
        httpTokens: "optional",
        ageHours: 48,
        imdsV1CallsPerHour: 0,
        tags: maxTags(id),
      })),
    },
    "max-tag-sweep",
  );
}

/**
 * The largest item the ledger was asked to write, measured in front of dynalite: PutItem's and BatchWriteItem's
 * items whole, UpdateItem's new values only (a lower bound for the item it updates). DynamoDB's own measure ("Item
 * size and format") counts names and values in UTF-8; the JSON of the typed item is a little above it.
 */
function watchLedgerWrites(): { largest: () => { bytes: number; api: string; key: string }; stop: () => void } {
  const original = SimLedger.prototype.answer;
  let largest = { bytes: 0, api: "", key: "" };
  const seen = (api: string, item: unknown, key: string) => {
    const bytes = Buffer.byteLength(JSON.stringify(item ?? {}));
    if (bytes > largest.bytes) largest = { bytes, api, key };
  };
  SimLedger.prototype.answer = function (this: SimLedger, api: LedgerApi, request: unknown): Promise<unknown> {
    const r = request as Record<string, unknown>;
    const keyOf = (item: unknown) => {
      const i = item as Record<string, { S?: string }> | undefined;
      return `${i?.eventId?.S ?? "?"} / ${i?.item?.S ?? "?"}`;
    };
    if (api === "PutItem") seen(api, r.Item, keyOf(r.Item));
    if (api === "UpdateItem") seen(api, r.ExpressionAttributeValues, keyOf(r.Key));
    if (api === "BatchWriteItem") {
      for (const writes of Object.values(
        (r.RequestItems ?? {}) as Record<string, { PutRequest?: { Item?: unknown } }[]>,
      ))
        for (const w of writes) if (w.PutRequest) seen(api, w.PutRequest.Item, keyOf(w.PutRequest.Item));
    }
    return original.call(this, api, request);
  };
  return {
    largest: () => largest,
    stop: () => {
      SimLedger.prototype.answer = original;
    },
  };
}

/**
 * The SNS messages that carried reports (alert topic only): one per report, or a split report's parts (shared/report
 * snsMessages). Last-resort messages have no machine copy and are counted as fallbacks instead.
 */
function reportMessages(run: FlowRun): number {
  return run.sim.published.filter((p) => {
    const message = JSON.parse(p.input.Message ?? "{}") as { sqs?: string };
    return (
      message.sqs !== undefined && (JSON.parse(message.sqs) as { schema?: string }).schema === "imdsv2-guard.report.v1"
    );
  }).length;
}

function row(cells: (string | number)[]): string {
  return `| ${cells.join(" | ")} |`;
}

function figures(
  name: string,
  scenario: Scenario,
  run: FlowRun,
  ledger: { bytes: number; api: string; key: string },
  wallMs: number,
  heapMiB: number,
): string[] {
  const count = new Map<string, number>();
  const byVerdict: Record<string, number> = {};
  let verdicts = 0;
  for (const report of run.reports) {
    for (const r of report.results) {
      verdicts++;
      byVerdict[r.verdict] = (byVerdict[r.verdict] ?? 0) + 1;
      count.set(r.instanceId, (count.get(r.instanceId) ?? 0) + 1);
    }
  }
  const notOne = scenario.instances.filter((i) => count.get(i.id) !== 1).length;
  const failed = run.executions.filter((e) => e.status === "failed");
  const maxState = Math.max(0, ...run.executions.map((e) => e.stats.maxStatePayloadBytes));
  const errors = [...new Set(failed.map((e) => (e.error ?? "").slice(0, 300)))];
  return [
    row([
      name,
      scenario.instances.length.toLocaleString("en-US"),
      `${verdicts.toLocaleString("en-US")} (${Object.entries(byVerdict)
        .map(([v, n]) => `${v} ${n.toLocaleString("en-US")}`)
        .join(", ")})`,
      notOne.toLocaleString("en-US"),
      `${run.executions.length - failed.length} / ${failed.length}`,
      `${maxState.toLocaleString("en-US")} (${((maxState / 262_144) * 100).toFixed(1)} %)`,
      `${ledger.bytes.toLocaleString("en-US")} (${ledger.api}: ${ledger.key.slice(0, 60)})`,
      `${run.reports.length} / ${reportMessages(run)} / ${run.fallbacks.length} / ${run.refusedDeliveries.length} / ${run.truncatedDeliveries.length}`,
      run.simulatedSeconds.toFixed(0),
      (wallMs / 1000).toFixed(0),
      heapMiB.toFixed(0),
    ]),
    ...errors.map((e) => `\n  failed execution: ${e}`),
    ...run.incompleteReports.map(
      (r) => `\n  report incomplete: ${r.event} has part(s) ${r.parts.join(", ")} of ${r.of}, not all`,
    ),
    // A report SNS would not take reaches nobody: its verdicts are in the ledger only, so they are not counted above.
    ...[...new Set(run.fallbacks.map((f) => f.split("\n").find((l) => l.startsWith("Why:")) ?? f.slice(0, 300)))].map(
      (why) => `\n  report not published (fallback): ${why}`,
    ),
  ];
}

/** `BENCH_SECTIONS=scale npm run bench`. BENCH_SCALE_LAUNCH / BENCH_SCALE_SWEEP change the sizes (0 skips a run). */
export async function scaleFigures(write: (text: string) => void): Promise<void> {
  const launchSize = Number(process.env.BENCH_SCALE_LAUNCH ?? 5000);
  const sweepSize = Number(process.env.BENCH_SCALE_SWEEP ?? 20_000);
  write(
    `Every instance with ${TAGS_PER_INSTANCE} tags of ${TAG_KEY_CHARS} + ${TAG_VALUE_CHARS} characters. Probes computed ` +
      "(`faults.computedProbes`): the probe scripts are not the subject here, the state's size and the verdicts are. " +
      "Largest state: the most any execution's state input or output reached (quota 262,144 B, enforced uncatchably). " +
      "Largest ledger write: JSON bytes of the item as written (UpdateItem: its new values only); DynamoDB's limit is 400 KB.\n\n",
  );
  write(
    `${row(["run", "instances", "verdicts (by verdict)", "instances without exactly one verdict", "executions succeeded / failed", "largest state B (% of 256 KiB)", "largest ledger write B", "reports / SNS messages of reports (parts) / fallbacks / refused / truncated deliveries", "simulated s", "wall s", "heap after MiB"])}\n`,
  );
  write(`${row(["---", "---:", "---", "---:", "---:", "---:", "---", "---:", "---:", "---:", "---:"])}\n`);
  const runs: { name: string; build: () => Scenario }[] = [];
  if (launchSize > 0)
    runs.push({
      name: `RunInstances launch of ${launchSize.toLocaleString("en-US")}`,
      build: () => maxTagLaunchScenario(launchSize),
    });
  if (sweepSize > 0)
    runs.push({
      name: `sweep of ${sweepSize.toLocaleString("en-US")}, 1,000 per execution`,
      build: () => maxTagSweepScenario(sweepSize),
    });
  for (const { name, build } of runs) {
    const scenario = build();
    const ledger = watchLedgerWrites();
    const t = performance.now();
    try {
      const run = await runFlow(scenario, { faults: { computedProbes: true } });
      const wall = performance.now() - t;
      const heap = process.memoryUsage().heapUsed / 2 ** 20;
      for (const line of figures(name, scenario, run, ledger.largest(), wall, heap)) write(`${line}\n`);
    } catch (error) {
      write(
        `${row([name, scenario.instances.length, `the run threw: ${error instanceof Error ? error.message.slice(0, 500) : String(error)}`, "", "", "", String(ledger.largest().bytes), "", "", ((performance.now() - t) / 1000).toFixed(0), ""])}\n`,
      );
    } finally {
      ledger.stop();
    }
  }
}
