import type { Context } from "aws-lambda";
import { type SimApi, simCrashPoint } from "../sim/sim-account.js";
import { LAMBDA_ASYNC_PAYLOAD_LIMIT_BYTES, LAMBDA_SYNC_PAYLOAD_LIMIT_BYTES, payloadBytes } from "./aws-quotas.js";
import type { LambdaHandler } from "./lambda-functions.js";

/**
 * Crash a function (Lambda.Unknown, as Step Functions reports a runtime crash) on these invocation numbers: before
 * its handler runs (nothing happened), or after it ran to the end, every AWS call made, with its output lost (the
 * worst moment: everything done, nothing recorded).
 */
export type LambdaFaults = Partial<Record<string, number[]>>;

export interface InvocationFaults {
  before: LambdaFaults;
  after: LambdaFaults;
  /** Crash a function on these invocations right after this AWS call of it took effect (the rest never runs). */
  afterCall: Partial<Record<string, { api: SimApi; invocations: number[] }>>;
}

/** One invocation of a deployed function by name, as Lambda runs it: counted, JSON in and out, with its faults. */
export type InvokeFunction = (functionName: string, payload: unknown) => Promise<unknown>;

export const SIM_REGION = "eu-west-1";
export const SIM_ACCOUNT_ID = "111122223333";

export function lambdaContext(functionName: string, invocation: number): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${SIM_REGION}:${SIM_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: "256",
    awsRequestId: `local-${functionName}-${invocation}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** An error as Step Functions presents a failed Lambda: the name routes Retry/Catch, the cause is Lambda's JSON. */
export function lambdaError(name: string, message: string): Error {
  const error = new Error(JSON.stringify({ errorType: name, errorMessage: message }));
  error.name = name;
  return error;
}

/** Invokes the local functions (keyed by function name) as Lambda would, counting each invocation in `invocations`. */
export function functionInvoker(
  functions: Record<string, LambdaHandler>,
  invocations: Record<string, number>,
  faults: InvocationFaults,
): InvokeFunction {
  return async (functionName, input) => {
    const handler = functions[functionName];
    if (!handler) throw new Error(`The local runner has no function ${functionName}`);
    // Lambda refuses a synchronous request over 6 MB before running anything ("Lambda quotas"; "Invoke").
    const requestBytes = payloadBytes(input);
    if (requestBytes > LAMBDA_SYNC_PAYLOAD_LIMIT_BYTES) {
      throw lambdaError(
        "Lambda.RequestTooLargeException",
        `${requestBytes} byte payload is too large for the RequestResponse invocation type (limit ${LAMBDA_SYNC_PAYLOAD_LIMIT_BYTES} bytes)`,
      );
    }
    const n = (invocations[functionName] ?? 0) + 1;
    invocations[functionName] = n;
    if (faults.before[functionName]?.includes(n)) {
      throw lambdaError("Lambda.Unknown", "The function crashed (simulated): Runtime.ExitError");
    }
    const crashesAfter = faults.after[functionName]?.includes(n) ?? false;
    // A JSON round trip, as Lambda's invoke does: nothing but data crosses between states.
    const payload = JSON.parse(JSON.stringify(input ?? null)) as unknown;
    const afterCall = faults.afterCall[functionName];
    const crashPoint = afterCall?.invocations.includes(n) ? { api: afterCall.api, crashed: false } : undefined;
    let output: unknown;
    try {
      const run = () => handler(payload, lambdaContext(functionName, n));
      output = await (crashPoint ? simCrashPoint.run(crashPoint, run) : run());
    } catch (error) {
      if (crashPoint?.crashed) throw lambdaError("Lambda.Unknown", `The function crashed after ${crashPoint.api}`);
      const e = error instanceof Error ? error : new Error(String(error));
      throw lambdaError(e.name, e.message);
    }
    if (crashPoint?.crashed) {
      throw lambdaError(
        "Lambda.Unknown",
        `The function crashed after ${crashPoint.api} (simulated): Runtime.ExitError`,
      );
    }
    if (crashesAfter) {
      throw lambdaError("Lambda.Unknown", "The function crashed after its work (simulated): Runtime.ExitError");
    }
    // The function ran (its side effects stand), but Lambda cannot return a response over 6 MB: the invocation fails.
    // The error type is the one Lambda's runtime API reports for it (not in the corpus of AWS pages checked).
    const responseBytes = payloadBytes(output);
    if (responseBytes > LAMBDA_SYNC_PAYLOAD_LIMIT_BYTES) {
      throw lambdaError(
        "Function.ResponseSizeTooLarge",
        `Response payload size (${responseBytes} bytes) exceeded maximum allowed payload size (${LAMBDA_SYNC_PAYLOAD_LIMIT_BYTES} bytes)`,
      );
    }
    return JSON.parse(JSON.stringify(output ?? null)) as unknown;
  };
}

/** What Lambda's asynchronous invocation did with one event, in the end. */
export interface AsyncInvocationRecord {
  functionName: string;
  payload: unknown;
  attempts: number;
  /** Set when every attempt failed: the event went to the function's on-failure destination (the alarmed DLQ). */
  deadLettered?: string;
  /** Set when Lambda refused the event at the door (over the 1 MB asynchronous payload): never queued, never run. */
  refused?: string;
  output?: unknown;
}

/**
 * Lambda's asynchronous invocation (how EventBridge and EventBridge Scheduler invoke a function): on an error it
 * retries twice, one minute and then two minutes later, and then sends the event to the on-failure destination
 * (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html). The promise settles with
 * the outcome; it never rejects.
 */
export async function invokeAsync(
  invoke: InvokeFunction,
  functionName: string,
  payload: unknown,
  sleep: (ms: number) => Promise<void>,
): Promise<AsyncInvocationRecord> {
  // An asynchronous request over 1 MB is refused by Invoke itself ("Invoke" API reference), so the caller
  // (EventBridge, Scheduler) sees the error and Lambda never queues the event: no attempt, no retry, no DLQ.
  const bytes = payloadBytes(payload);
  if (bytes > LAMBDA_ASYNC_PAYLOAD_LIMIT_BYTES) {
    return {
      functionName,
      payload,
      attempts: 0,
      refused: `RequestTooLargeException: ${bytes} byte payload is too large for the Event invocation type (limit ${LAMBDA_ASYNC_PAYLOAD_LIMIT_BYTES} bytes)`,
    };
  }
  const delaysMs = [60_000, 120_000];
  let lastError = "";
  for (let attempt = 1; attempt <= delaysMs.length + 1; attempt++) {
    try {
      const output = await invoke(functionName, payload);
      return { functionName, payload, attempts: attempt, output };
    } catch (error) {
      lastError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      const delay = delaysMs[attempt - 1];
      if (delay !== undefined) await sleep(delay);
    }
  }
  return { functionName, payload, attempts: delaysMs.length + 1, deadLettered: lastError };
}
