import { ec2 } from "../../shared/aws/clients/ec2.js";
import { batchStepHandler } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { checkAppliedBatch } from "../../shared/steps/check-applied.js";

/** One poll of MetadataOptions.State for the batch. */
export function createHandler(now: () => Date = () => new Date()) {
  return batchStepHandler("CheckApplied", (batch) => checkAppliedBatch(batch, { ec2, logger, now }));
}

export const handler = createHandler();
