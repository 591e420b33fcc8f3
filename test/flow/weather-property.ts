import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { type FlowRun, runFlow } from "../../local/runner/run-flow.js";
import type { Scenario } from "../../local/runner/scenario.js";
import { describeWeather } from "../../local/runner/weather.js";
import { weatherViolations } from "../../local/runner/weather-invariants.js";

/**
 * The guard under seeded AWS weather (local/runner/weather.ts): throttles, 5xx, late and duplicated deliveries,
 * instances visible late, slow applies, late SSM agents, Express steps run twice. Seeds are drawn by fast-check from
 * a fixed base seed, so `npm test` runs the same seeds every time; a failure names the seed, and
 * `npm start -- --scenario FILE --weather-seed N` replays it. `npm run bench` runs more seeds.
 */
export const BASE_SEED = 20_261_207;

/** Seeds per scenario in `npm test`: 200 in all (test/flow/weather.test.ts checks the sum). */
export const WEATHER_SEEDS = { singleAccount: 80, organization: 70, burst: 50 } as const;

/** Size of the organization burst under weather in `npm test`: the burst's shape at a size 50 seeds can afford. */
export const WEATHER_BURST_INSTANCES = 120;

/** One scenario's calm run, then `seeds` weathered runs, each judged against it by the invariants. */
export function describeWeatherProperty(name: string, build: () => Scenario, seeds: number): void {
  describe(`${name} under seeded AWS weather`, () => {
    let calm: FlowRun;
    beforeAll(async () => {
      calm = await runFlow(build());
    }, 120_000);

    it("has a calm run that reports its events and fails no execution", () => {
      expect(calm.reports.length).toBeGreaterThan(0);
      expect(weatherViolations(calm, calm)).toEqual([]);
    });

    it(`holds its invariants over ${seeds} seeds`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (seed) => {
          // Computed probes: the weather is about AWS's timing; the scripts run in the calm run and every other flow.
          const run = await runFlow({ ...build(), weather: { seed } }, { faults: { computedProbes: true } });
          const violations = weatherViolations(calm, run);
          if (violations.length > 0) {
            const knobs = run.weather?.knobs;
            throw new Error([...(knobs ? describeWeather(seed, knobs) : []), ...violations].join("\n"));
          }
        }),
        { seed: BASE_SEED, numRuns: seeds, endOnFailure: true },
      );
    }, 900_000);
  });
}
