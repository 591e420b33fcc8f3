import { type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import * as z from "zod";
import { type InstanceResult, instanceResultSchema } from "../domain/model.js";
import { classifyAwsError } from "./errors.js";
import { ledgerItems, parseStoredJson } from "./ledger-query.js";

/**
 * Verdicts live in the event ledger (the guard's DynamoDB table), one item per batch, not in the
 * execution's state: Step Functions caps an execution's state at 256 KiB, which a thousand detailed results exceed.
 * The Map carries only counts; Notify reads the results back. Keys: `eventId` (the event's ledger key) and `item`
 * ("result#00007" for batch 7).
 */
export interface ResultStore {
  put(eventId: string, batchIndex: number, results: InstanceResult[], expiresAt: number): Promise<void>;
  load(eventId: string): Promise<Map<number, InstanceResult[]>>;
  /** The ledger table, so a report can say where its full detail is. */
  readonly tableName?: string;
}

const storedResultsSchema = z.array(instanceResultSchema);

/** Ledger items expire after a week: EventBridge redelivers within a day, and operators replay within days. */
export const LEDGER_RETENTION_SECONDS = 7 * 24 * 3600;

/** The ledger-backed store; `tableName` is the ledger table's name. */
export function dynamoResultStore(dynamodb: DynamoDBClient, tableName: string): ResultStore {
  return {
    tableName,
    async put(eventId, batchIndex, results, expiresAt) {
      try {
        // An overwrite, so a retried FinalizeBatch stores the same item again: idempotent.
        await dynamodb.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              eventId: { S: eventId },
              item: { S: resultKey(batchIndex) },
              results: { S: JSON.stringify(results) },
              expiresAt: { N: String(expiresAt) },
            },
          }),
        );
      } catch (error) {
        throw classifyAwsError(error, "PutItem", "(results)");
      }
    },
    async load(eventId) {
      const batches = new Map<number, InstanceResult[]>();
      for await (const item of ledgerItems(dynamodb, tableName, eventId, "result#", "(results)")) {
        const index = Number(item.item?.S?.slice("result#".length));
        const parsed = storedResultsSchema.safeParse(parseStoredJson(item.results?.S));
        // A corrupt item counts as missing: its batch's instances are then reported as errors, not dropped.
        if (Number.isInteger(index) && parsed.success) batches.set(index, parsed.data);
      }
      return batches;
    },
  };
}

function resultKey(batchIndex: number): string {
  return `result#${String(batchIndex).padStart(5, "0")}`;
}
