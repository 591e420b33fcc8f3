import { describe, expect, it } from "vitest";
import { burstScenario, modifyLowerBoundSeconds, stormScenario } from "../../local/runner/burst-scenarios.js";
import { runFlow } from "../../local/runner/run-flow.js";
import { allResults } from "./helpers.js";

/**
 * Simulated time is discrete-event and deterministic, so these bounds are properties of the algorithm (how well it
 * uses EC2's token buckets), not wall-clock timings; `npm run bench` reports the same figures. The generous timeout
 * is there because wall-clock speed is the bench's business: on a busy 2-core machine the storm alone took 46-68 s.
 */
const WALL_CLOCK_ALLOWANCE_MS = 600_000;
describe("bursts under EC2's documented throttling", () => {
  it(
    "one RunInstances event with 1,000 instances: all pass, within 1.5x of the modify-rate lower bound",
    async () => {
      // Act
      const run = await runFlow(burstScenario(1000), { faults: { ec2Throttling: true } });

      // Assess
      const results = allResults(run);
      expect(results).toHaveLength(1000);
      expect(results.filter((r) => r.verdict !== "pass")).toEqual([]);
      expect(run.sim.published).toHaveLength(1);
      expect(run.sim.modifiedInstanceIds).toHaveLength(1000);
      expect(run.sim.throttled.ModifyInstanceMetadataOptions).toBeGreaterThan(0);
      expect(run.lastReportSeconds / modifyLowerBoundSeconds(1000)).toBeLessThanOrEqual(1.5);
      for (const e of run.executions) {
        expect(e.stats.historyEvents).toBeLessThan(25_000);
        expect(e.stats.maxChildHistoryEvents).toBeLessThan(25_000);
      }
    },
    WALL_CLOCK_ALLOWANCE_MS,
  );

  it(
    "a storm of 1,000 single-instance events: all pass, each notified once, within 1.5x of the lower bound",
    async () => {
      const run = await runFlow(stormScenario(1000), { faults: { ec2Throttling: true } });
      const results = allResults(run);
      expect(results).toHaveLength(1000);
      expect(results.filter((r) => r.verdict !== "pass")).toEqual([]);
      expect(run.sim.published).toHaveLength(1000);
      expect(run.executions.filter((e) => e.status !== "succeeded")).toEqual([]);
      expect(run.sim.throttled.DescribeInstances).toBeGreaterThan(0);
      expect(run.lastReportSeconds / modifyLowerBoundSeconds(1000)).toBeLessThanOrEqual(1.5);
    },
    WALL_CLOCK_ALLOWANCE_MS,
  );
});
