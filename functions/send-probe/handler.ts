import { ssmForTarget } from "../../shared/aws/clients/ssm.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { loadOrganizationConfig } from "../../shared/runtime/config.js";
import { batchStepInAccount, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { sendProbeBatch } from "../../shared/steps/send-probe.js";

/** Sends the probe to the batch's online instances, in their account and region. */
export function createHandler(now: () => Date = () => new Date(), access?: SpokeAccess) {
  const ssmFor = ssmForTarget(access);
  return batchStepInAccount("SendProbe", ssmFor, (batch, ssm) => sendProbeBatch(batch, { ssm, logger, now }), now);
}

export const handler = onColdStart(() => createHandler(undefined, spokeAccessFor(loadOrganizationConfig(process.env))));
