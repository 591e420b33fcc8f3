import { cloudwatch } from "../../shared/aws/clients/cloudwatch.js";
import { ec2 } from "../../shared/aws/clients/ec2.js";
import { lambdaHandler } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { checkRejectedCalls, checkRejectedInputSchema } from "../../shared/steps/check-rejected.js";

/** After the watch window: reads MetadataNoTokenRejected for the instances the execution enforced. */
export function createHandler(now: () => Date = () => new Date()) {
  return lambdaHandler(async (input: unknown) => {
    const parsed = parseStepInput(checkRejectedInputSchema, input, "CheckRejected");
    logger.appendKeys({ eventId: parsed.event.eventId });
    return checkRejectedCalls(parsed, { cloudwatch, ec2, logger, now });
  });
}

export const handler = createHandler();
