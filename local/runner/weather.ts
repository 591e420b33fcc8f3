import fc from "fast-check";
import * as z from "zod";
import type { WeatherKnobs as ServiceWeather, SimApi } from "../sim/sim-account.js";
import type { RunOptions } from "./run-flow.js";
import type { Scenario, ScenarioInstance } from "./scenario.js";

/**
 * Seeded AWS weather: documented, randomized but reproducible behaviour of the services the guard talks to, laid over
 * a scenario. A seed always gives the same weather (`npm start -- --weather-seed N` replays what a property test
 * found). Every knob is something AWS documents it may do, never something it does not:
 *
 * | knob | AWS documentation |
 * | --- | --- |
 * | EC2 throttles each API on its own token bucket | "Request throttling for the Amazon EC2 API" |
 * | a call answered with a 5xx (InternalError, ServiceUnavailable) | "Error codes for the Amazon EC2 API"; "Error retries and exponential backoff in AWS" |
 * | an instance shows in DescribeInstances only some seconds after RunInstances | "Eventual consistency in the Amazon EC2 API" |
 * | MetadataOptions.State stays `pending` for a while after a modify | "Modify instance metadata options for existing instances" ("may take a few minutes") |
 * | the SSM Agent registers late | "Setting up AWS Systems Manager" (the agent registers when it starts and can reach SSM) |
 * | SendCommand throttled | "Systems Manager service quotas" (API request rates) |
 * | EventBridge delivers an event more than once, and late | "Amazon EventBridge event delivery": at least once, retries for up to 24 hours |
 * | CloudTrail records reach EventBridge minutes after the call | "CloudTrail concepts": events typically within about 5 minutes |
 * | an Express child workflow runs a step more than once | "Choosing workflow type in Step Functions": Express is at-least-once |
 *
 * | DescribeInstances shows a modify's old options for up to tens of seconds | "Eventual consistency in the Amazon EC2 API" |
 * | a Run Command invocation waits as `Delayed`; GetCommandInvocation has none for a while | "Understanding command statuses"; "GetCommandInvocation" |
 * | a schedule fires after its time | "Schedule types" (EventBridge Scheduler) |
 *
 * The last three are knobs of the simulated services themselves (local/sim/sim-weather.ts), seeded from the same seed.
 */
export const weatherSchema = z.strictObject({
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1),
});
export type WeatherSpec = z.infer<typeof weatherSchema>;

/** The weather one seed gives: what changes in the scenario and in the run, as data a person can read. */
export interface RunWeather {
  ec2Throttling: boolean;
  /** Share (0..1) of calls to each API answered with a 500. */
  transient5xx: Partial<Record<SimApi, number>>;
  /** SendCommand's token bucket, when throttled. */
  sendCommandBucket?: { capacity: number; refillPerSecond: number };
  /** Indexes of events EventBridge delivers twice. */
  duplicateDeliveries: number[];
  /** Extra seconds before each event's (first) delivery. */
  deliveryDelaySeconds: number[];
  /** Express runs each step of a batch's child workflow twice. */
  duplicateChildSteps: boolean;
  /** The simulated services' own variable behaviour (local/sim/sim-weather.ts), drawn from the same seed. */
  services: Omit<ServiceWeather, "seed">;
  /** Per instance id: seconds before DescribeInstances shows it, seconds until a modify is applied, a late agent. */
  instances: Record<string, { visibleAfterSeconds: number; applyDelaySeconds: number; lateAgent: boolean }>;
}

/** APIs whose transient 5xx the guard must absorb with its retries. */
const FLAKY_APIS: readonly SimApi[] = [
  "DescribeInstances",
  "ModifyInstanceMetadataOptions",
  "DescribeInstanceInformation",
  "SendCommand",
  "GetCommandInvocation",
];

/**
 * The weather of a scenario as a fast-check arbitrary: the property test draws from it, and `weatherForSeed`
 * samples it for one seed. The bounds stay inside what the guard's documented deadlines are for (apply within 300 s,
 * SSM within 600 s), so weather alone never decides a verdict; what it may do is expose a wrong one.
 */
export function weatherArbitrary(scenario: Scenario): fc.Arbitrary<RunWeather> {
  const events = scenario.events.length;
  const instance = (spec: ScenarioInstance) =>
    fc.record({
      // Only an instance launched in the scenario can be not yet visible; one that ran for hours before is.
      visibleAfterSeconds: spec.ageHours === 0 ? fc.integer({ min: 0, max: 20 }) : fc.constant(0),
      applyDelaySeconds: fc.integer({ min: 2, max: 120 }),
      lateAgent: spec.ssm === "online" ? fc.boolean() : fc.constant(false),
    });
  return fc.record({
    ec2Throttling: fc.boolean(),
    transient5xx: fc
      .subarray([...FLAKY_APIS])
      .chain((apis) =>
        fc
          .array(fc.double({ min: 0.02, max: 0.2, noNaN: true }), { minLength: apis.length, maxLength: apis.length })
          .map((shares) => Object.fromEntries(apis.map((api, i) => [api, shares[i]]))),
      ),
    sendCommandBucket: fc.option(
      fc.record({ capacity: fc.integer({ min: 2, max: 20 }), refillPerSecond: fc.integer({ min: 1, max: 5 }) }),
      { nil: undefined },
    ),
    duplicateDeliveries: fc.subarray(Array.from({ length: events }, (_, i) => i)),
    deliveryDelaySeconds: fc.array(fc.integer({ min: 0, max: 90 }), { minLength: events, maxLength: events }),
    duplicateChildSteps: fc.boolean(),
    services: fc.record({
      describeLagMinSeconds: fc.integer({ min: 0, max: 5 }),
      describeLagMaxSeconds: fc.integer({ min: 5, max: 45 }),
      ssmDelayedProbability: fc.double({ min: 0, max: 0.5, noNaN: true }),
      ssmDelayedMaxSeconds: fc.integer({ min: 5, max: 60 }),
      invocationVisibleMaxSeconds: fc.integer({ min: 1, max: 5 }),
      registrationLatenessMaxSeconds: fc.integer({ min: 0, max: 120 }),
      schedulerLatenessMaxSeconds: fc.integer({ min: 0, max: 60 }),
    }),
    instances: fc
      .tuple(...scenario.instances.map(instance))
      .map((knobs) => Object.fromEntries(scenario.instances.map((spec, i) => [spec.id, knobs[i]]))),
  }) as fc.Arbitrary<RunWeather>;
}

/** The weather one seed gives for this scenario: always the same for the same seed and scenario. */
export function weatherForSeed(scenario: Scenario, seed: number): RunWeather {
  const [knobs] = fc.sample(weatherArbitrary(scenario), { seed, numRuns: 1 });
  if (!knobs) throw new Error(`No weather for seed ${seed}`);
  return knobs;
}

/** The scenario and run options under this weather. The scenario's own knobs win where it sets one on purpose. */
export function applyWeather(
  scenario: Scenario,
  knobs: RunWeather,
  options: RunOptions = {},
  seed = 1,
): { scenario: Scenario; options: RunOptions } {
  const events = scenario.events.map((event, i) => {
    const extra = knobs.deliveryDelaySeconds[i] ?? 0;
    if (extra === 0 || typeof event !== "object" || event === null) return event;
    const own = (event as { eventDelaySeconds?: number }).eventDelaySeconds ?? 0;
    return { ...event, eventDelaySeconds: own + extra };
  });
  const instances = scenario.instances.map((spec) => {
    const k = knobs.instances[spec.id];
    if (!k) return spec;
    return {
      ...spec,
      visibleAfterSeconds: Math.max(spec.visibleAfterSeconds, k.visibleAfterSeconds),
      applyDelaySeconds: Math.max(spec.applyDelaySeconds, k.applyDelaySeconds),
      ssm: k.lateAgent && spec.ssm === "online" ? ("late" as const) : spec.ssm,
    };
  });
  const faults = options.faults ?? {};
  return {
    scenario: { ...scenario, events, instances },
    options: {
      ...options,
      faults: {
        ...faults,
        ec2Throttling: faults.ec2Throttling || knobs.ec2Throttling,
        transient5xx: { ...knobs.transient5xx, ...faults.transient5xx },
        ...(knobs.sendCommandBucket && !faults.sendCommandBucket ? { sendCommandBucket: knobs.sendCommandBucket } : {}),
        weather: { ...knobs.services, seed, ...faults.weather },
      },
      duplicateDeliveries: [...new Set([...(options.duplicateDeliveries ?? []), ...knobs.duplicateDeliveries])],
      duplicateChildSteps: options.duplicateChildSteps || knobs.duplicateChildSteps,
    },
  };
}

/** One line per knob that is on, for the run's header and a failing property's message. */
export function describeWeather(seed: number, knobs: RunWeather): string[] {
  const lines = [`weather seed ${seed}:`];
  if (knobs.ec2Throttling) lines.push("EC2 throttles each API on its documented bucket");
  for (const [api, share] of Object.entries(knobs.transient5xx))
    lines.push(`${api} answers 500 to ${Math.round((share ?? 0) * 100)}% of calls`);
  if (knobs.sendCommandBucket)
    lines.push(
      `SendCommand throttled (${knobs.sendCommandBucket.capacity} tokens, ${knobs.sendCommandBucket.refillPerSecond}/s)`,
    );
  if (knobs.duplicateDeliveries.length) lines.push(`events delivered twice: ${knobs.duplicateDeliveries.join(", ")}`);
  const late = knobs.deliveryDelaySeconds.filter((s) => s > 0).length;
  if (late) lines.push(`${late} event(s) delivered up to ${Math.max(...knobs.deliveryDelaySeconds)} s late`);
  if (knobs.duplicateChildSteps) lines.push("Express runs every batch step twice");
  const w = knobs.services;
  lines.push(`describes lag a modify by ${w.describeLagMinSeconds}-${w.describeLagMaxSeconds} s`);
  if (w.ssmDelayedProbability > 0)
    lines.push(`${Math.round(w.ssmDelayedProbability * 100)}% of Run Command invocations wait as Delayed`);
  if (w.registrationLatenessMaxSeconds > 0) lines.push(`SSM agents up to ${w.registrationLatenessMaxSeconds} s late`);
  if (w.schedulerLatenessMaxSeconds > 0) lines.push(`schedules fire up to ${w.schedulerLatenessMaxSeconds} s late`);
  const specs = Object.values(knobs.instances);
  const lateAgents = specs.filter((k) => k.lateAgent).length;
  if (lateAgents) lines.push(`${lateAgents} instance(s) register with SSM late`);
  if (specs.length)
    lines.push(
      `modifies apply after up to ${Math.max(...specs.map((k) => k.applyDelaySeconds))} s; new instances visible after up to ${Math.max(...specs.map((k) => k.visibleAfterSeconds))} s`,
    );
  return lines;
}
