import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { type Batch, batchSchema } from "../domain/model.js";
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

/**
 * The handler of a step inside the Map: validates the batch it receives, tags the logs with the event and instance
 * ids, and runs the step's core function on it.
 */
export function batchStepHandler(step: string, run: (batch: Batch) => Promise<Batch>) {
  return lambdaHandler(async (input: unknown) => {
    const batch = parseStepInput(batchSchema, input, step);
    logger.appendKeys({ eventId: batch.eventId, instanceIds: batch.instances.map((i) => i.instanceId) });
    return run(batch);
  });
}
