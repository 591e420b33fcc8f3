import { cloudwatchForTarget } from "../../shared/aws/clients/cloudwatch.js";
import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { imageSupportLookup } from "../../shared/aws/image-support.js";
import { perAccountRegion, type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { loadOrganizationConfig } from "../../shared/runtime/config.js";
import { batchStepInAccount, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { enforceBatch } from "../../shared/steps/enforce.js";

/**
 * Sets HttpTokens=required where needed (or says why not), in the batch's account and region. The AMI lookup is
 * cached per container and per account and region (AMIs are regional, and private ones per account).
 */
export function createHandler(now: () => Date = () => new Date(), access?: SpokeAccess) {
  const ec2For = ec2ForTarget(access);
  const cloudwatchFor = cloudwatchForTarget(access);
  const imageSupportFor = perAccountRegion(imageSupportLookup);
  return batchStepInAccount(
    "Enforce",
    async (target) => ({
      ec2: await ec2For(target),
      cloudwatch: await cloudwatchFor(target),
      imageSupport: imageSupportFor(target),
    }),
    (batch, clients) => enforceBatch(batch, { ...clients, logger, now }),
    now,
  );
}

export const handler = onColdStart(() => createHandler(undefined, spokeAccessFor(loadOrganizationConfig(process.env))));
