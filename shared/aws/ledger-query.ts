import { type DynamoDBClient, QueryCommand, type QueryCommandOutput } from "@aws-sdk/client-dynamodb";
import { classifyAwsError } from "./errors.js";

type LedgerItem = NonNullable<QueryCommandOutput["Items"]>[number];

/**
 * Every ledger item of one key whose sort key starts with `prefix`, in sort-key order, page after page. DynamoDB
 * pages at 1 MB (and may return an empty page that still carries LastEvaluatedKey), so a reader that stopped at the
 * first page would miss results, intents or an attribution. Reads are consistent: a step reads what the previous
 * step wrote. A failed page is classified by its retry behaviour, named with `what` (e.g. "(results)").
 */
export async function* ledgerItems(
  dynamodb: DynamoDBClient,
  tableName: string,
  eventId: string,
  prefix: string,
  what: string,
): AsyncGenerator<LedgerItem> {
  let startKey: QueryCommandOutput["LastEvaluatedKey"];
  do {
    let page: QueryCommandOutput;
    try {
      page = await dynamodb.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: "eventId = :e AND begins_with(#item, :prefix)",
          ExpressionAttributeNames: { "#item": "item" },
          ExpressionAttributeValues: { ":e": { S: eventId }, ":prefix": { S: prefix } },
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
        }),
      );
    } catch (error) {
      throw classifyAwsError(error, "Query", what);
    }
    yield* page.Items ?? [];
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** A stored JSON attribute, or undefined when it is missing or corrupt (the caller's schema then refuses it). */
export function parseStoredJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
