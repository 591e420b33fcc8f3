import { loadResolveTargetsConfig, type ResolveTargetsConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { resolveTargets } from "../../shared/steps/resolve-targets.js";

/** First step: the raw EventBridge event in, batches of instances out. Never throws on a malformed event. */
export function createHandler(config: ResolveTargetsConfig, now: () => Date = () => new Date()) {
  return lambdaHandler(async (event: unknown) => {
    const resolved = resolveTargets(event, config, now());
    logger.appendKeys({ eventId: resolved.event.eventId });
    logger.info("Resolved targets", {
      eventName: resolved.event.eventName,
      targets: resolved.targetCount,
      rejected: resolved.rejected.length,
      ignored: resolved.ignored,
      problem: resolved.problem,
    });
    return resolved;
  });
}

export const handler = onColdStart(() => createHandler(loadResolveTargetsConfig(process.env)));
