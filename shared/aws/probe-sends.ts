import { createHash } from "node:crypto";
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { awsErrorCode, classifyAwsError } from "./errors.js";

/**
 * SendProbe's marker in the event ledger, so that a step run twice (Express runs its child workflows at least once)
 * never sends a second command: before SendCommand, a conditional put claims the chunk's send; after it, the marker
 * records the CommandId, which a repeat reuses instead of sending. A send AWS refused releases the marker, so the
 * next round may send again.
 */
export interface ProbeSends {
  /** `claimed`: this run may send. Otherwise what an earlier run recorded: its CommandId, or none yet (in flight). */
  claim(key: ProbeSendKey): Promise<{ claimed: true } | { claimed: false; commandId?: string }>;
  sent(key: ProbeSendKey, commandId: string): Promise<void>;
  release(key: ProbeSendKey): Promise<void>;
}

/** One chunk's send: the event's ledger key, the batch, and exactly which instances with which probe. */
export interface ProbeSendKey {
  ledgerKey: string;
  batchIndex: number;
  platform: string;
  instanceIds: readonly string[];
}

/** Marker items expire with the rest of the event's ledger items. */
const MARKER_TTL_SECONDS = 7 * 24 * 3600;

function itemKey(key: ProbeSendKey): string {
  const chunk = createHash("sha256")
    .update([key.platform, ...key.instanceIds].join("\n"))
    .digest("hex")
    .slice(0, 24);
  return `probe#${String(key.batchIndex).padStart(5, "0")}#${chunk}`;
}

/** The ledger-backed markers; `tableName` is the event ledger's. */
export function dynamoProbeSends(dynamodb: DynamoDBClient, tableName: string, now: () => Date): ProbeSends {
  const item = (key: ProbeSendKey, state: "sending" | "sent" | "released", commandId?: string) => ({
    eventId: { S: key.ledgerKey },
    item: { S: itemKey(key) },
    probeState: { S: state },
    ...(commandId ? { commandId: { S: commandId } } : {}),
    expiresAt: { N: String(Math.floor(now().getTime() / 1000) + MARKER_TTL_SECONDS) },
  });
  const put = async (key: ProbeSendKey, state: "sent" | "released", commandId?: string) => {
    try {
      await dynamodb.send(new PutItemCommand({ TableName: tableName, Item: item(key, state, commandId) }));
    } catch (error) {
      throw classifyAwsError(error, "PutItem", "(probe marker)");
    }
  };
  return {
    async claim(key) {
      try {
        await dynamodb.send(
          new PutItemCommand({
            TableName: tableName,
            Item: item(key, "sending"),
            ConditionExpression: "attribute_not_exists(eventId) OR probeState = :released",
            ExpressionAttributeValues: { ":released": { S: "released" } },
          }),
        );
        return { claimed: true };
      } catch (error) {
        if (awsErrorCode(error) !== "ConditionalCheckFailedException") {
          throw classifyAwsError(error, "PutItem", "(probe marker)");
        }
      }
      try {
        const found = await dynamodb.send(
          new GetItemCommand({
            TableName: tableName,
            Key: { eventId: { S: key.ledgerKey }, item: { S: itemKey(key) } },
            ConsistentRead: true,
          }),
        );
        const commandId = found.Item?.commandId?.S;
        return commandId ? { claimed: false, commandId } : { claimed: false };
      } catch (error) {
        throw classifyAwsError(error, "GetItem", "(probe marker)");
      }
    },
    sent: (key, commandId) => put(key, "sent", commandId),
    release: (key) => put(key, "released"),
  };
}
