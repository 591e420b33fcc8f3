import { finalizeBatch } from "../../shared/finalize.js";
import { lambdaHandler } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { batchSchema } from "../../shared/model.js";
import { parseStepInput } from "../../shared/step-input.js";

/** Ends every instance of the batch with one verdict; runs after the last poll and after any Catch. */
export function createHandler(now: () => Date = () => new Date()) {
  return lambdaHandler(async (input: unknown) => {
    const batch = parseStepInput(batchSchema, input, "FinalizeBatch");
    logger.appendKeys({ eventId: batch.eventId });
    const results = finalizeBatch(batch, now());
    logger.info("Batch finished", { verdicts: results.map((r) => `${r.instanceId}=${r.verdict}`) });
    return results;
  });
}

export const handler = createHandler();
