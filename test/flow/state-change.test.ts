import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { plainText } from "../../shared/report/report.js";
import {
  ACCOUNT,
  allResults,
  intakeOutcomes,
  runInstancesEvent,
  scenario,
  startInstancesEvent,
  stateChangeEvent,
  verdictOf,
} from "./helpers.js";

const ID = "i-0f1e2d3c4b5a60051";
const DEPLOYER = `arn:aws:sts::${ACCOUNT}:assumed-role/Deployer/ci`;
/** Simulated seconds from the start of the run to the moment EC2 applied HttpTokens=required. */
function appliedAtSeconds(run: Awaited<ReturnType<typeof runFlow>>, id: string): number | undefined {
  const applied = run.sim.instance(id)?.tokenHistory.find((h) => h.tokens === "required");
  return applied ? (applied.at - Date.parse("2026-11-28T09:00:00Z")) / 1000 : undefined;
}

function delayed<T extends object>(event: T, eventDelaySeconds: number): T & { eventDelaySeconds: number } {
  return { ...event, eventDelaySeconds };
}

describe("the state-change fast path: one verdict and one report per launch, whatever the order", () => {
  it("state-change before the record: enforced within seconds, reported with the record's actor", async () => {
    // Prepare: EC2's notification 2 s after the launch, the CloudTrail record 150 s after it.
    const s = scenario({
      eventSpacingSeconds: 0,
      settings: { watchRejectedSeconds: 0 },
      events: [delayed(stateChangeEvent(ID, 2), 2), delayed(runInstancesEvent([ID], "e-run-sc"), 150)],
      instances: [{ id: ID }],
    });

    // Act
    const run = await runFlow(s);

    // Assess
    expect(run.reports).toHaveLength(1);
    expect(allResults(run).map((r) => [r.instanceId, r.verdict])).toEqual([[ID, "pass"]]);
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(1);
    const [report] = run.reports;
    expect(report?.trigger).toBe("state-change");
    expect(report?.event.actor).toBe(DEPLOYER);
    expect(report?.notice).toContain("actor and launch template from RunInstances e-run-sc");
    // Applied seconds after pending, long before the record arrived.
    expect(appliedAtSeconds(run, ID)).toBeLessThan(40);
  });

  it("record before the state-change: the record's execution does the work, the notification adds nothing", async () => {
    const s = scenario({
      eventSpacingSeconds: 0,
      settings: { watchRejectedSeconds: 0 },
      events: [runInstancesEvent([ID], "e-run-first"), delayed(stateChangeEvent(ID, 5), 5)],
      instances: [{ id: ID }],
    });
    const run = await runFlow(s);
    expect(run.reports).toHaveLength(1);
    expect(run.reports[0]?.event.eventId).toBe("e-run-first");
    expect(run.reports[0]?.event.actor).toBe(DEPLOYER);
    expect(allResults(run)).toHaveLength(1);
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(1);
    // The notification's intake finds the instance claimed by the record's execution and starts nothing.
    expect(run.executions).toHaveLength(1);
    expect(run.executions.every((e) => e.status === "succeeded")).toBe(true);
    expect(intakeOutcomes(run)).toEqual(["started", "claimed-elsewhere"]);
  });

  it("a record that carries LaunchTime claims the same occurrence as the notification that described it", async () => {
    // Real RunInstances records carry each instance's launchTime: the record's intake reads no DescribeInstances.
    const record = runInstancesEvent([ID], "e-run-lt");
    record.detail.responseElements.instancesSet.items = [
      { instanceId: ID, launchTime: Date.parse("2026-11-28T09:00:00Z") } as never,
    ];
    const s = scenario({
      eventSpacingSeconds: 0,
      settings: { watchRejectedSeconds: 0 },
      events: [delayed(stateChangeEvent(ID, 2), 2), delayed(record, 150)],
      instances: [{ id: ID }],
    });
    const run = await runFlow(s);
    expect(run.reports).toHaveLength(1);
    expect(run.reports[0]?.event.actor).toBe(DEPLOYER);
    expect(intakeOutcomes(run)).toEqual(["started", "claimed-elsewhere"]);
  });

  it("state-change with no record: the report goes out at the attribution deadline, actor unknown", async () => {
    const s = scenario({
      settings: { watchRejectedSeconds: 0 },
      attributionTimeoutSeconds: 900,
      events: [stateChangeEvent(ID, 0)],
      instances: [{ id: ID, tags: { "aws:ec2launchtemplate:id": "lt-0123456789abcdef0" } }],
    });
    const run = await runFlow(s);
    expect(run.reports).toHaveLength(1);
    const [report] = run.reports;
    expect(verdictOf(run, ID)).toBe("pass");
    expect(report?.event.actor).toBe("actor unknown: no CloudTrail record");
    const text = report ? plainText(report) : "";
    expect(text).toContain("Actor:   actor unknown: no CloudTrail record");
    expect(text).toContain("origin: launch template lt-0123456789abcdef0");
    // Enforced at once; only the report waited for the record.
    expect(appliedAtSeconds(run, ID)).toBeLessThan(40);
    expect(run.lastReportSeconds).toBeGreaterThanOrEqual(900);
  });

  it("the record arriving late (after the deadline) adds no second verdict or report", async () => {
    const s = scenario({
      eventSpacingSeconds: 0,
      settings: { watchRejectedSeconds: 0 },
      attributionTimeoutSeconds: 120,
      events: [stateChangeEvent(ID, 0), delayed(runInstancesEvent([ID], "e-run-late"), 600)],
      instances: [{ id: ID }],
    });
    const run = await runFlow(s);
    expect(run.reports).toHaveLength(1);
    expect(run.reports[0]?.event.actor).toBe("actor unknown: no CloudTrail record");
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(1);
  });

  it("a redelivered state-change notification is one report too (at-least-once delivery)", async () => {
    const s = scenario({
      eventSpacingSeconds: 0,
      settings: { watchRejectedSeconds: 0 },
      attributionTimeoutSeconds: 60,
      events: [stateChangeEvent(ID, 0)],
      instances: [{ id: ID }],
    });
    const run = await runFlow(s, { duplicateDeliveries: [0] });
    // The redelivery's intake asks for the same execution name, which Step Functions refuses to start twice.
    expect(run.executions).toHaveLength(1);
    expect(intakeOutcomes(run).sort()).toEqual(["already-started", "started"]);
    expect(run.reports).toHaveLength(1);
  });

  it("a start heard twice (StartInstances and pending) is one verdict, with the safety gate", async () => {
    const s = scenario({
      eventSpacingSeconds: 0,
      settings: { watchRejectedSeconds: 0 },
      events: [delayed(stateChangeEvent(ID, 1), 1), delayed(startInstancesEvent([ID], "e-start-sc"), 90)],
      instances: [{ id: ID, state: "stopped", ageHours: 300 }],
    });
    const run = await runFlow(s);
    expect(run.reports).toHaveLength(1);
    expect(allResults(run)).toHaveLength(1);
    expect(run.reports[0]?.event.actor).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/Operator/ops`);
    // The safety gate read the started instance's IMDSv1 history.
    expect(run.sim.calls.GetMetricData).toBeGreaterThanOrEqual(1);
  });
});
