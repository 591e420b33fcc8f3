import type { FlowRun } from "../local/runner/run-flow.js";

/** Step Functions Standard: $0.025 per 1,000 state transitions. */
export const USD_PER_TRANSITION = 0.025 / 1000;
/** Lambda arm64: $0.20 per million requests and $0.0000133334 per GB-second. */
export const USD_PER_LAMBDA_REQUEST = 0.2 / 1_000_000;
export const USD_PER_GB_SECOND_ARM = 0.0000133334;
/** What the cost model assumes of each invocation: the deployed memory, and a billed duration (see README). */
export const LAMBDA_MEMORY_GB = 0.25;
export const ASSUMED_BILLED_SECONDS_PER_INVOCATION = 0.1;

export interface FlowCosts {
  instances: number;
  apiCallsPerInstance: number;
  transitionsPerInstance: number;
  lambdaInvocationsPerInstance: number;
  usdPerInstance: number;
  usdPer1000Instances: number;
}

/** Per-instance API calls, transitions, invocations and estimated cost of a run. */
export function flowCosts(run: FlowRun): FlowCosts {
  const instances = run.reports.reduce((n, r) => n + r.results.length, 0);
  // Organization mode: every member account's calls, not only the hub's.
  const apiCalls = Object.values(run.org?.calls ?? run.sim.calls).reduce((a, b) => a + b, 0);
  const transitions = run.executions.reduce((n, e) => n + e.stats.transitions, 0);
  const invocations = Object.values(run.lambdaInvocations).reduce((a, b) => a + b, 0);
  const usd =
    transitions * USD_PER_TRANSITION +
    invocations *
      (USD_PER_LAMBDA_REQUEST + LAMBDA_MEMORY_GB * ASSUMED_BILLED_SECONDS_PER_INVOCATION * USD_PER_GB_SECOND_ARM);
  return {
    instances,
    apiCallsPerInstance: apiCalls / instances,
    transitionsPerInstance: transitions / instances,
    lambdaInvocationsPerInstance: invocations / instances,
    usdPerInstance: usd / instances,
    usdPer1000Instances: (usd / instances) * 1000,
  };
}
