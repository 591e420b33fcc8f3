import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { allResults, instanceIds, intakeOutcomes, runInstancesEvent, scenario, verdictOf } from "./helpers.js";

/** Every instance of every event has exactly one verdict, and every event exactly one notification. */
function expectNothingLost(
  run: Awaited<ReturnType<typeof runFlow>>,
  expectedInstances: number,
  expectedEvents: number,
) {
  const results = allResults(run);
  expect(results).toHaveLength(expectedInstances);
  expect(new Set(results.map((r) => `${r.eventId}/${r.instanceId}`)).size).toBe(expectedInstances);
  expect(run.sim.published).toHaveLength(expectedEvents);
  expect(run.executions.filter((e) => e.status === "failed")).toEqual([]);
}

/** No instance was modified twice: the guard never repeats a change that went through. */
function expectNoDoubleModify(run: Awaited<ReturnType<typeof runFlow>>) {
  expect(run.sim.modifiedInstanceIds.length).toBe(new Set(run.sim.modifiedInstanceIds).size);
}

describe("faults in the simulated account", () => {
  it("rides out EC2 throttling at AWS's documented bucket rates on a 150-instance launch", async () => {
    // Prepare
    const ids = instanceIds(150);
    const s = scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) });

    // Act
    const run = await runFlow(s, { faults: { ec2Throttling: true } });

    // Assess
    expect(run.sim.throttled.ModifyInstanceMetadataOptions).toBeGreaterThan(0);
    expectNothingLost(run, 150, 1);
    expectNoDoubleModify(run);
    expect(allResults(run).every((r) => r.verdict === "pass")).toBe(true);
  });

  it("rides out SendCommand throttling", async () => {
    const ids = instanceIds(120);
    const run = await runFlow(scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) }), {
      faults: { sendCommandBucket: { capacity: 1, refillPerSecond: 0.2 } },
    });
    expect(run.sim.throttled.SendCommand).toBeGreaterThan(0);
    expectNothingLost(run, 120, 1);
    expect(allResults(run).every((r) => r.verdict === "pass")).toBe(true);
  });

  it("rides out transient 5xx on every API it calls, without modifying anything twice", async () => {
    const ids = instanceIds(20);
    const run = await runFlow(scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) }), {
      faults: {
        transient5xx: {
          DescribeInstances: 0.3,
          ModifyInstanceMetadataOptions: 0.3,
          DescribeInstanceInformation: 0.3,
          SendCommand: 0.5,
          GetCommandInvocation: 0.3,
        },
      },
    });
    expectNothingLost(run, 20, 1);
    expectNoDoubleModify(run);
    expect(allResults(run).map((r) => r.verdict)).toEqual(Array(20).fill("pass"));
  });

  it("retries a crashed Enforce (it describes before it modifies), with no second modify call", async () => {
    const ids = instanceIds(3);
    const run = await runFlow(scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) }), {
      lambdaFaults: { Enforce: [1, 2] },
    });
    expect(run.lambdaInvocations.Enforce).toBeGreaterThanOrEqual(3);
    expectNothingLost(run, 3, 1);
    expectNoDoubleModify(run);
    expect(allResults(run).map((r) => r.verdict)).toEqual(["pass", "pass", "pass"]);
  });

  it("does not retry a crashed SendProbe, and reports the batch as error with the cause instead of dropping it", async () => {
    const ids = instanceIds(2);
    const run = await runFlow(scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) }), {
      lambdaFaults: { SendProbe: [1] },
    });
    expect(run.lambdaInvocations.SendProbe).toBe(1);
    expectNothingLost(run, 2, 1);
    for (const r of allResults(run)) {
      expect(r.verdict).toBe("error");
      expect(r.reason).toMatch(/Lambda\.Unknown/);
    }
  });

  it("still notifies when every retry of a step fails: unfinished instances become errors", async () => {
    const ids = instanceIds(2);
    const run = await runFlow(scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) }), {
      lambdaFaults: { CheckApplied: [1, 2, 3, 4, 5, 6, 7] },
    });
    expectNothingLost(run, 2, 1);
    expect(allResults(run).map((r) => r.verdict)).toEqual(["error", "error"]);
  });

  it("retries SNS publish errors until the notification is delivered, once", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(scenario({ events: [runInstancesEvent([id])], instances: [{ id }] }), {
      faults: { publishFailures: 3 },
    });
    expect(run.sim.calls.Publish).toBe(4);
    expectNothingLost(run, 1, 1);
  });

  it("survives a crashed Notify by retrying it", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(scenario({ events: [runInstancesEvent([id])], instances: [{ id }] }), {
      lambdaFaults: { Notify: [1] },
    });
    expectNothingLost(run, 1, 1);
  });
});

describe("an unavailable event ledger", () => {
  it("still reports every verdict: the batches return them inline, and the report says what was lost", async () => {
    // Prepare
    const [fails = "", passes = ""] = instanceIds(2);
    const s = scenario({
      events: [runInstancesEvent([fails, passes])],
      instances: [{ id: fails, imds: "answers-without-token" }, { id: passes }],
    });

    // Act
    const run = await runFlow(s, { faults: { ledgerUnavailable: true } });

    // Assess
    expectNothingLost(run, 2, 1);
    expect(verdictOf(run, fails)).toBe("fail");
    expect(verdictOf(run, passes)).toBe("pass");
    expect(run.reports[0]?.notice).toMatch(/stored verdicts could not be read/);
  });
});

describe("duplicate deliveries", () => {
  it("turn a second delivery of the same event into a no-op: no second modify, no second notification", async () => {
    // Prepare
    const ids = instanceIds(3);
    const s = scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) });

    // Act
    const run = await runFlow(s, { duplicateDeliveries: [0] });

    // Assess: the redelivery's intake asks for the same execution name, which Step Functions refuses to start twice.
    expect(run.executions).toHaveLength(1);
    expect(intakeOutcomes(run).sort()).toEqual(["already-started", "started"]);
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(3);
    expect(run.sim.published).toHaveLength(1);
    expect(run.sim.calls.SendCommand).toBe(1);
  });
});

describe("the reconciliation sweep", () => {
  it("finds instances that still allow IMDSv1, skips exempt and compliant ones, and runs them through the flow", async () => {
    // Prepare
    const [optional = "", exempt = "", compliant = "", stopped = "", gone = ""] = instanceIds(5, "0a");
    const s = scenario({
      sweepAtSeconds: [0],
      instances: [
        { id: optional },
        { id: exempt, tags: { "imdsv2-guard:exempt": "vendor agent" } },
        { id: compliant, httpTokens: "required" },
        { id: stopped, state: "stopped" },
        { id: gone, state: "terminated" },
      ],
    });

    // Act
    const run = await runFlow(s);

    // Assess
    expect(run.sweeps).toEqual([expect.objectContaining({ found: 3, exempt: 1 })]);
    expect(verdictOf(run, optional)).toBe("pass");
    expect(verdictOf(run, stopped)).toBe("unverified");
    expect(verdictOf(run, exempt)).toBeUndefined();
    expect(verdictOf(run, compliant)).toBeUndefined();
    expect(run.sim.instance(exempt)?.httpTokens).toBe("optional");
    expect(run.reports[0]?.event).toMatchObject({ source: "sweep", eventName: "ReconciliationSweep" });
  });

  it("splits a large fleet into several executions and pages through DescribeInstances", async () => {
    const ids = instanceIds(450, "0b");
    const run = await runFlow(scenario({ sweepAtSeconds: [0], instances: ids.map((id) => ({ id })) }), {
      sweepInstancesPerExecution: 200,
    });
    expect(run.sweeps[0]?.executions.map((e) => e.instances)).toEqual([200, 200, 50]);
    expectNothingLost(run, 450, 3);
  });

  it("does not start the same work twice when the scheduled sweep is retried in the same minute", async () => {
    // An SCP keeps this instance on IMDSv1, so the retried sweep finds it again.
    const [id = ""] = instanceIds(1, "0c");
    const run = await runFlow(
      scenario({ sweepAtSeconds: [0, 30], instances: [{ id, modifyError: "UnauthorizedOperation" }] }),
    );
    expect(run.sweeps.map((sw) => sw.executions.map((e) => e.alreadyStarted))).toEqual([[false], [true]]);
    expectNothingLost(run, 1, 1);
  });
});
