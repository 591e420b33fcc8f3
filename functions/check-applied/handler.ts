import { checkAppliedBatch } from "../../shared/check-applied.js";
import { ec2 } from "../../shared/clients/ec2.js";
import { batchStepHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";

/** One poll of MetadataOptions.State for the batch. */
export function createHandler(now: () => Date = () => new Date()) {
  return batchStepHandler("CheckApplied", (batch) => checkAppliedBatch(batch, { ec2, logger, now }));
}

export const handler = createHandler();
