import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { logger } from "./logger.js";

/**
 * Wraps a step's core function the same way for every function: Powertools adds the Lambda context to each log
 * line, and keys from the previous invocation are cleared so one event's ids never leak into another's logs.
 */
export function lambdaHandler<TEvent, TResult>(
  core: (event: TEvent) => Promise<TResult>,
): middy.MiddyfiedHandler<TEvent, TResult, Error, Context> {
  // Step Functions' TimeoutSeconds is the one timeout authority; middy's early-timeout timer is switched off.
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
