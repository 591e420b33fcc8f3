import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { allResults, instanceIds, runInstancesEvent, scenario } from "./helpers.js";

/**
 * EC2's describes lag a modify ("Eventual consistency in the Amazon EC2 API"): CheckApplied must never turn a stale
 * `optional` into `fail`, and must still end `fail` when something really reverts the change.
 */
describe("CheckApplied under lagging describes", () => {
  it("never fails from stale reads: describes that lag the modify by 25-35 s, several CheckApplied rounds, pass", async () => {
    // Prepare
    const ids = instanceIds(3);
    const lagging = { weather: { seed: 3, describeLagMinSeconds: 25, describeLagMaxSeconds: 35 } };

    // Act
    const run = await runFlow(scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) }), {
      faults: lagging,
    });

    // Assess
    const results = allResults(run);
    expect(results.map((r) => r.verdict)).toEqual(["pass", "pass", "pass"]);
    expect(results.every((r) => r.enforcement?.kind === "set-required")).toBe(true);
    // The stale reads happened: CheckApplied described more than once per instance batch before moving on.
    expect(run.sim.calls.DescribeInstances).toBeGreaterThanOrEqual(4);
  });

  it("still fails a real revert: something sets HttpTokens back to optional seconds after the guard's change", async () => {
    // Prepare
    const [reverted = "", kept = ""] = instanceIds(2);

    // Act
    const run = await runFlow(
      scenario({
        events: [runInstancesEvent([reverted, kept])],
        instances: [{ id: reverted, revertsToOptionalAfterSeconds: 5 }, { id: kept }],
      }),
    );

    // Assess
    const verdict = (id: string) => allResults(run).find((r) => r.instanceId === id);
    expect(verdict(reverted)).toMatchObject({ verdict: "fail", reason: expect.stringContaining("reverted it") });
    expect(verdict(reverted)?.reason).toMatch(/stayed so for \d+ s over \d+ reads/);
    expect(verdict(kept)?.verdict).toBe("pass");
    expect(run.sim.instance(reverted)?.httpTokens).toBe("optional");
  });
});
