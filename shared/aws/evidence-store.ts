import {
  type DynamoDBClient,
  GetItemCommand,
  type GetItemCommandOutput,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { type EvidenceRecord, evidenceRecordSchema } from "../domain/evidence.js";
import { awsErrorCode, classifyAwsError } from "./errors.js";
import { ledgerItems, parseStoredJson } from "./ledger-query.js";

/**
 * Evidence records live in the event ledger table, under their own key prefix: `eventId` = "evidence#ACCOUNT#REGION",
 * `item` = "instance#i-...". Why the ledger and not a table of its own: the functions that write verdicts already
 * hold PutItem/GetItem/Query on it (one IAM resource, no new table to deploy, back up or alarm on), its TTL attribute
 * (`expiresAt`) already deletes what is due, and one partition per account and region lets `evidence` list a region
 * with Query instead of a Scan. A live instance's record carries no `expiresAt` (it stays); a closed one expires
 * `retentionDays` after it was closed.
 */
export interface EvidenceStore {
  get(account: string, region: string, instanceId: string): Promise<EvidenceRecord | undefined>;
  /**
   * Writes `record` if the stored one still has `previousAttempts` attempts (0: none stored): a conditional put, so
   * two writers of the same instance never lose a verdict. `false`: someone wrote first; read again and retry.
   */
  put(record: EvidenceRecord, previousAttempts: number): Promise<boolean>;
  list(account: string, region: string): Promise<EvidenceRecord[]>;
}

export function evidencePartition(account: string, region: string): string {
  return `evidence#${account}#${region}`;
}

/** The ledger-backed store; `retentionDays` is how long a closed record stays. */
export function dynamoEvidenceStore(dynamodb: DynamoDBClient, tableName: string, retentionDays: number): EvidenceStore {
  return {
    async get(account, region, instanceId) {
      let item: GetItemCommandOutput;
      try {
        item = await dynamodb.send(
          new GetItemCommand({
            TableName: tableName,
            Key: { eventId: { S: evidencePartition(account, region) }, item: { S: `instance#${instanceId}` } },
            ConsistentRead: true,
          }),
        );
      } catch (error) {
        throw classifyAwsError(error, "GetItem", "(evidence)");
      }
      const parsed = evidenceRecordSchema.safeParse(parseStoredJson(item.Item?.record?.S));
      // A corrupt record is started again rather than blocking every later verdict of the instance.
      return parsed.success ? parsed.data : undefined;
    },
    async put(record, previousAttempts) {
      const expiresAt = record.closedAt
        ? Math.floor(Date.parse(record.closedAt) / 1000) + retentionDays * 86_400
        : undefined;
      try {
        await dynamodb.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              eventId: { S: evidencePartition(record.account, record.region) },
              item: { S: `instance#${record.instanceId}` },
              attempts: { N: String(record.attempts) },
              record: { S: JSON.stringify(record) },
              ...(expiresAt !== undefined ? { expiresAt: { N: String(expiresAt) } } : {}),
            },
            ConditionExpression: "attribute_not_exists(eventId) OR attempts = :previous",
            ExpressionAttributeValues: { ":previous": { N: String(previousAttempts) } },
          }),
        );
        return true;
      } catch (error) {
        if (awsErrorCode(error) === "ConditionalCheckFailedException") return false;
        throw classifyAwsError(error, "PutItem", "(evidence)");
      }
    },
    async list(account, region) {
      const records: EvidenceRecord[] = [];
      for await (const item of ledgerItems(
        dynamodb,
        tableName,
        evidencePartition(account, region),
        "instance#",
        "(evidence)",
      )) {
        const parsed = evidenceRecordSchema.safeParse(parseStoredJson(item.record?.S));
        if (parsed.success) records.push(parsed.data);
      }
      return records;
    },
  };
}
