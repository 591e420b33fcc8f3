import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { applyWeather, weatherForSeed } from "../../local/runner/weather.js";
import { weatherViolations } from "../../local/runner/weather-invariants.js";
import { singleAccountScenario } from "./helpers.js";
import { WEATHER_SEEDS } from "./weather-property.js";

describe("seeded AWS weather", () => {
  it("runs at least 200 seeds in npm test, over the single-account, default and burst scenarios", () => {
    expect(Object.values(WEATHER_SEEDS).reduce((n, s) => n + s, 0)).toBeGreaterThanOrEqual(200);
  });

  it("gives the same weather for the same seed, and different weather for others", () => {
    const scenario = singleAccountScenario();
    const seven = JSON.stringify(weatherForSeed(scenario, 7));
    expect(JSON.stringify(weatherForSeed(scenario, 7))).toBe(seven);
    expect([8, 9, 10, 11].map((seed) => JSON.stringify(weatherForSeed(scenario, seed)))).not.toContain(seven);
  });

  it("replays a seed to the millisecond, retry jitter included", async () => {
    // Seed 7 throttles the intake, whose full-jitter retries draw from Math.random: the runner seeds it too.
    const scenario = { ...singleAccountScenario(), weather: { seed: 7 } };
    const first = await runFlow(scenario, { faults: { computedProbes: true } });
    const second = await runFlow(scenario, { faults: { computedProbes: true } });

    expect(second.lastReportSeconds).toBe(first.lastReportSeconds);
    expect(JSON.stringify(second.reports)).toBe(JSON.stringify(first.reports));
  });

  it("only ever makes the scenario's own knobs later or rougher, never calmer", () => {
    const scenario = singleAccountScenario();
    for (const seed of [1, 2, 3, 4, 5]) {
      const { scenario: weathered } = applyWeather(scenario, weatherForSeed(scenario, seed));
      weathered.instances.forEach((instance, i) => {
        const before = scenario.instances[i];
        expect(instance.applyDelaySeconds).toBeGreaterThanOrEqual(before?.applyDelaySeconds ?? 0);
        expect(instance.visibleAfterSeconds).toBeGreaterThanOrEqual(before?.visibleAfterSeconds ?? 0);
        if (before?.ssm !== "online") expect(instance.ssm).toBe(before?.ssm);
      });
    }
  });

  it("catches a wrong verdict: a pass on an instance that still answers IMDSv1 is a violation", async () => {
    const calm = await runFlow(singleAccountScenario());
    const last = new Map(calm.reports.flatMap((r) => r.results).map((x) => [x.instanceId, x]));
    const passing = [...last.values()].find((x) => x.verdict === "pass" && x.reading?.v1 === 401);
    const state = calm.sim.instance(passing?.instanceId ?? "");
    expect(state).toBeDefined();
    // Make the account's truth disagree with the verdict, as a guard that passed on a stale read would: a local
    // metadata proxy now answers token-less GETs on the instance.
    (state?.spec as { imds: string }).imds = "answers-without-token";
    expect(weatherViolations(calm, calm).join("\n")).toMatch(/last verdict is pass, but it still answers IMDSv1/);
  });

  it("catches a lost report and a claimed change never made", async () => {
    const calm = await runFlow(singleAccountScenario());
    const [first, ...rest] = calm.reports;
    const lost = { ...calm, reports: rest };
    expect(weatherViolations(calm, lost).join("\n")).toMatch(new RegExp(`event ${first?.event.eventId}: 0 reports`));
    const notEnforced = calm.reports
      .flatMap((r) => r.results)
      .find((x) => !calm.sim.modifiedInstanceIds.includes(x.instanceId));
    expect(notEnforced).toBeDefined();
    const claimed = {
      ...calm,
      reports: calm.reports.map((r) => ({
        ...r,
        results: r.results.map((x) =>
          x === notEnforced ? { ...x, enforcement: { kind: "set-required" as const, was: "optional" } } : x,
        ),
      })),
    };
    expect(weatherViolations(calm, claimed).join("\n")).toMatch(/claims set-required, but no modify/);
  });
});
