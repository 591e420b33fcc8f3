import { ec2, ssm } from "../../shared/aws-clients.js";
import { checkManagedBatch } from "../../shared/check-managed.js";
import { lambdaHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { batchSchema } from "../../shared/model.js";
import { parseStepInput } from "../../shared/step-input.js";

export function createHandler(now: () => Date = () => new Date()) {
  return lambdaHandler(async (input: unknown) => {
    const batch = parseStepInput(batchSchema, input, "CheckManaged");
    logger.appendKeys({ eventId: batch.eventId, instanceIds: batch.instances.map((i) => i.instanceId) });
    return checkManagedBatch(batch, { ec2, ssm, logger, now });
  });
}

export const handler = createHandler();
