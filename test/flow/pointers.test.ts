import { describe, expect, it } from "vitest";
import { type FlowRun, runFlow } from "../../local/runner/run-flow.js";
import { DEFAULT_FLOW_SETTINGS } from "../../shared/runtime/config.js";
import { ACCOUNT, allResults, instanceIds, runInstancesEvent, scenario } from "./helpers.js";

/**
 * The state carries pointers (shared/domain/batch-slices.ts): the instances are in the ledger, so what crosses a
 * slice boundary is read back by a Lambda, never re-parsed by an intrinsic, and no state grows with the work.
 */

/** Step Functions fails a state input or output over this many bytes ("Step Functions service quotas"). */
const STATE_LIMIT_BYTES = 262_144;

/** `"`, `\`, both quotes, control characters and non-ASCII text: what aws-local-stepfunctions' intrinsics mangle. */
const HOSTILE = `q"uo'te \`x\` back\\slash \\" \\u0041 {"a":1} \t\r\n ctl\u0007\u001b[31m é 你好 🚨`;

function verdicts(run: FlowRun): Record<string, string> {
  return Object.fromEntries(allResults(run).map((r) => [r.instanceId, r.verdict]));
}

/** The largest state input or output of any execution (parent and children). */
function largestState(run: FlowRun): number {
  return Math.max(...run.executions.map((e) => e.stats.maxStatePayloadBytes));
}

describe("hostile strings across slices", () => {
  /**
   * One launch whose batch needs several slices (an instance whose agent never registers is waited for 600 s, and a
   * slice plans 200 s), with every tag key and value, the Name and the actor's session holding hostile text.
   */
  function launch(text: (label: string) => string) {
    const [online = "", noAgent = "", exempt = "", failing = ""] = instanceIds(4, "0d");
    const tags = (label: string) => ({
      Name: text(`name-${label}`),
      [text(`key-${label}`).slice(0, 128)]: text(`value-${label}`),
    });
    const actor = `arn:aws:sts::${ACCOUNT}:assumed-role/Deployer/${text("session")}`;
    return scenario({
      events: [runInstancesEvent([online, noAgent, exempt, failing], "e-hostile-1", actor)],
      instances: [
        { id: online, tags: tags("online") },
        { id: noAgent, ssm: "none", tags: tags("no-agent") },
        {
          id: exempt,
          tags: { ...tags("exempt"), [DEFAULT_FLOW_SETTINGS.exemptTagKey]: text("exempt-reason") },
        },
        { id: failing, imds: "answers-without-token", tags: tags("failing") },
      ],
    });
  }

  it("gives the same verdicts as the same launch without them, over several slices", async () => {
    // Prepare
    const plain = launch((label) => `plain ${label}`);
    const hostile = launch((label) => `${label} ${HOSTILE}`);

    // Act
    const expected = await runFlow(plain);
    const run = await runFlow(hostile);

    // Assess: more than one slice (a child per slice), one report, and nothing turned into `error`.
    expect(run.executions.every((e) => e.status === "succeeded")).toBe(true);
    expect(run.executions[0]?.stats.children.length).toBeGreaterThanOrEqual(3);
    expect(run.reports).toHaveLength(1);
    expect(Object.values(verdicts(expected)).sort()).toEqual(["exempt", "fail", "pass", "unverified"]);
    expect(verdicts(run)).toEqual(verdicts(expected));
  }, 180_000);
});

describe("the state does not grow with the work", () => {
  /** 50 tags of the longest key and value EC2 allows ("Tag your Amazon EC2 resources"): 128 and 256 characters. */
  function maximumTags(seed: number): Record<string, string> {
    return Object.fromEntries(
      Array.from({ length: 50 }, (_, t) => [
        `${t}-${seed}-${"k".repeat(128)}`.slice(0, 128),
        `${t}-${seed}-${"v".repeat(256)}`.slice(0, 256),
      ]),
    );
  }

  async function sweepOf(n: number) {
    const ids = instanceIds(n, "0c");
    return runFlow(
      scenario({
        settings: { sweepInstancesPerExecution: n },
        sweepAtSeconds: [0],
        instances: ids.map((id, i) => ({ id, tags: maximumTags(i) })),
      }),
    );
  }

  // Small enough for npm test (a 500-instance run took 7 minutes on a loaded 2-core machine); the 1,000-instance
  // executions of a 20,000-instance sweep are for the bench.
  it("keeps the largest state of a 50- and a 200-instance sweep execution the same, under 256 KiB", async () => {
    // Act
    const small = await sweepOf(50);
    const large = await sweepOf(200);

    // Assess: one execution each, every instance one verdict, and the largest state is a batch's, not the list's.
    expect(large.executions).toHaveLength(1);
    expect(allResults(large)).toHaveLength(200);
    expect(new Set(allResults(large).map((r) => r.instanceId)).size).toBe(200);
    expect(largestState(large)).toBeLessThanOrEqual(STATE_LIMIT_BYTES);
    expect(Math.abs(largestState(large) - largestState(small))).toBeLessThanOrEqual(largestState(small) * 0.02);
  }, 600_000);
});

describe("a failed child execution", () => {
  it("reports the instances as errors in the event's one report when every batch's child failed", async () => {
    // Prepare: FinalizeBatch and FinalizeWithoutLedger crash on every attempt, so the child fails uncaught.
    const ids = instanceIds(3, "0e");
    const s = scenario({ events: [runInstancesEvent(ids, "e-failed-child")], instances: ids.map((id) => ({ id })) });

    // Act
    const run = await runFlow(s, { lambdaFaults: { FinalizeBatch: Array.from({ length: 40 }, (_, i) => i + 1) } });

    // Assess
    expect(run.reports).toHaveLength(1);
    expect(allResults(run).map((r) => r.instanceId)).toEqual(ids);
    for (const result of allResults(run)) {
      expect(result.verdict).toBe("error");
      // Every child failed: over ToleratedFailurePercentage, so the Map fails, caught, straight to Notify.
      expect(result.reason).toMatch(/^The flow failed before a verdict: States\.ExceedToleratedFailureThreshold/);
    }
  }, 120_000);
});
