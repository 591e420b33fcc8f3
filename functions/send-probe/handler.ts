import { ssm } from "../../shared/aws-clients.js";
import { lambdaHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { batchSchema } from "../../shared/model.js";
import { sendProbeBatch } from "../../shared/probe.js";
import { parseStepInput } from "../../shared/step-input.js";

export function createHandler(now: () => Date = () => new Date()) {
  return lambdaHandler(async (input: unknown) => {
    const batch = parseStepInput(batchSchema, input, "SendProbe");
    logger.appendKeys({ eventId: batch.eventId, instanceIds: batch.instances.map((i) => i.instanceId) });
    return sendProbeBatch(batch, { ssm, logger, now });
  });
}

export const handler = createHandler();
