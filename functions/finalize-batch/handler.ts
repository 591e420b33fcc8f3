import { dynamoBatchLedger } from "../../shared/aws/batch-ledger.js";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { dynamoResultStore, LEDGER_RETENTION_SECONDS, type ResultStore } from "../../shared/aws/result-store.js";
import { type BatchLedger, openBatch } from "../../shared/domain/batch-slices.js";
import { batchInputSchema } from "../../shared/domain/model.js";
import { loadLedgerTableName } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { finalizeBatch, inlineResults, summarizeBatch } from "../../shared/steps/finalize-batch.js";

/**
 * Ends every instance of the batch with one verdict (after the last poll and after any Catch), stores the results,
 * and hands the Map only the counts.
 */
export function createHandler(store: ResultStore, now: () => Date = () => new Date(), ledger?: BatchLedger) {
  return lambdaHandler(async (input: unknown) => {
    // After a Catch at a slice's start the batch is still a pointer: its stored progress, or else its work list.
    const batch = await openBatch(parseStepInput(batchInputSchema, input, "FinalizeBatch"), ledger, { orWork: true });
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

export const handler = onColdStart(() => {
  const tableName = loadLedgerTableName(process.env);
  return createHandler(dynamoResultStore(dynamodb, tableName), undefined, dynamoBatchLedger(dynamodb, tableName));
});
