import { ec2 } from "../../shared/aws/clients/ec2.js";
import { lambdaHandler } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { cachedPosture } from "../../shared/steps/assess-account.js";

/** Reads the account's IMDS defaults for the report's root cause; read-only, cached for five minutes per container. */
export function createHandler(now: () => Date = () => new Date()) {
  const posture = cachedPosture();
  return lambdaHandler(async (_input: unknown) => {
    const result = await posture(ec2, now());
    logger.info("Account posture", { ...result });
    return result;
  });
}

export const handler = createHandler();
