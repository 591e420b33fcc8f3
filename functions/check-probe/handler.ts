import { ssm } from "../../shared/aws/clients/ssm.js";
import { batchStepHandler } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { checkProbeBatch } from "../../shared/steps/check-probe.js";

/** Reads the probe's results and turns them into verdicts. */
export function createHandler(now: () => Date = () => new Date()) {
  return batchStepHandler("CheckProbe", (batch) => checkProbeBatch(batch, { ssm, logger, now }));
}

export const handler = createHandler();
