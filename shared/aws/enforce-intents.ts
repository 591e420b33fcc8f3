import { type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import * as z from "zod";
import { classifyAwsError } from "./errors.js";
import { ledgerItems, parseStoredJson } from "./ledger-query.js";

/**
 * What Enforce stores in the event ledger just before it calls ModifyInstanceMetadataOptions: "this round of this
 * batch is about to set HttpTokens=required on these instances, which were `optional`". A run that died after its
 * calls (a crash, a timeout, or an at-least-once duplicate of the same work) leaves nothing in the state machine;
 * the next run that finds such an instance `required` reads this record and knows the change was the guard's, and
 * since when. One item per round: key `eventId` (the event's, like the batches' results) and item
 * `intent#<batch>#<time>`, so a batch's intents are one Query on the table's own key.
 */
export interface EnforceIntents {
  /** Stores the intent before the calls; `instances` maps each instance id to its HttpTokens as described. */
  record(scope: IntentScope, instances: Record<string, string>, at: Date, expiresAt: number): Promise<void>;
  /** Every instance an earlier run of this batch meant to change: its HttpTokens then, and the earliest intent. */
  recorded(scope: IntentScope): Promise<Map<string, RecordedIntent>>;
}

export interface IntentScope {
  eventId: string;
  batchIndex: number;
}

export interface RecordedIntent {
  was: string;
  /** When the intent was stored: the change cannot have been made earlier. */
  at: string;
}

const storedInstancesSchema = z.record(z.string(), z.string().max(32));

function intentPrefix(batchIndex: number): string {
  return `intent#${String(batchIndex).padStart(5, "0")}#`;
}

/** The ledger-backed intents; `tableName` is the event ledger. */
export function dynamoEnforceIntents(dynamodb: DynamoDBClient, tableName: string): EnforceIntents {
  return {
    async record(scope, instances, at, expiresAt) {
      try {
        // Safe to repeat: a run of the same round at another time adds a second item, and `recorded` unions them,
        // keeping each instance's earliest intent.
        await dynamodb.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              eventId: { S: scope.eventId },
              item: { S: `${intentPrefix(scope.batchIndex)}${at.toISOString()}` },
              instances: { S: JSON.stringify(instances) },
              at: { S: at.toISOString() },
              expiresAt: { N: String(expiresAt) },
            },
          }),
        );
      } catch (error) {
        throw classifyAwsError(error, "PutItem", "(enforce intent)");
      }
    },
    async recorded(scope) {
      const found = new Map<string, RecordedIntent>();
      for await (const item of ledgerItems(
        dynamodb,
        tableName,
        scope.eventId,
        intentPrefix(scope.batchIndex),
        "(enforce intents)",
      )) {
        const at = item.at?.S;
        const instances = storedInstancesSchema.safeParse(parseStoredJson(item.instances?.S));
        // A corrupt item proves nothing: skipped, so the retry-count rule decides instead.
        if (!at || !instances.success) continue;
        for (const [instanceId, was] of Object.entries(instances.data)) {
          const earlier = found.get(instanceId);
          if (!earlier || at < earlier.at) found.set(instanceId, { was, at });
        }
      }
      return found;
    },
  };
}
