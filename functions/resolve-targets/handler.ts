import { configuredDirectory, type OrganizationDirectory } from "../../shared/aws/organization-directory.js";
import { inlinePointersTo } from "../../shared/domain/batch-slices.js";
import { loadResolveTargetsConfig, type ResolveTargetsConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { resolveDelivery } from "../../shared/steps/resolve-targets.js";

/**
 * First step: the raw EventBridge event in, batches of instances out (pointers that carry their instances until the
 * state machine's StoreWorkList has written them to the ledger). Never throws on a malformed event. In
 * organization mode it first asks the directory about the envelope's account, so the checks can refuse it. This
 * entry is the single-account stack's: its only directory is a configured account list, so its bundle carries no
 * AWS SDK; the hub deploys organization-handler.ts, which reads Organizations.
 */
export function createHandler(
  config: ResolveTargetsConfig,
  now: () => Date = () => new Date(),
  directory: OrganizationDirectory | undefined = configuredDirectoryFor(config),
) {
  return lambdaHandler(async (event: unknown) => {
    const resolved = await resolveDelivery(event, config, now(), directory);
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
    // StoreWorkList writes each batch's instances to the ledger and keeps only the pointers in the state.
    return { ...resolved, batches: inlinePointersTo(resolved.batches) };
  });
}

/** The organization's accounts as configured (ORGANIZATION_ACCOUNTS), if they are. */
export function configuredDirectoryFor(config: ResolveTargetsConfig): OrganizationDirectory | undefined {
  return config.organization?.accounts ? configuredDirectory(config.organization.accounts) : undefined;
}

export const handler = onColdStart(() => createHandler(loadResolveTargetsConfig(process.env)));
