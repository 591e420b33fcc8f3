import type { FlowRun } from "../local/runner/run-flow.js";

/*
 * Public prices, us-east-1, from https://aws.amazon.com/step-functions/pricing/ and https://aws.amazon.com/lambda/pricing/
 * (read 2026-12-01). Standard bills every state transition, retries included, and one per Distributed Map child
 * started. Express bills each execution started ($1.00 per million requests) and its duration, rounded up to the
 * next 100 ms, times its memory in 64 MB chunks ($0.06 per GB-hour for the first 1,000 GB-hours a month).
 */
/** Step Functions Standard: $0.025 per 1,000 state transitions. */
export const USD_PER_TRANSITION = 0.025 / 1000;
/** Step Functions Express: $1.00 per million executions started. */
export const USD_PER_EXPRESS_REQUEST = 1 / 1_000_000;
/** Step Functions Express: $0.06 per GB-hour of duration (the first tier). */
export const USD_PER_EXPRESS_GB_SECOND = 0.06 / 3600;
/**
 * What an Express child's memory comes to: 50 MB plus the definition (about 40 KB) plus its payload (a batch of 50
 * instances is under 100 KB), so the first 64 MB chunk.
 */
export const EXPRESS_BILLED_MEMORY_GB = 64 / 1024;
/** Lambda arm64: $0.20 per million requests and $0.0000133334 per GB-second. */
export const USD_PER_LAMBDA_REQUEST = 0.2 / 1_000_000;
export const USD_PER_GB_SECOND_ARM = 0.0000133334;
/** What the cost model assumes of each invocation: the deployed memory, and a billed duration (see README). */
export const LAMBDA_MEMORY_GB = 0.25;
export const ASSUMED_BILLED_SECONDS_PER_INVOCATION = 0.1;
/**
 * EventBridge Scheduler: $1.00 per million scheduled invocations in us-east-1, after 14 million free a month
 * (https://aws.amazon.com/eventbridge/pricing/, read 2026-12-02; left out here, as Lambda's free tier is). One per
 * schedule fired: the watch after enforcing. Lambda's retries of the function it invokes are Lambda invocations.
 */
export const USD_PER_SCHEDULER_INVOCATION = 1 / 1_000_000;
/**
 * The rest of what a launch causes, at us-east-1 list prices (read 2026-12-02): the ledger (DynamoDB on-demand,
 * $0.625 per million write and $0.125 per million read request units, https://aws.amazon.com/dynamodb/pricing/on-demand/;
 * every item the guard writes is under 1 KB and every read is a strongly consistent read under 4 KB, one unit each),
 * CloudWatch GetMetricData ($0.01 per 1,000 metrics requested, https://aws.amazon.com/cloudwatch/pricing/) and SNS
 * ($0.50 per million publishes, https://aws.amazon.com/sns/pricing/; email and Chatbot deliveries are not counted).
 * EC2, SSM Run Command and Organizations calls cost nothing.
 */
export const USD_PER_DYNAMODB_WRITE = 0.625 / 1_000_000;
export const USD_PER_DYNAMODB_READ = 0.125 / 1_000_000;
export const USD_PER_METRIC_REQUESTED = 0.01 / 1000;
export const USD_PER_SNS_PUBLISH = 0.5 / 1_000_000;
/**
 * Security Hub CSPM finding ingestion (issue 21, with the securityHub setting): the first 10,000 finding ingestion
 * events per account and region each month are free, then $0.00003 each ("AWS Security Hub pricing", figures as the
 * research note quotes them; the pricing page itself was not in the documentation searched). Priced here past the
 * free tier: a fleet big enough to care about the cost is past it. GetFindings, the EC2.8 lookup, is not billed.
 * The evidence records' writes and reads are DynamoDB calls, counted with the ledger's; the sweep's re-proofs are
 * executions, counted with the rest.
 */
export const USD_PER_FINDING_INGESTED = 0.00003;

export interface FlowCosts {
  instances: number;
  executions: number;
  apiCallsPerInstance: number;
  /** Standard transitions billed (parent and Standard children, including each child started). */
  transitionsPerInstance: number;
  /** Express child executions started, and their billed seconds. */
  expressExecutionsPerInstance: number;
  expressBilledSecondsPerInstance: number;
  lambdaInvocationsPerInstance: number;
  /** EventBridge Scheduler invocations: the watches after enforcing that fired. */
  schedulerInvocationsPerInstance: number;
  usdPerInstance: number;
  usdPer1000Instances: number;
  /** Where the money goes, per 1,000 instances. */
  usdPer1000: {
    transitions: number;
    express: number;
    lambda: number;
    scheduler: number;
    ledgerMetricsSns: number;
    securityHub: number;
  };
}

/** Express bills duration in 100 ms steps. */
function billedExpressSeconds(durationMs: number): number {
  return Math.max(1, Math.ceil(durationMs / 100)) / 10;
}

/** Per-instance API calls, transitions, invocations and estimated cost of a run: everything every execution did. */
export function flowCosts(run: FlowRun): FlowCosts {
  const instances = run.reports.reduce((n, r) => n + r.results.length, 0);
  // Organization mode: every member account's calls, not only the hub's.
  const apiCalls = Object.values(run.org?.calls ?? run.sim.calls).reduce((a, b) => a + b, 0);
  const express = run.childExecutionType === "EXPRESS";
  let transitions = 0;
  let expressExecutions = 0;
  let expressSeconds = 0;
  for (const e of run.executions) {
    transitions += e.stats.parentTransitions;
    for (const child of e.stats.children) {
      if (express) {
        expressExecutions++;
        expressSeconds += billedExpressSeconds(child.durationMs);
      } else {
        transitions += child.transitions;
      }
    }
  }
  const invocations = Object.values(run.lambdaInvocations).reduce((a, b) => a + b, 0);
  const usdTransitions = transitions * USD_PER_TRANSITION;
  const usdExpress =
    expressExecutions * USD_PER_EXPRESS_REQUEST + expressSeconds * EXPRESS_BILLED_MEMORY_GB * USD_PER_EXPRESS_GB_SECOND;
  const usdLambda =
    invocations *
    (USD_PER_LAMBDA_REQUEST + LAMBDA_MEMORY_GB * ASSUMED_BILLED_SECONDS_PER_INVOCATION * USD_PER_GB_SECOND_ARM);
  // Each schedule fired is one asynchronous invocation of CheckRejected, however many attempts Lambda made of it.
  const schedulerInvocations = run.asyncInvocations.filter((a) => a.functionName === "CheckRejected").length;
  const usdScheduler = schedulerInvocations * USD_PER_SCHEDULER_INVOCATION;
  const calls = (api: keyof typeof run.sim.calls) => (run.org ? (run.org.calls[api] ?? 0) : run.sim.calls[api]);
  const accounts = [run.sim, ...(run.org?.memberAccounts().map((m) => m.sim) ?? [])];
  const usdOther =
    calls("PutItem") * USD_PER_DYNAMODB_WRITE +
    (calls("GetItem") + calls("Query")) * USD_PER_DYNAMODB_READ +
    accounts.reduce((n, a) => n + a.metricsRequested, 0) * USD_PER_METRIC_REQUESTED +
    calls("Publish") * USD_PER_SNS_PUBLISH;
  const findingsIngested = accounts.reduce((n, a) => n + a.securityHub.imports.reduce((k, i) => k + i.findings, 0), 0);
  const usdSecurityHub = findingsIngested * USD_PER_FINDING_INGESTED;
  const usd = usdTransitions + usdExpress + usdLambda + usdScheduler + usdOther + usdSecurityHub;
  const per1000 = (x: number) => (x / instances) * 1000;
  return {
    instances,
    executions: run.executions.length,
    apiCallsPerInstance: apiCalls / instances,
    transitionsPerInstance: transitions / instances,
    expressExecutionsPerInstance: expressExecutions / instances,
    expressBilledSecondsPerInstance: expressSeconds / instances,
    lambdaInvocationsPerInstance: invocations / instances,
    schedulerInvocationsPerInstance: schedulerInvocations / instances,
    usdPerInstance: usd / instances,
    usdPer1000Instances: per1000(usd),
    usdPer1000: {
      transitions: per1000(usdTransitions),
      express: per1000(usdExpress),
      lambda: per1000(usdLambda),
      scheduler: per1000(usdScheduler),
      ledgerMetricsSns: per1000(usdOther),
      securityHub: per1000(usdSecurityHub),
    },
  };
}
