import { checkManagedBatch } from "../../shared/check-managed.js";
import { ec2 } from "../../shared/clients/ec2.js";
import { ssm } from "../../shared/clients/ssm.js";
import { batchStepHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";

/** One poll of SSM registration for the batch; picks each instance's probe. */
export function createHandler(now: () => Date = () => new Date()) {
  return batchStepHandler("CheckManaged", (batch) => checkManagedBatch(batch, { ec2, ssm, logger, now }));
}

export const handler = createHandler();
