import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type FlowRun, runFlow } from "../../local/runner/run-flow.js";
import { parseScenario } from "../../local/runner/scenario.js";
import { runInstancesEvent } from "./helpers.js";

const ID_ONLINE = "i-0e000000000000001";
const ID_NO_AGENT = "i-0e000000000000002";

/**
 * Express runs the batch's child workflows at least once. Every step of a slice is run twice here, with the same
 * input, the second run going on from what the first did: the verdicts, the modify calls and the probes sent must be
 * those of a run where each step ran once.
 */
function scenario(file: string) {
  return parseScenario(JSON.parse(readFileSync(`local/scenarios/${file}`, "utf8")), file);
}

function verdicts(run: FlowRun): Record<string, string> {
  return Object.fromEntries(
    run.reports
      .flatMap((r) => r.results)
      .map((r) => [r.instanceId, r.verdict])
      .sort(),
  );
}

/** What the report says Enforce did to each instance: a repeat of Enforce must still call the change the guard's. */
function enforcements(run: FlowRun): Record<string, string | undefined> {
  return Object.fromEntries(
    run.reports
      .flatMap((r) => r.results)
      .map((r) => [r.instanceId, r.enforcement?.kind])
      .sort(),
  );
}

/** Every simulated account: the hub's, and in organization mode each member account's. */
function accounts(run: FlowRun) {
  return [run.sim, ...(run.org?.memberAccounts().map((m) => m.sim) ?? [])];
}

/** The instances EC2 changed, once per change that took effect (a refused modify changes nothing). */
function modified(run: FlowRun): string[] {
  return accounts(run)
    .flatMap((a) => a.modifiedInstanceIds)
    .sort();
}

/** The instances a probe ran on, once per run of the probe. */
function probed(run: FlowRun): string[] {
  return accounts(run)
    .flatMap((a) => a.probeRuns.map((p) => p.instanceId))
    .sort();
}

describe.each(["default.json", "single-account.json"])("every step of a slice run twice (%s)", (file) => {
  it("gives the same verdicts, the same instances modified, and one probe per send", async () => {
    // Prepare
    const once = await runFlow(scenario(file));

    // Act
    const twice = await runFlow(scenario(file), { duplicateChildSteps: true });

    // Assess
    expect(Object.keys(verdicts(once)).length).toBeGreaterThan(5);
    expect(verdicts(twice)).toEqual(verdicts(once));
    expect(Object.values(enforcements(once))).toContain("set-required");
    expect(enforcements(twice)).toEqual(enforcements(once));
    expect(modified(once).length).toBeGreaterThan(3);
    // The same instances changed; the repeat's describe may still show optional (EC2's describes lag a modify), and
    // then it sets required again: harmless, and the report still says the change is the guard's, once.
    expect(new Set(modified(twice))).toEqual(new Set(modified(once)));
    expect(probed(once).length).toBeGreaterThan(3);
    expect(probed(twice)).toEqual(probed(once));
    expect(twice.lambdaInvocations.SendProbe).toBe(2 * (once.lambdaInvocations.SendProbe ?? 0));
    expect(twice.executions.every((e) => e.status === "succeeded")).toBe(true);
  }, 180_000);
});

describe("slices", () => {
  it("a batch longer than one slice is suspended and resumed, each slice under Express's 5 minutes", async () => {
    // Prepare: one instance online at once, one whose agent never registers (it waits 600 s for it).
    const run = await runFlow(
      parseScenario(
        {
          name: "long batch",
          events: [runInstancesEvent([ID_ONLINE, ID_NO_AGENT])],
          instances: [{ id: ID_ONLINE }, { id: ID_NO_AGENT, ssm: "none" }],
        },
        "slices",
      ),
    );

    // Assess
    const [execution] = run.executions;
    expect(run.executions).toHaveLength(1);
    expect(execution?.stats.children.length).toBeGreaterThanOrEqual(3);
    for (const child of execution?.stats.children ?? []) expect(child.durationMs).toBeLessThan(300_000);
    expect(verdicts(run)).toEqual({ [ID_NO_AGENT]: "unverified", [ID_ONLINE]: "pass" });
    expect(run.reports).toHaveLength(1);
    expect(run.reports[0]?.results.find((r) => r.instanceId === ID_NO_AGENT)?.reason).toContain("600 s");
  });
});
