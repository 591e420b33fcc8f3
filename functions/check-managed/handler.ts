import { ec2, ssm } from "../../shared/aws-clients.js";
import { checkManagedBatch } from "../../shared/check-managed.js";
import { batchStepHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";

/** One poll of SSM registration for the batch; picks each instance's probe. */
export function createHandler(now: () => Date = () => new Date()) {
  return batchStepHandler("CheckManaged", (batch) => checkManagedBatch(batch, { ec2, ssm, logger, now }));
}

export const handler = createHandler();
