import { type AttributeValue, type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import * as z from "zod";
import { type EventRef, eventRefSchema } from "../domain/model.js";
import { awsErrorCode, classifyAwsError } from "./errors.js";
import { ledgerItems, parseStoredJson } from "./ledger-query.js";

/**
 * One claim per instance occurrence (a launch, or a start), in the event ledger, so that whichever signal arrives
 * first (EC2's state-change notification or the CloudTrail record) does the work, and the other adds only what it
 * knows. Key `inst#<account>#<region>#<instanceId>#<LaunchTime>`: EC2 sets LaunchTime at every launch and start,
 * and both signals read the same value from DescribeInstances. The claim names the execution that holds it and that
 * execution's report (its ledger key). A report's own items live under `report#<ledger key>`: "attribution" (the
 * CloudTrail record that arrived after someone else claimed its instances) and "waiter" (the task token of the
 * report while it waits for that record). One item each per report, however many instances it covers: neither the
 * state nor the ledger holds a list of claim keys.
 */
export interface InstanceClaims {
  /**
   * True when this execution holds the claim: it was free, or this execution took it before (a retry). `reportKey`
   * (the holder's ledger key) is stored with it, for a later record to find the report it belongs to.
   */
  claim(key: string, executionId: string, expiresAt: number, reportKey?: string): Promise<boolean>;
  /** The report (ledger key) of the execution holding this claim, when the claim names one. */
  holder(key: string): Promise<string | undefined>;
  /** Marks a claim as complete (a launch group whose instances are all claimed), for those who lost it. */
  seal(key: string, expiresAt: number): Promise<void>;
  sealed(key: string): Promise<boolean>;
  attribute(reportKey: string, event: EventRef, expiresAt: number): Promise<void>;
  attribution(reportKey: string): Promise<EventRef | undefined>;
  /** The report of `reportKey` waits for its record with this task token, until the waiter's deadline. */
  wait(reportKey: string, waiter: AttributionWaiter, expiresAt: number): Promise<void>;
  waiter(reportKey: string): Promise<AttributionWaiter | undefined>;
}

/** A report waiting for the CloudTrail record: until when, and the task token that resumes it. */
export const attributionWaiterSchema = z.object({
  deadline: z.string(),
  taskToken: z.string().min(1),
});
export type AttributionWaiter = z.infer<typeof attributionWaiterSchema>;

/** Where a report's attribution and waiter live: beside its batches' results, under a key of its own. */
export function reportItemsKey(reportKey: string): string {
  return `report#${reportKey}`;
}

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
    async claim(key, executionId, expiresAt, reportKey) {
      try {
        await dynamodb.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              eventId: { S: key },
              item: { S: "claim" },
              executionId: { S: executionId },
              ...(reportKey ? { reportKey: { S: reportKey } } : {}),
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
    async holder(key) {
      for await (const item of ledgerItems(dynamodb, tableName, key, "claim", "(instance claim)")) {
        return item.reportKey?.S;
      }
      return undefined;
    },
    async seal(key, expiresAt) {
      await put(key, "sealed", {}, expiresAt, "PutItem (launch group)");
    },
    async sealed(key) {
      for await (const _item of ledgerItems(dynamodb, tableName, key, "sealed", "(launch group)")) return true;
      return false;
    },
    async attribute(reportKey, event, expiresAt) {
      const key = reportItemsKey(reportKey);
      await put(key, "attribution", { event: { S: JSON.stringify(event) } }, expiresAt, "PutItem (attribution)");
    },
    async attribution(reportKey) {
      // One item at most, but a page may still come back empty with LastEvaluatedKey (DynamoDB's paging): follow it.
      for await (const item of ledgerItems(
        dynamodb,
        tableName,
        reportItemsKey(reportKey),
        "attribution",
        "(attribution)",
      )) {
        // A corrupt item counts as no attribution: the report then says the actor is unknown, which is true.
        const parsed = eventRefSchema.safeParse(parseStoredJson(item.event?.S));
        return parsed.success ? parsed.data : undefined;
      }
      return undefined;
    },
    async wait(reportKey, waiter, expiresAt) {
      const stored = JSON.stringify(waiter);
      await put(
        reportItemsKey(reportKey),
        "waiter",
        { waiter: { S: stored } },
        expiresAt,
        "PutItem (attribution waiter)",
      );
    },
    async waiter(reportKey) {
      for await (const item of ledgerItems(
        dynamodb,
        tableName,
        reportItemsKey(reportKey),
        "waiter",
        "(attribution waiter)",
      )) {
        const parsed = attributionWaiterSchema.safeParse(parseStoredJson(item.waiter?.S));
        return parsed.success ? parsed.data : undefined;
      }
      return undefined;
    },
  };
}
