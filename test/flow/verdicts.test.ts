import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { VERDICTS } from "../../shared/domain/model.js";
import {
  allResults,
  instanceIds,
  modifyEvent,
  runInstancesEvent,
  scenario,
  singleAccountScenario,
  verdictOf,
} from "./helpers.js";

describe("the state machine, end to end on the simulated account", () => {
  it("runs the default scenario to every verdict, one per instance per event, one report per event", async () => {
    // Act
    const run = await runFlow(singleAccountScenario());

    // Assess: five events and one sweep execution; a report per event with instances, the alert about refused
    // IMDSv1 calls, and the alert about the weakened account default.
    expect(run.executions.map((e) => e.status)).toEqual(Array(6).fill("succeeded"));
    expect(run.reports).toHaveLength(5);
    expect(run.alerts).toHaveLength(1);
    expect(run.accountDefaultAlerts).toHaveLength(1);
    expect(run.accountDefaultAlerts[0]?.change.weakened).toEqual(["HttpTokens set to optional"]);
    expect(verdictOf(run, "i-0a1b2c3d4e5f600b1", "c0ffee00-0000-4000-8000-000000000003")).toBe("pass");
    const trailFree = run.reports.find((r) => r.trigger === "state-change");
    expect(trailFree?.event.actor).toBe("actor unknown: no CloudTrail record");
    expect(trailFree?.results.map((r) => [r.instanceId, r.verdict])).toEqual([["i-0a1b2c3d4e5f600c1", "pass"]]);
    const verdicts = new Set(allResults(run).map((r) => r.verdict));
    expect([...verdicts].sort()).toEqual([...VERDICTS].sort());
    const launch = run.reports.find((r) => r.event.eventName === "RunInstances");
    const launched = (
      run.scenario.events[0] as { detail: { responseElements: { instancesSet: { items: { instanceId: string }[] } } } }
    ).detail.responseElements.instancesSet.items.map((i) => i.instanceId);
    expect(launch?.results.map((r) => r.instanceId).sort()).toEqual([...launched].sort());
  });

  it("passes an instance only after the probe saw IMDSv1 refused from inside it", async () => {
    // Prepare
    const [id = ""] = instanceIds(1);
    const s = scenario({ events: [runInstancesEvent([id])], instances: [{ id }] });

    // Act
    const run = await runFlow(s);

    // Assess
    const [result] = allResults(run);
    expect(result?.verdict).toBe("pass");
    expect(result?.reading).toEqual({
      v1: 401,
      v1Credentials: 401,
      token: 200,
      v2: 200,
      client: "curl",
      v6: { v1: null, v1Credentials: null, token: null, v2: null },
      answered: ["ipv4"],
    });
    expect(result?.secondsToApplied).toBe(20);
    expect(run.sim.modifiedInstanceIds).toEqual([id]);
    expect(run.sim.probeRuns.map((p) => p.instanceId)).toEqual([id]);
  });

  it("fails an instance whose metadata service still answers without a token, whatever the API says", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({ events: [runInstancesEvent([id])], instances: [{ id, imds: "answers-without-token" }] }),
    );
    const [result] = allResults(run);
    expect(result?.verdict).toBe("fail");
    expect(result?.reason).toMatch(/EC2 reports HttpTokens=required/);
    expect(run.sim.instance(id)?.httpTokens).toBe("required");
  });

  it("changes nothing in audit mode, and still proves what IMDSv1 does today", async () => {
    const [a = "", b = ""] = instanceIds(2);
    const run = await runFlow(
      scenario({
        settings: { mode: "audit" },
        events: [runInstancesEvent([a, b])],
        instances: [{ id: a }, { id: b, httpTokens: "required" }],
      }),
    );
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(0);
    expect(verdictOf(run, a)).toBe("fail");
    expect(verdictOf(run, b)).toBe("pass");
    expect(run.reports[0]?.mode).toBe("audit");
  });

  it("makes no modify call for an instance that already requires tokens, and still proves it", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({ events: [runInstancesEvent([id])], instances: [{ id, httpTokens: "required" }] }),
    );
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(0);
    expect(verdictOf(run, id)).toBe("pass");
  });

  it("re-enforces after someone turns IMDSv1 back on, and names them", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({
        events: [runInstancesEvent([id]), modifyEvent(id, "optional")],
        instances: [{ id }],
      }),
    );
    expect(run.sim.modifiedInstanceIds).toEqual([id, id]);
    const second = run.reports.find((r) => r.event.eventName === "ModifyInstanceMetadataOptions");
    expect(second?.event.actor).toMatch(/user\/someone$/);
    expect(second?.results.map((r) => r.verdict)).toEqual(["pass"]);
  });

  it("reports unverified, with the reason, when the agent is missing, the instance is stopped, or Run Command fails", async () => {
    const [noAgent = "", stopped = "", failed = "", timedOut = ""] = instanceIds(4);
    const run = await runFlow(
      scenario({
        settings: { managedTimeoutSeconds: 120 },
        events: [runInstancesEvent([noAgent, stopped, failed, timedOut])],
        instances: [
          { id: noAgent, ssm: "none" },
          { id: stopped, state: "stopped" },
          { id: failed, runCommand: "failed" },
          { id: timedOut, runCommand: "timed-out" },
        ],
      }),
    );
    const results = allResults(run);
    expect(results.map((r) => r.verdict)).toEqual(["unverified", "unverified", "unverified", "unverified"]);
    const reason = (id: string) => results.find((r) => r.instanceId === id)?.reason ?? "";
    expect(reason(noAgent)).toMatch(/AmazonSSMManagedInstanceCore/);
    expect(reason(stopped)).toMatch(/stopped.*takes effect when it starts/);
    expect(reason(failed)).toMatch(/status Failed/);
    expect(reason(timedOut)).toMatch(/status TimedOut/);
    expect(run.sim.instance(stopped)?.httpTokens).toBe("required");
  });

  it("skips terminated instances, including one terminated in mid-flow", async () => {
    const [gone = "", dying = ""] = instanceIds(2);
    const run = await runFlow(
      scenario({
        events: [runInstancesEvent([gone, dying])],
        instances: [
          { id: gone, state: "terminated" },
          { id: dying, terminateAfterSeconds: 10 },
        ],
      }),
    );
    expect(verdictOf(run, gone)).toBe("skipped");
    expect(verdictOf(run, dying)).toBe("skipped");
  });

  it("exempts by tag without touching the instance, and shows the reason", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({
        events: [runInstancesEvent([id])],
        instances: [{ id, tags: { "imdsv2-guard:exempt": "CHG-1234" } }],
      }),
    );
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(0);
    expect(run.sim.calls.SendCommand).toBe(0);
    expect(allResults(run)[0]).toMatchObject({ verdict: "exempt", reason: expect.stringContaining("CHG-1234") });
  });

  it("waits out EC2's eventual consistency right after launch", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({ events: [runInstancesEvent([id])], instances: [{ id, visibleAfterSeconds: 30 }] }),
    );
    expect(verdictOf(run, id)).toBe("pass");
  });

  it("reports an instance that never becomes visible as an error, not silence", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(scenario({ events: [runInstancesEvent([id])], instances: [] }));
    expect(allResults(run)).toEqual([expect.objectContaining({ instanceId: id, verdict: "error" })]);
    expect(run.sim.published).toHaveLength(1);
  });

  it("probes an IMDS-disabled instance without setting anything", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({ events: [runInstancesEvent([id])], instances: [{ id, httpEndpoint: "disabled" }] }),
    );
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(0);
    expect(allResults(run)[0]).toMatchObject({ verdict: "pass", reason: expect.stringMatching(/IMDS disabled/) });
  });

  it("reports a modify that AWS refuses as an error with the AWS error code", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({ events: [runInstancesEvent([id])], instances: [{ id, modifyError: "UnauthorizedOperation" }] }),
    );
    expect(allResults(run)[0]).toMatchObject({
      verdict: "error",
      reason: expect.stringMatching(/UnauthorizedOperation/),
    });
  });
});
