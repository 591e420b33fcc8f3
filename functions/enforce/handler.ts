import { cloudwatch } from "../../shared/clients/cloudwatch.js";
import { ec2 } from "../../shared/clients/ec2.js";
import { enforceBatch } from "../../shared/enforce.js";
import { imageSupportLookup } from "../../shared/image-support.js";
import { batchStepHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";

/** Sets HttpTokens=required where needed (or says why not). The AMI lookup is cached per container. */
export function createHandler(now: () => Date = () => new Date()) {
  const imageSupport = imageSupportLookup();
  return batchStepHandler("Enforce", (batch) => enforceBatch(batch, { ec2, cloudwatch, logger, now, imageSupport }));
}

export const handler = createHandler();
