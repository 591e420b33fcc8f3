import type { ScenarioInstance } from "../runner/scenario.js";
import type { SimRandom, WeatherKnobs } from "./sim-weather.js";

export type SimApi =
  | "DescribeInstances"
  | "ModifyInstanceMetadataOptions"
  | "DescribeInstanceInformation"
  | "SendCommand"
  | "GetCommandInvocation"
  | "Publish"
  | "StartExecution"
  | "SendTaskSuccess"
  | "GetMetricData"
  | "GetInstanceMetadataDefaults"
  | "ModifyInstanceMetadataDefaults"
  | "DescribeImages"
  | "PutItem"
  | "GetItem"
  | "Query"
  | "CreateSchedule"
  | "CreateDocument"
  | "DescribeDocument"
  | "GetDocument"
  | "BatchImportFindings"
  | "GetFindings";

/** One instance as the simulated account holds it: shared by EC2, SSM and CloudWatch. */
export interface SimInstanceState {
  spec: ScenarioInstance;
  state: ScenarioInstance["state"];
  httpTokens: "optional" | "required";
  httpEndpoint: "enabled" | "disabled";
  /** What the instance's IMDS enforces right now: it follows a modify only once the change is applied. */
  imdsTokens: "optional" | "required";
  /** When the instance's IMDS switched between optional and required: what the CloudWatch metrics integrate. */
  tokenHistory: { at: number; tokens: "optional" | "required" }[];
  applyAt?: number;
  /** When the scenario's reverting actor sets HttpTokens back to optional (`revertsToOptionalAfterSeconds`). */
  revertAt?: number;
  /**
   * EC2's eventual consistency: until `until`, DescribeInstances still shows the metadata options as they were
   * before the latest modify.
   */
  stale?: { until: number; httpTokens: "optional" | "required"; optionsState: "pending" | "applied" };
  launchedAt: number;
  /** What DescribeInstances says as LaunchTime: EC2 sets it at the launch and again at every start. */
  lastLaunchTime: number;
  registeredAt?: number;
}

/** What every simulated service of one account shares: its instances, its gate (counts, faults, throttles), its weather. */
export interface SimContext {
  readonly instances: Map<string, SimInstanceState>;
  /** Counts the call, then fails it as AWS would (a configured 5xx, or a throttle); see SimAccount. */
  gate(api: SimApi, now: number, bucketKey?: string): void;
  readonly random: SimRandom;
  readonly weather: WeatherKnobs;
}

/** An error shaped as the SDK v3 shapes a service's error answer. */
export function awsError(name: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: httpStatusCode >= 500 ? "server" : "client",
    $metadata: { httpStatusCode },
  });
}

/** Seconds from launch (or start) to SSM registration, by the scenario's `ssm`, plus the weather's lateness. */
export function registrationAt(ctx: SimContext, spec: ScenarioInstance, now: number): number | undefined {
  // `ssmOnlineAfterSeconds`: an agent installed, or a profile attached, later; otherwise by `ssm`.
  const delay = spec.ssmOnlineAfterSeconds ?? { online: 30, late: 180, none: undefined }[spec.ssm];
  if (delay === undefined) return undefined;
  return now + delay * 1000 + ctx.random.millisBetween(0, ctx.weather.registrationLatenessMaxSeconds);
}

/**
 * Moves an instance's clock on: a pending change applies once its delay has passed, but only while the instance
 * runs ("When you modify the parameters on a stopped instance, they are applied when the instance is started",
 * ModifyInstanceMetadataOptions); a scheduled termination happens.
 */
export function tick(s: SimInstanceState, now: number): void {
  if (s.revertAt !== undefined && now >= s.revertAt) {
    // Its describes show the revert at once: the check it provokes must not need a lag to fail.
    s.httpTokens = "optional";
    s.applyAt = s.revertAt + s.spec.applyDelaySeconds * 1000;
    s.stale = undefined;
    s.revertAt = undefined;
  }
  const running = s.state !== "stopped" && s.state !== "stopping";
  if (s.applyAt !== undefined && now >= s.applyAt && running) {
    if (s.imdsTokens !== s.httpTokens) s.tokenHistory.push({ at: s.applyAt, tokens: s.httpTokens });
    s.imdsTokens = s.httpTokens;
    s.applyAt = undefined;
  }
  if (s.stale && now >= s.stale.until) s.stale = undefined;
  if (s.spec.terminateAfterSeconds !== undefined && now >= s.launchedAt + s.spec.terminateAfterSeconds * 1000) {
    s.state = "terminated";
  }
}

/**
 * A ModifyInstanceMetadataOptions took effect (the guard's, or someone else's a delivered record reports). Describes
 * keep showing what they showed before for a lag the weather draws ("Eventual consistency in the Amazon EC2 API").
 */
export function setTokens(ctx: SimContext, s: SimInstanceState, tokens: "optional" | "required", now: number): void {
  tick(s, now);
  const before = s.stale ?? { httpTokens: s.httpTokens, optionsState: s.applyAt !== undefined ? "pending" : "applied" };
  const lag = ctx.random.millisBetween(ctx.weather.describeLagMinSeconds, ctx.weather.describeLagMaxSeconds);
  s.stale =
    lag > 0 ? { until: now + lag, httpTokens: before.httpTokens, optionsState: before.optionsState } : undefined;
  s.httpTokens = tokens;
  s.applyAt = now + s.spec.applyDelaySeconds * 1000;
  const revertsAfter = s.spec.revertsToOptionalAfterSeconds;
  s.revertAt = tokens === "required" && revertsAfter !== undefined ? now + revertsAfter * 1000 : undefined;
  tick(s, now);
}

/** What an instance's MetadataOptions say to the API right now (the modify response tells the truth, describes may lag). */
export function currentOptions(s: SimInstanceState): {
  httpTokens: "optional" | "required";
  optionsState: "pending" | "applied";
} {
  return { httpTokens: s.httpTokens, optionsState: s.applyAt !== undefined ? "pending" : "applied" };
}

/** Starts a stopped instance: pending metadata options apply now, and its agent registers again. */
export function startInstance(ctx: SimContext, s: SimInstanceState, now: number): void {
  if (s.state !== "stopped" && s.state !== "stopping") return;
  s.state = "running";
  s.lastLaunchTime = now;
  if (s.applyAt !== undefined) s.applyAt = now;
  tick(s, now);
  s.registeredAt = registrationAt(ctx, s.spec, now);
}

/** Running, with its SSM Agent registered: Run Command delivers to it. */
export function online(s: SimInstanceState, now: number): boolean {
  tick(s, now);
  return s.state === "running" && s.registeredAt !== undefined && now >= s.registeredAt;
}
