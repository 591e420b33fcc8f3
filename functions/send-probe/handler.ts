import { ssm } from "../../shared/aws/clients/ssm.js";
import { batchStepHandler } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { sendProbeBatch } from "../../shared/steps/send-probe.js";

/** Sends the probe to the batch's online instances. */
export function createHandler(now: () => Date = () => new Date()) {
  return batchStepHandler("SendProbe", (batch) => sendProbeBatch(batch, { ssm, logger, now }));
}

export const handler = createHandler();
