import { cloudwatchForTarget } from "../../shared/aws/clients/cloudwatch.js";
import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { sns } from "../../shared/aws/clients/sns.js";
import type { TopicRouting } from "../../shared/aws/publish.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { loadNotifyConfig, loadOrganizationConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { checkRejectedInputSchema, watchAfterEnforcing } from "../../shared/steps/check-rejected.js";

/**
 * The watch after enforcing, invoked by the schedule Notify booked: reads MetadataNoTokenRejected for the instances
 * the execution enforced, in their account, and publishes the rejected-calls alert (from the hub) when any refused.
 */
export function createHandler(topics: TopicRouting, now: () => Date = () => new Date(), access?: SpokeAccess) {
  const ec2For = ec2ForTarget(access);
  const cloudwatchFor = cloudwatchForTarget(access);
  return lambdaHandler(async (input: unknown) => {
    const parsed = parseStepInput(checkRejectedInputSchema, input, "CheckRejected");
    logger.appendKeys({ eventId: parsed.event.eventId });
    const target = { account: parsed.event.account, region: parsed.event.region, eventId: parsed.event.eventId };
    return watchAfterEnforcing(parsed, {
      cloudwatch: await cloudwatchFor(target),
      ec2: await ec2For(target),
      sns,
      config: topics,
      logger,
      now,
    });
  });
}

export const handler = onColdStart(() =>
  createHandler(loadNotifyConfig(process.env), undefined, spokeAccessFor(loadOrganizationConfig(process.env))),
);
