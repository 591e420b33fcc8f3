import { ec2 } from "../../shared/aws/clients/ec2.js";
import { ssm } from "../../shared/aws/clients/ssm.js";
import { batchStepHandler } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { checkManagedBatch } from "../../shared/steps/check-managed.js";

/** One poll of SSM registration for the batch; picks each instance's probe. */
export function createHandler(now: () => Date = () => new Date()) {
  return batchStepHandler("CheckManaged", (batch) => checkManagedBatch(batch, { ec2, ssm, logger, now }));
}

export const handler = createHandler();
