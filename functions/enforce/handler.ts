import { cloudwatch } from "../../shared/aws/clients/cloudwatch.js";
import { ec2 } from "../../shared/aws/clients/ec2.js";
import { imageSupportLookup } from "../../shared/aws/image-support.js";
import { batchStepHandler } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { enforceBatch } from "../../shared/steps/enforce.js";

/** Sets HttpTokens=required where needed (or says why not). The AMI lookup is cached per container. */
export function createHandler(now: () => Date = () => new Date()) {
  const imageSupport = imageSupportLookup();
  return batchStepHandler("Enforce", (batch) => enforceBatch(batch, { ec2, cloudwatch, logger, now, imageSupport }));
}

export const handler = createHandler();
