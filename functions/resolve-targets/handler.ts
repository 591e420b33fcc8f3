import { organizations } from "../../shared/aws/clients/organizations.js";
import { directoryFor, type OrganizationDirectory } from "../../shared/aws/organization-directory.js";
import { asRecord, text } from "../../shared/domain/event.js";
import { loadResolveTargetsConfig, type ResolveTargetsConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { resolveTargets } from "../../shared/steps/resolve-targets.js";

/**
 * First step: the raw EventBridge event in, batches of instances out. Never throws on a malformed event. In
 * organization mode it first asks the directory about the envelope's account, so the checks can refuse it.
 */
export function createHandler(
  config: ResolveTargetsConfig,
  now: () => Date = () => new Date(),
  directory: OrganizationDirectory | undefined = config.organization
    ? directoryFor(config.organization, organizations)
    : undefined,
) {
  return lambdaHandler(async (event: unknown) => {
    const account = text(asRecord(event)?.account);
    const membership =
      config.organization && directory && account
        ? await directory.membership(account)
        : config.organization
          ? { status: "not-member" as const }
          : undefined;
    const resolved = resolveTargets(event, config, now(), membership);
    logger.appendKeys({ eventId: resolved.event.eventId });
    logger.info("Resolved targets", {
      eventName: resolved.event.eventName,
      account: resolved.event.account,
      region: resolved.event.region,
      targets: resolved.targetCount,
      rejected: resolved.rejected.length,
      ignored: resolved.ignored,
      problem: resolved.problem,
      refused: resolved.refused,
    });
    return resolved;
  });
}

export const handler = onColdStart(() => createHandler(loadResolveTargetsConfig(process.env)));
