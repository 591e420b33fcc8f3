import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { dynamoResultStore, LEDGER_RETENTION_SECONDS, type ResultStore } from "../../shared/aws/result-store.js";
import { batchSchema } from "../../shared/domain/model.js";
import { loadLedgerTableName } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { finalizeBatch, inlineResults, summarizeBatch } from "../../shared/steps/finalize-batch.js";

/**
 * Ends every instance of the batch with one verdict (after the last poll and after any Catch), stores the results,
 * and hands the Map only the counts.
 */
export function createHandler(store: ResultStore, now: () => Date = () => new Date()) {
  return lambdaHandler(async (input: unknown) => {
    const batch = parseStepInput(batchSchema, input, "FinalizeBatch");
    logger.appendKeys({ eventId: batch.eventId });
    const at = now();
    const results = finalizeBatch(batch, at);
    logger.info("Batch finished", { verdicts: results.map((r) => `${r.instanceId}=${r.verdict}`) });
    if (batch.storeFailure) {
      // The ASL's Catch after the store's retries: the verdicts travel in the state instead of being lost.
      logger.error("The ledger is unavailable; returning the verdicts inline", { storeFailure: batch.storeFailure });
      return { ...summarizeBatch(batch.batchIndex, results), inline: inlineResults(results) };
    }
    const expiresAt = Math.floor(at.getTime() / 1000) + LEDGER_RETENTION_SECONDS;
    // The event's ledger key: namespaced by account and region in organization mode, where eventIDs may repeat.
    await store.put(batch.ledgerKey ?? batch.eventId, batch.batchIndex, results, expiresAt);
    return summarizeBatch(batch.batchIndex, results);
  });
}

export const handler = onColdStart(() => createHandler(dynamoResultStore(dynamodb, loadLedgerTableName(process.env))));
