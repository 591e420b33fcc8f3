import { ec2 } from "../../shared/aws/clients/ec2.js";
import { type GuardAccountDefaultConfig, loadGuardAccountDefaultConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { guardAccountDefault, guardAccountDefaultInputSchema } from "../../shared/steps/guard-account-default.js";

/** After a ModifyInstanceMetadataDefaults that weakened the defaults: read them, and set them back if configured. */
export function createHandler(config: GuardAccountDefaultConfig, now: () => Date = () => new Date()) {
  return lambdaHandler(async (input: unknown) => {
    const parsed = parseStepInput(guardAccountDefaultInputSchema, input, "GuardAccountDefault");
    logger.appendKeys({ eventId: parsed.event.eventId });
    const outcome = await guardAccountDefault(parsed, { ec2, logger, config, now });
    logger.info("Account default guarded", { ...outcome });
    return outcome;
  });
}

export const handler = onColdStart(() => createHandler(loadGuardAccountDefaultConfig(process.env)));
