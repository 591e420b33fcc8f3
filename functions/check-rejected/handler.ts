import { cloudwatchForTarget } from "../../shared/aws/clients/cloudwatch.js";
import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { loadOrganizationConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { checkRejectedCalls, checkRejectedInputSchema } from "../../shared/steps/check-rejected.js";

/** After the watch window: reads MetadataNoTokenRejected for the instances the execution enforced, in their account. */
export function createHandler(now: () => Date = () => new Date(), access?: SpokeAccess) {
  const ec2For = ec2ForTarget(access);
  const cloudwatchFor = cloudwatchForTarget(access);
  return lambdaHandler(async (input: unknown) => {
    const parsed = parseStepInput(checkRejectedInputSchema, input, "CheckRejected");
    logger.appendKeys({ eventId: parsed.event.eventId });
    const target = { account: parsed.event.account, region: parsed.event.region, eventId: parsed.event.eventId };
    return checkRejectedCalls(parsed, {
      cloudwatch: await cloudwatchFor(target),
      ec2: await ec2For(target),
      logger,
      now,
    });
  });
}

export const handler = onColdStart(() => createHandler(undefined, spokeAccessFor(loadOrganizationConfig(process.env))));
