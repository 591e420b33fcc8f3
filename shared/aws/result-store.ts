import { type DynamoDBClient, PutItemCommand, QueryCommand, type QueryCommandOutput } from "@aws-sdk/client-dynamodb";
import * as z from "zod";
import { type InstanceResult, instanceResultSchema } from "../domain/model.js";
import { classifyAwsError } from "./errors.js";

/**
 * Verdicts live in the event ledger (the DynamoDB table ClaimEvent writes), one item per batch, not in the
 * execution's state: Step Functions caps an execution's state at 256 KiB, which a thousand detailed results exceed.
 * The Map carries only counts; Notify reads the results back. Keys: `eventId` (the event) and `item` ("claim" for
 * ClaimEvent, "result#00007" for batch 7).
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
      let startKey: QueryCommandOutput["LastEvaluatedKey"];
      do {
        let page: QueryCommandOutput;
        try {
          page = await dynamodb.send(
            new QueryCommand({
              TableName: tableName,
              KeyConditionExpression: "eventId = :e AND begins_with(#item, :prefix)",
              ExpressionAttributeNames: { "#item": "item" },
              ExpressionAttributeValues: { ":e": { S: eventId }, ":prefix": { S: "result#" } },
              ExclusiveStartKey: startKey,
              ConsistentRead: true,
            }),
          );
        } catch (error) {
          throw classifyAwsError(error, "Query", "(results)");
        }
        for (const item of page.Items ?? []) {
          const index = Number(item.item?.S?.slice("result#".length));
          const parsed = storedResultsSchema.safeParse(parseJson(item.results?.S));
          // A corrupt item counts as missing: its batch's instances are then reported as errors, not dropped.
          if (Number.isInteger(index) && parsed.success) batches.set(index, parsed.data);
        }
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      return batches;
    },
  };
}

function resultKey(batchIndex: number): string {
  return `result#${String(batchIndex).padStart(5, "0")}`;
}

function parseJson(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? "null");
  } catch {
    return undefined;
  }
}
