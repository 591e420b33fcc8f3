import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { concludeUnreachable, type RoundStep, routeAfter, targetOf } from "../domain/batch.js";
import { type BatchLedger, leaveSlice, openBatch } from "../domain/batch-slices.js";
import type { SpokeTarget } from "../domain/confused-deputy.js";
import { NonRetryableSpokeUnreachableError } from "../domain/errors.js";
import { type Batch, batchInputSchema } from "../domain/model.js";
import { logger } from "./logger.js";
import { parseStepInput } from "./step-input.js";

/**
 * Wraps a step's core function the same way for every function: Powertools adds the Lambda context to each log
 * line, and keys from the previous invocation are cleared so one event's ids never leak into another's logs.
 */
export function lambdaHandler<TEvent, TResult>(
  core: (event: TEvent) => Promise<TResult>,
): middy.MiddyfiedHandler<TEvent, TResult, Error, Context> {
  // The function's own timeout (30 s) ends a stuck step, which Step Functions reports as Sandbox.Timedout and retries
  // only where the step is idempotent; middy's early-timeout timer would only add a second clock.
  return middy<TEvent, TResult, Error, Context>({ timeoutEarlyInMillis: 0 })
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event) => core(event));
}

/**
 * Builds the handler on the first invocation of the container, so configuration is read (and a bad one throws)
 * once per cold start, while importing the module — as tests and the local runner do — reads no environment.
 */
export function onColdStart<TEvent, TResult>(
  build: () => (event: TEvent, context: Context) => Promise<TResult>,
): (event: TEvent, context: Context) => Promise<TResult> {
  let built: ((event: TEvent, context: Context) => Promise<TResult>) | undefined;
  return (event, context) => {
    built ??= build();
    return built(event, context);
  };
}

/** The steps of the polling loop, by their state's name, and the name routeAfter knows them by. */
export const ROUND_STEP_OF = {
  Enforce: "enforce",
  CheckApplied: "check-applied",
  CheckManaged: "check-managed",
  SendProbe: "send-probe",
  CheckProbe: "check-probe",
} as const satisfies Record<string, RoundStep>;
export type BatchStepName = keyof typeof ROUND_STEP_OF;

/**
 * The handler of a step inside the Map: validates the batch it receives (at a slice's start, a pointer it reads from
 * the ledger), tags the logs with the event and instance ids, runs the step's core function on it, and says where
 * the batch goes next (routeAfter); a batch whose slice is over leaves its progress in the ledger (leaveSlice).
 */
export function batchStepHandler(
  step: BatchStepName,
  run: (batch: Batch) => Promise<Batch>,
  now: () => Date,
  ledger?: BatchLedger,
) {
  return lambdaHandler(async (input: unknown) => {
    const batch = await openBatch(parseStepInput(batchInputSchema, input, step), ledger);
    logger.appendKeys({ eventId: batch.eventId, instanceIds: batch.instances.map((i) => i.instanceId) });
    return leaveSlice(routeAfter(ROUND_STEP_OF[step], await run(batch), now()), ledger);
  });
}

/**
 * A batch step that acts in the batch's account and region: `clientsFor` gives the module-level clients in
 * single-account mode, or clients holding the spoke session in organization mode. When the spoke role cannot be
 * assumed, the batch's instances end `error` ("cannot assume the spoke role in ACCOUNT/REGION: CODE") and the
 * execution goes on.
 */
export function batchStepInAccount<C>(
  step: BatchStepName,
  clientsFor: (target: SpokeTarget | undefined) => Promise<C>,
  run: (batch: Batch, clients: C) => Promise<Batch>,
  now: () => Date,
  ledger?: BatchLedger,
) {
  return batchStepHandler(
    step,
    (batch) => inBatchAccount(batch, clientsFor, (clients) => run(batch, clients), now),
    now,
    ledger,
  );
}

/** Runs a step on the batch with clients for its account and region; an unreachable spoke ends it `error`. */
export async function inBatchAccount<C>(
  batch: Batch,
  clientsFor: (target: SpokeTarget | undefined) => Promise<C>,
  run: (clients: C) => Promise<Batch>,
  now: () => Date,
): Promise<Batch> {
  let clients: C;
  try {
    clients = await clientsFor(targetOf(batch));
  } catch (error) {
    if (!(error instanceof NonRetryableSpokeUnreachableError)) throw error;
    logger.warn("Spoke unreachable", { account: batch.account, region: batch.region, error: error.message });
    return concludeUnreachable(batch, error.message, now());
  }
  return run(clients);
}
