/**
 * The simulated account's one source of randomness ("weather"). Every behaviour AWS documents as variable (how long
 * a describe lags a modify, whether a Run Command invocation waits as Delayed, when a flexible schedule fires...)
 * draws from this seeded generator, so a run is reproducible from its seed and a later change can turn the knobs per
 * seed. The defaults are a fixed seed and mild, non-zero lag: a default run already sees stale reads.
 */
export interface WeatherKnobs {
  /** The seed of the generator (default 1: runs are reproducible). */
  seed: number;
  /**
   * At most this many seconds a DescribeInstances keeps showing an instance's metadata options as they were before a
   * ModifyInstanceMetadataOptions ("Eventual consistency in the Amazon EC2 API"). Each modify draws its own lag in
   * [describeLagMinSeconds, describeLagMaxSeconds].
   */
  describeLagMaxSeconds: number;
  describeLagMinSeconds: number;
  /** Chance (0..1) that a Run Command invocation on a running instance first waits as `Delayed` ("Understanding command statuses"). */
  ssmDelayedProbability: number;
  /** At most this many seconds such an invocation stays Delayed before it is delivered. */
  ssmDelayedMaxSeconds: number;
  /** At most this many seconds GetCommandInvocation answers InvocationDoesNotExist after SendCommand. */
  invocationVisibleMaxSeconds: number;
  /** At most this many seconds an SSM Agent registers later than the scenario's `ssm` timing says. */
  registrationLatenessMaxSeconds: number;
  /** At most this many seconds a schedule with FlexibleTimeWindow OFF fires after its time. */
  schedulerLatenessMaxSeconds: number;
}

export const DEFAULT_WEATHER: WeatherKnobs = {
  seed: 1,
  describeLagMinSeconds: 1,
  describeLagMaxSeconds: 8,
  ssmDelayedProbability: 0,
  ssmDelayedMaxSeconds: 30,
  invocationVisibleMaxSeconds: 2,
  registrationLatenessMaxSeconds: 0,
  schedulerLatenessMaxSeconds: 0,
};

/** A seeded pseudo-random generator (mulberry32): small, fast, and the same sequence on every platform. */
export class SimRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** A whole number of milliseconds in [minSeconds, maxSeconds] seconds. */
  millisBetween(minSeconds: number, maxSeconds: number): number {
    const lo = Math.max(0, minSeconds) * 1000;
    const hi = Math.max(lo, maxSeconds * 1000);
    return Math.round(lo + this.next() * (hi - lo));
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }
}

/** The knobs with the defaults filled in, refusing values that cannot mean anything. */
export function weatherKnobs(partial: Partial<WeatherKnobs> = {}): WeatherKnobs {
  const knobs = { ...DEFAULT_WEATHER, ...partial };
  for (const [name, value] of Object.entries(knobs)) {
    if (!Number.isFinite(value) || value < 0) throw new Error(`weather.${name} must be a number >= 0, not ${value}`);
  }
  if (knobs.ssmDelayedProbability > 1) throw new Error("weather.ssmDelayedProbability must be at most 1");
  if (knobs.describeLagMinSeconds > knobs.describeLagMaxSeconds) {
    throw new Error("weather.describeLagMinSeconds must not exceed describeLagMaxSeconds");
  }
  return knobs;
}
