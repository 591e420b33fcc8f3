import { describe, expect, it } from "vitest";
import { type FlowRun, runFlow } from "../../local/runner/run-flow.js";
import { allResults, instanceIds, recordedRunInstancesEvent, scenario, watches } from "./helpers.js";

/**
 * A Lambda that dies after it did its work, every AWS call made, with its answer lost: the worst moment. Each step is
 * crashed that way once; the flow must still end every instance in one truthful verdict, notify, and watch exactly
 * the instances the guard changed.
 */

function crashAfter(step: string, invocation = 1) {
  return { lambdaCrashesAfter: { [step]: [invocation] } };
}

/** Software calling IMDSv1 on the instance, so the watch after enforcing alerts if (and only if) it covers it. */
async function launchWithV1Caller(options: Parameters<typeof runFlow>[1]) {
  const [id = ""] = instanceIds(1);
  const run = await runFlow(
    scenario({ events: [recordedRunInstancesEvent([id])], instances: [{ id, imdsV1CallsPerHour: 240 }] }),
    options,
  );
  return { id, run };
}

function expectOneVerdictEach(run: FlowRun, ids: string[]) {
  const results = allResults(run);
  expect(results.map((r) => r.instanceId).sort()).toEqual([...ids].sort());
  expect(run.executions.filter((e) => e.status === "failed")).toEqual([]);
}

/** The report names the guard as the one that set HttpTokens=required, from its stored intent, and the watch covers it. */
function expectTheGuardsChangeWatched(run: FlowRun, id: string) {
  const [result] = allResults(run);
  expect(result?.verdict).toBe("pass");
  if (run.sim.modifiedInstanceIds.length === 1) {
    expect(result?.enforcement).toEqual({ kind: "set-required", was: "optional", evidence: "intent-recorded" });
    expect(result?.action).toMatch(
      /^set HttpTokens=required \(was optional; the guard recorded the call before making it/,
    );
  } else {
    // The retry's describe still showed optional (it lags the crashed attempt's modify), so the retry called again.
    expect(result?.enforcement).toEqual({ kind: "set-required", was: "optional", evidence: "answered" });
  }
  expect(result?.enforcedAt).toBeDefined();
  expect(run.alerts).toHaveLength(1);
  expect(run.alerts[0]?.instances.map((i) => i.instanceId)).toEqual([id]);
}

describe("a Lambda that crashes after its AWS calls", () => {
  it("Enforce after its modify call: the report says the guard set HttpTokens=required, and the watch covers it", async () => {
    // Act
    const { id, run } = await launchWithV1Caller(crashAfter("Enforce"));

    // Assess
    expect(run.lambdaInvocations.Enforce).toBeGreaterThanOrEqual(2);
    // The retry found the change, or, when its describe still lags the crashed attempt's modify (EC2 is eventually
    // consistent, and the retry's backoff has full jitter), set the same value once more: never another instance.
    expect(new Set(run.sim.modifiedInstanceIds)).toEqual(new Set([id]));
    expectOneVerdictEach(run, [id]);
    expectTheGuardsChangeWatched(run, id);
  });

  it("Enforce right after ModifyInstanceMetadataOptions took effect, before anything else: the same truthful report", async () => {
    const { id, run } = await launchWithV1Caller({
      lambdaCrashesAfterCall: { Enforce: { api: "ModifyInstanceMetadataOptions", invocations: [1] } },
    });
    expect(run.lambdaInvocations.Enforce).toBeGreaterThanOrEqual(2);
    // The retry's describe may still show optional (EC2 is eventually consistent), so it may set required again.
    expect(new Set(run.sim.modifiedInstanceIds)).toEqual(new Set([id]));
    expectOneVerdictEach(run, [id]);
    expectTheGuardsChangeWatched(run, id);
  });

  it("Enforce after storing its intent, before its modify call: the retry makes the call, once", async () => {
    const { id, run } = await launchWithV1Caller({
      lambdaCrashesAfterCall: { Enforce: { api: "PutItem", invocations: [1] } },
    });
    expect(run.lambdaInvocations.Enforce).toBeGreaterThanOrEqual(2);
    expect(run.sim.calls.PutItem).toBeGreaterThanOrEqual(2); // the crashed attempt's intent, and the retry's
    expect(run.sim.modifiedInstanceIds).toEqual([id]);
    expectOneVerdictEach(run, [id]);
    const [result] = allResults(run);
    expect(result).toMatchObject({ verdict: "pass", enforcement: { kind: "set-required", evidence: "answered" } });
    expect(run.alerts.map((a) => a.instances.map((i) => i.instanceId))).toEqual([[id]]);
  });

  it("Enforce, where the instance reads required though the event recorded optional: sets it again, and says why", async () => {
    // The event recorded `optional`, but the instance is `required` before the guard's first attempt: someone else
    // changed it, or the describe lags a change to optional. The guard cannot tell, so it sets required again.
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({ events: [recordedRunInstancesEvent([id])], instances: [{ id, httpTokens: "required" }] }),
    );
    expect(run.sim.modifiedInstanceIds).toEqual([id]);
    const [result] = allResults(run);
    expect(result?.enforcement).toEqual({ kind: "set-required", was: "optional", evidence: "reasserted" });
    expect(result?.action).toMatch(/describe already showed required.*set it again/);
    expect(run.alerts).toEqual([]);
  });

  it("Enforce after every attempt: error, saying HttpTokens may have been set, still notified", async () => {
    const { id, run } = await launchWithV1Caller({ lambdaCrashesAfter: { Enforce: [1, 2, 3, 4, 5, 6, 7, 8] } });
    expectOneVerdictEach(run, [id]);
    expect(run.reports).toHaveLength(1);
    const [result] = allResults(run);
    expect(result?.verdict).toBe("error");
    expect(result?.reason).toMatch(/Lambda\.Unknown.*HttpTokens may or may not have been set to required/);
  });

  it.each(["AdmitEvent", "CheckApplied", "CheckManaged", "CheckProbe", "FinalizeBatch"])(
    "%s: retried, one verdict per instance, one report, the enforced instance watched",
    async (step) => {
      const { id, run } = await launchWithV1Caller(crashAfter(step));
      expect(run.lambdaInvocations[step]).toBeGreaterThanOrEqual(2);
      expectOneVerdictEach(run, [id]);
      expect(run.reports).toHaveLength(1);
      expect(allResults(run)[0]).toMatchObject({
        verdict: "pass",
        enforcement: { kind: "set-required", evidence: "answered" },
      });
      expect(run.sim.modifiedInstanceIds).toEqual([id]);
      expect(run.alerts.map((a) => a.instances.map((i) => i.instanceId))).toEqual([[id]]);
    },
  );

  it("SendProbe after its SendCommand: not retried (a second probe), so error with the cause; the change is still reported and watched", async () => {
    const { id, run } = await launchWithV1Caller(crashAfter("SendProbe"));
    expect(run.lambdaInvocations.SendProbe).toBe(1);
    expect(run.sim.calls.SendCommand).toBe(1);
    expectOneVerdictEach(run, [id]);
    const [result] = allResults(run);
    expect(result?.verdict).toBe("error");
    expect(result?.reason).toMatch(/Lambda\.Unknown/);
    expect(result?.enforcement?.kind).toBe("set-required");
    expect(run.alerts.map((a) => a.instances.map((i) => i.instanceId))).toEqual([[id]]);
  });

  it("Notify after its publish: retried, so the report may arrive twice, identical, and the watch is booked once", async () => {
    const { id, run } = await launchWithV1Caller(crashAfter("Notify"));
    // The crashed report and its retry; the alert is CheckRejected's, sent when the schedule fires.
    expect(run.lambdaInvocations.Notify).toBe(2);
    // At least once: a duplicate report beats a lost one (CRASH_SAFE in infra/state-machine.ts).
    expect(run.reports).toHaveLength(2);
    expect(run.reports[0]?.results).toEqual(run.reports[1]?.results);
    expect(run.reports[0]?.results.map((r) => r.instanceId)).toEqual([id]);
    // Both attempts asked for the event's schedule; the retry found the first one's (ConflictException).
    expect(run.sim.calls.CreateSchedule).toBe(2);
    expect(run.sim.schedulesCreated).toHaveLength(1);
    expect(watches(run).map((a) => a.functionName)).toEqual(["CheckRejected"]);
    expect(run.alerts).toHaveLength(1);
  });

  it("AdmitEvent after it started the execution: Lambda's retry starts nothing more", async () => {
    const { run } = await launchWithV1Caller(crashAfter("AdmitEvent"));
    // The first attempt claimed the instance and started the execution, then lost its result; Lambda retried a
    // minute later, found its own claim, and asked for the same execution name, which Step Functions refused.
    const intake = run.asyncInvocations.filter((a) => a.functionName === "AdmitEvent");
    expect(intake).toHaveLength(1);
    expect(intake[0]).toMatchObject({ attempts: 2, output: { outcome: "already-started" } });
    expect(run.executions).toHaveLength(1);
    expect(run.reports).toHaveLength(1);
  });

  it("AdmitEvent failing every attempt: the event ends in the dead-letter queue, not in silence", async () => {
    const { run } = await launchWithV1Caller({ lambdaFaults: { AdmitEvent: [1, 2, 3] } });
    expect(run.lambdaInvocations.AdmitEvent).toBe(3);
    expect(run.asyncInvocations.find((a) => a.functionName === "AdmitEvent")?.deadLettered).toContain("Lambda.Unknown");
    expect(run.executions).toHaveLength(0);
  });

  it("CheckRejected after its read: retried by Lambda's asynchronous invocation, one alert", async () => {
    const { id, run } = await launchWithV1Caller({
      lambdaCrashesAfterCall: { CheckRejected: { api: "GetMetricData", invocations: [1] } },
    });
    expect(run.lambdaInvocations.CheckRejected).toBe(2);
    expect(watches(run)).toEqual([expect.objectContaining({ functionName: "CheckRejected", attempts: 2 })]);
    expectOneVerdictEach(run, [id]);
    expect(run.alerts.map((a) => a.instances.map((i) => i.instanceId))).toEqual([[id]]);
  });

  it("CheckRejected after its publish: retried, so the alert may arrive twice (a duplicate beats a lost one)", async () => {
    const { id, run } = await launchWithV1Caller(crashAfter("CheckRejected"));
    expect(run.lambdaInvocations.CheckRejected).toBe(2);
    expect(run.alerts.map((a) => a.instances.map((i) => i.instanceId))).toEqual([[id], [id]]);
  });

  it("CheckRejected failing every attempt: dead-lettered after Lambda's two retries, no alert, the report kept", async () => {
    const { id, run } = await launchWithV1Caller({ lambdaFaults: { CheckRejected: [1, 2, 3] } });
    expect(run.lambdaInvocations.CheckRejected).toBe(3);
    expect(watches(run)).toEqual([
      expect.objectContaining({
        functionName: "CheckRejected",
        attempts: 3,
        deadLettered: expect.stringContaining("Lambda.Unknown"),
        payload: expect.objectContaining({ watch: expect.objectContaining({ instanceIds: [id] }) }),
      }),
    ]);
    expect(run.alerts).toEqual([]);
    expect(run.reports).toHaveLength(1);
    expectOneVerdictEach(run, [id]);
    expect(run.fallbacks).toEqual([]);
    // The schedule fired (Lambda accepted the event), so Scheduler deleted it.
    expect(run.sim.schedules.size).toBe(0);
  });
});
