import { ssm } from "../../shared/clients/ssm.js";
import { batchStepHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { sendProbeBatch } from "../../shared/probe.js";

/** Sends the probe to the batch's online instances. */
export function createHandler(now: () => Date = () => new Date()) {
  return batchStepHandler("SendProbe", (batch) => sendProbeBatch(batch, { ssm, logger, now }));
}

export const handler = createHandler();
