import { z } from "zod";
import { cloudwatch } from "../../shared/aws/clients/cloudwatch.js";
import { ec2 } from "../../shared/aws/clients/ec2.js";
import { imageSupportLookup } from "../../shared/aws/image-support.js";
import { batchSchema } from "../../shared/domain/model.js";
import { lambdaHandler } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { enforceBatch, FIRST_ATTEMPT } from "../../shared/steps/enforce.js";

/**
 * The state machine hands Enforce its batch with `$$.State.RetryCount`, so a retry after a crash can tell a change
 * an earlier attempt made from one it found. A bare batch (an execution still running on the definition from
 * before this field) is a first attempt.
 */
const attemptInputSchema = z.object({ batch: batchSchema, retryCount: z.number().int().min(0) });

function parseEnforceInput(input: unknown): z.infer<typeof attemptInputSchema> {
  const wrapped = typeof input === "object" && input !== null && "batch" in input;
  return wrapped
    ? parseStepInput(attemptInputSchema, input, "Enforce")
    : { batch: parseStepInput(batchSchema, input, "Enforce"), ...FIRST_ATTEMPT };
}

/** Sets HttpTokens=required where needed (or says why not). The AMI lookup is cached per container. */
export function createHandler(now: () => Date = () => new Date()) {
  const imageSupport = imageSupportLookup();
  return lambdaHandler(async (input: unknown) => {
    const { batch, retryCount } = parseEnforceInput(input);
    logger.appendKeys({ eventId: batch.eventId, instanceIds: batch.instances.map((i) => i.instanceId), retryCount });
    return enforceBatch(batch, { ec2, cloudwatch, logger, now, imageSupport }, { retryCount });
  });
}

export const handler = createHandler();
