import { cloudwatch, ec2 } from "../../shared/aws-clients.js";
import { enforceBatch } from "../../shared/enforce.js";
import { imageSupportLookup } from "../../shared/image-support.js";
import { lambdaHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { batchSchema } from "../../shared/model.js";
import { parseStepInput } from "../../shared/step-input.js";

export function createHandler(now: () => Date = () => new Date()) {
  const imageSupport = imageSupportLookup();
  return lambdaHandler(async (input: unknown) => {
    const batch = parseStepInput(batchSchema, input, "Enforce");
    logger.appendKeys({ eventId: batch.eventId, instanceIds: batch.instances.map((i) => i.instanceId) });
    return enforceBatch(batch, { ec2, cloudwatch, logger, now, imageSupport });
  });
}

export const handler = createHandler();
