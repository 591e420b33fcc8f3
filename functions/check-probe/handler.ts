import { ssm } from "../../shared/clients/ssm.js";
import { batchStepHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { checkProbeBatch } from "../../shared/probe.js";

/** Reads the probe's results and turns them into verdicts. */
export function createHandler(now: () => Date = () => new Date()) {
  return batchStepHandler("CheckProbe", (batch) => checkProbeBatch(batch, { ssm, logger, now }));
}

export const handler = createHandler();
