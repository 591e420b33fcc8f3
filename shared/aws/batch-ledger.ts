import { type DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import * as z from "zod";
import type { BatchLedger } from "../domain/batch-slices.js";
import { batchSchema, type InstanceProgress, instanceProgressSchema } from "../domain/model.js";
import { classifyAwsError } from "./errors.js";
import { ledgerItems, parseStoredJson } from "./ledger-query.js";

/** Where the state machine's StoreWorkList writes the same item: `States.Format('work#{}', $.batchIndex)`. */
export function workKey(batchIndex: number): string {
  return `work#${batchIndex}`;
}

export function progressKey(batchIndex: number): string {
  return `slice#${batchIndex}`;
}

const storedWorkSchema = z.array(instanceProgressSchema).min(1).max(50);

/** The ledger-backed BatchLedger (shared/domain/batch-slices.ts); `tableName` is the ledger table's name. */
export function dynamoBatchLedger(dynamodb: DynamoDBClient, tableName: string): BatchLedger {
  const put = async (ledgerKey: string, item: string, field: string, value: unknown, expiresAt: number) => {
    try {
      // An overwrite: a retried intake or step stores the same item again.
      await dynamodb.send(
        new PutItemCommand({
          TableName: tableName,
          Item: {
            eventId: { S: ledgerKey },
            item: { S: item },
            [field]: { S: JSON.stringify(value) },
            expiresAt: { N: String(expiresAt) },
          },
        }),
      );
    } catch (error) {
      throw classifyAwsError(error, "PutItem", `(${field})`);
    }
  };
  const get = async (ledgerKey: string, item: string, field: string): Promise<unknown> => {
    try {
      const found = await dynamodb.send(
        new GetItemCommand({
          TableName: tableName,
          Key: { eventId: { S: ledgerKey }, item: { S: item } },
          ConsistentRead: true,
        }),
      );
      return parseStoredJson(found.Item?.[field]?.S);
    } catch (error) {
      throw classifyAwsError(error, "GetItem", `(${field})`);
    }
  };
  return {
    putWork: (ledgerKey, batchIndex, instances, expiresAt) =>
      put(ledgerKey, workKey(batchIndex), "instances", instances, expiresAt),
    async loadWork(ledgerKey) {
      const batches = new Map<number, InstanceProgress[]>();
      for await (const item of ledgerItems(dynamodb, tableName, ledgerKey, "work#", "(work list)")) {
        const index = Number(item.item?.S?.slice("work#".length));
        const parsed = storedWorkSchema.safeParse(parseStoredJson(item.instances?.S));
        if (Number.isInteger(index) && parsed.success) batches.set(index, parsed.data);
      }
      return batches;
    },
    async getWork(ledgerKey, batchIndex) {
      const parsed = storedWorkSchema.safeParse(await get(ledgerKey, workKey(batchIndex), "instances"));
      return parsed.success ? parsed.data : undefined;
    },
    putProgress: (ledgerKey, batch, expiresAt) =>
      put(ledgerKey, progressKey(batch.batchIndex), "progress", batch, expiresAt),
    async getProgress(ledgerKey, batchIndex) {
      const parsed = batchSchema.safeParse(await get(ledgerKey, progressKey(batchIndex), "progress"));
      return parsed.success ? parsed.data : undefined;
    },
  };
}
