import { type AttributeValue, type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import * as z from "zod";
import { type EventRef, eventRefSchema } from "../domain/model.js";
import { awsErrorCode, classifyAwsError } from "./errors.js";
import { ledgerItems, parseStoredJson } from "./ledger-query.js";

/**
 * One claim per instance occurrence (a launch, or a start), in the event ledger, so that whichever signal arrives
 * first (EC2's state-change notification or the CloudTrail record) does the work, and the other adds only what it
 * knows. Key `inst#<account>#<region>#<instanceId>#<LaunchTime>`: EC2 sets LaunchTime at every launch and start,
 * and both signals read the same value from DescribeInstances. Items: "claim" (who works on it), "attribution"
 * (the CloudTrail record that arrived after someone else claimed it) and "waiter" (the claiming execution's task
 * token while its report waits for that record).
 */
export interface InstanceClaims {
  /** True when this execution holds the claim: it was free, or this execution took it before (a retry). */
  claim(key: string, executionId: string, expiresAt: number): Promise<boolean>;
  attribute(key: string, event: EventRef, expiresAt: number): Promise<void>;
  attribution(key: string): Promise<EventRef | undefined>;
  /** The claiming execution's report waits on `waiter.keys` with this task token (stored under each key). */
  wait(waiter: AttributionWaiter, expiresAt: number): Promise<void>;
  waiter(key: string): Promise<AttributionWaiter | undefined>;
}

/** A report waiting for the CloudTrail record: what it waits on, until when, and the task token that resumes it. */
export const attributionWaiterSchema = z.object({
  keys: z.array(z.string()).min(1),
  deadline: z.string(),
  taskToken: z.string().min(1),
});
export type AttributionWaiter = z.infer<typeof attributionWaiterSchema>;

export function instanceClaimKey(account: string, region: string, instanceId: string, occurrence: string): string {
  return `inst#${account}#${region}#${instanceId}#${occurrence}`;
}

export function dynamoInstanceClaims(dynamodb: DynamoDBClient, tableName: string): InstanceClaims {
  /** An unconditional write of one of a claim's items: an overwrite, so a repeat is the same write. */
  const put = async (
    key: string,
    item: string,
    attributes: Record<string, AttributeValue>,
    expiresAt: number,
    what: string,
  ) => {
    try {
      await dynamodb.send(
        new PutItemCommand({
          TableName: tableName,
          Item: { eventId: { S: key }, item: { S: item }, ...attributes, expiresAt: { N: String(expiresAt) } },
        }),
      );
    } catch (error) {
      throw classifyAwsError(error, what);
    }
  };
  return {
    async claim(key, executionId, expiresAt) {
      try {
        await dynamodb.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              eventId: { S: key },
              item: { S: "claim" },
              executionId: { S: executionId },
              expiresAt: { N: String(expiresAt) },
            },
            // A retry of the same execution finds its own claim and keeps it; anyone else finds it taken.
            ConditionExpression: "attribute_not_exists(eventId) OR executionId = :me",
            ExpressionAttributeValues: { ":me": { S: executionId } },
          }),
        );
        return true;
      } catch (error) {
        if (awsErrorCode(error) === "ConditionalCheckFailedException") return false;
        throw classifyAwsError(error, "PutItem (instance claim)");
      }
    },
    async attribute(key, event, expiresAt) {
      await put(key, "attribution", { event: { S: JSON.stringify(event) } }, expiresAt, "PutItem (attribution)");
    },
    async attribution(key) {
      // One item at most, but a page may still come back empty with LastEvaluatedKey (DynamoDB's paging): follow it.
      for await (const item of ledgerItems(dynamodb, tableName, key, "attribution", "(attribution)")) {
        // A corrupt item counts as no attribution: the report then says the actor is unknown, which is true.
        const parsed = eventRefSchema.safeParse(parseStoredJson(item.event?.S));
        return parsed.success ? parsed.data : undefined;
      }
      return undefined;
    },
    async wait(waiter, expiresAt) {
      const stored = JSON.stringify(waiter);
      for (const key of waiter.keys) {
        await put(key, "waiter", { waiter: { S: stored } }, expiresAt, "PutItem (attribution waiter)");
      }
    },
    async waiter(key) {
      for await (const item of ledgerItems(dynamodb, tableName, key, "waiter", "(attribution waiter)")) {
        const parsed = attributionWaiterSchema.safeParse(parseStoredJson(item.waiter?.S));
        return parsed.success ? parsed.data : undefined;
      }
      return undefined;
    },
  };
}
