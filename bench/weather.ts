import fc from "fast-check";
import { organizationBurstScenario } from "../local/runner/burst-scenarios.js";
import { runFlow } from "../local/runner/run-flow.js";
import { parseScenario, type Scenario } from "../local/runner/scenario.js";
import { describeWeather } from "../local/runner/weather.js";
import { weatherViolations } from "../local/runner/weather-invariants.js";
import defaultScenario from "../local/scenarios/default.json" with { type: "json" };
import singleAccount from "../local/scenarios/single-account.json" with { type: "json" };

/**
 * The weather property of `npm test` (test/flow/weather-*.test.ts), over more seeds: seeds other than the test's
 * (a base seed of the day), and the 1,000-instance burst as well as the test's small one. Prints the seeds run and
 * every violation with the seed that replays it (`npm start -- --scenario FILE --weather-seed N`).
 */
export async function weatherFigures(write: (text: string) => void): Promise<void> {
  const seedsPerScenario = Number(process.env.BENCH_WEATHER_SEEDS ?? 80);
  const baseSeed = Number(process.env.BENCH_WEATHER_BASE_SEED ?? Math.floor(Date.now() / 86_400_000));
  const scenarios: { name: string; build: () => Scenario; seeds: number }[] = [
    { name: "single-account", build: () => parseScenario(singleAccount, "single-account"), seeds: seedsPerScenario },
    { name: "default (organization)", build: () => parseScenario(defaultScenario, "default"), seeds: seedsPerScenario },
    { name: "organization burst 120", build: () => organizationBurstScenario(120), seeds: seedsPerScenario },
    {
      name: "organization burst 1,000",
      build: () => organizationBurstScenario(1000),
      seeds: Number(process.env.BENCH_WEATHER_BIG_SEEDS ?? 2),
    },
  ];
  write(
    `Base seed ${baseSeed} (BENCH_WEATHER_BASE_SEED), probes computed; invariants: local/runner/weather-invariants.ts\n\n`,
  );
  write("| scenario | seeds run | violations | wall ms per run (median) | simulated s to last report (max) |\n");
  write("| --- | --- | --- | --- | --- |\n");
  let total = 0;
  for (const { name, build, seeds } of scenarios) {
    const calm = await runFlow(build());
    const seedList = fc.sample(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { seed: baseSeed, numRuns: seeds });
    const walls: number[] = [];
    const failures: string[] = [];
    let slowest = 0;
    for (const seed of seedList) {
      const t = performance.now();
      const run = await runFlow({ ...build(), weather: { seed } }, { faults: { computedProbes: true } });
      walls.push(performance.now() - t);
      slowest = Math.max(slowest, run.lastReportSeconds);
      const violations = weatherViolations(calm, run);
      if (violations.length > 0) {
        const knobs = run.weather?.knobs;
        failures.push([...(knobs ? describeWeather(seed, knobs) : [`seed ${seed}`]), ...violations].join("\n  "));
      }
    }
    total += seedList.length;
    walls.sort((a, b) => a - b);
    const median = walls[Math.floor(walls.length / 2)] ?? 0;
    write(`| ${name} | ${seedList.length} | ${failures.length} | ${median.toFixed(0)} | ${slowest.toFixed(0)} |\n`);
    for (const f of failures) write(`\n  ${f}\n`);
  }
  write(`\n${total} seeds run in all.\n`);
}
