import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import {
  type GuardAccountDefaultConfig,
  loadGuardAccountDefaultConfig,
  loadOrganizationConfig,
} from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { guardAccountDefault, guardAccountDefaultInputSchema } from "../../shared/steps/guard-account-default.js";

/** After a ModifyInstanceMetadataDefaults that weakened the defaults: read them, and set them back if configured. */
export function createHandler(
  config: GuardAccountDefaultConfig,
  now: () => Date = () => new Date(),
  access?: SpokeAccess,
) {
  const ec2For = ec2ForTarget(access);
  return lambdaHandler(async (input: unknown) => {
    const parsed = parseStepInput(guardAccountDefaultInputSchema, input, "GuardAccountDefault");
    logger.appendKeys({ eventId: parsed.event.eventId });
    // In organization mode the default belongs to the event's account and region, changed through its spoke role.
    const { account, region, eventId } = parsed.event;
    const ec2 = await ec2For(access ? { account, region, eventId } : undefined);
    const outcome = await guardAccountDefault(parsed, { ec2, logger, config, now });
    logger.info("Account default guarded", { ...outcome });
    return outcome;
  });
}

export const handler = onColdStart(() =>
  createHandler(
    loadGuardAccountDefaultConfig(process.env),
    undefined,
    spokeAccessFor(loadOrganizationConfig(process.env)),
  ),
);
