import { ssm } from "../../shared/aws-clients.js";
import { lambdaHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { batchSchema } from "../../shared/model.js";
import { checkProbeBatch } from "../../shared/probe.js";
import { parseStepInput } from "../../shared/step-input.js";

export function createHandler(now: () => Date = () => new Date()) {
  return lambdaHandler(async (input: unknown) => {
    const batch = parseStepInput(batchSchema, input, "CheckProbe");
    logger.appendKeys({ eventId: batch.eventId, instanceIds: batch.instances.map((i) => i.instanceId) });
    return checkProbeBatch(batch, { ssm, logger, now });
  });
}

export const handler = createHandler();
