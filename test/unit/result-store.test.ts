import {
  type AttributeValue,
  DynamoDBServiceException,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
} from "@aws-sdk/client-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { dynamodb } from "../../shared/aws/clients/index.js";
import { dynamoResultStore } from "../../shared/aws/result-store.js";
import type { InstanceResult } from "../../shared/domain/model.js";
import {
  contractError,
  dynamoMock,
  ID_A,
  ID_B,
  ID_C,
  instanceIds,
  resetMocks,
  result,
  serviceError,
} from "./support.js";

const TABLE = "imdsv2-guard-dev-ledger";
const EVENT_ID = "3b2a1c0d-9e8f-4a7b-b6c5-d4e3f2a1b0c9";
const EXPIRES_AT = 1_796_000_000;

type Item = Record<string, AttributeValue>;

/**
 * The ledger table as DynamoDB behaves for these calls: PutItem overwrites by key (eventId, item), Query returns the
 * event's items in sort-key order that begin with the prefix, at most `pageSize` per page, with LastEvaluatedKey.
 */
function ledgerTable(pageSize = 100): Map<string, Item> {
  const items = new Map<string, Item>();
  const key = (item: Record<string, AttributeValue | undefined>) => `${item.eventId?.S}\u0000${item.item?.S}`;
  dynamoMock.on(PutItemCommand).callsFake((input: { Item?: Item }) => {
    if (input.Item) items.set(key(input.Item), input.Item);
    return {};
  });
  dynamoMock.on(QueryCommand).callsFake((input: QueryCommandInput) => {
    const eventId = input.ExpressionAttributeValues?.[":e"]?.S;
    const prefix = input.ExpressionAttributeValues?.[":prefix"]?.S ?? "";
    const matching = [...items.values()]
      .filter((i) => i.eventId?.S === eventId && (i.item?.S ?? "").startsWith(prefix))
      .sort((a, b) => (a.item?.S ?? "").localeCompare(b.item?.S ?? ""));
    const after = input.ExclusiveStartKey ? key(input.ExclusiveStartKey) : undefined;
    const start = after === undefined ? 0 : matching.findIndex((i) => key(i) === after) + 1;
    const page = matching.slice(start, start + pageSize);
    const last = page.at(-1);
    const more = start + pageSize < matching.length && last !== undefined;
    return {
      Items: page,
      ...(more ? { LastEvaluatedKey: { eventId: { S: last.eventId?.S ?? "" }, item: { S: last.item?.S ?? "" } } } : {}),
    };
  });
  return items;
}

function storedItem(item: string, results: unknown): Item {
  return {
    eventId: { S: EVENT_ID },
    item: { S: item },
    results: { S: typeof results === "string" ? results : JSON.stringify(results) },
    expiresAt: { N: String(EXPIRES_AT) },
  };
}

const store = () => dynamoResultStore(dynamodb, TABLE);

beforeEach(resetMocks);

describe("dynamoResultStore: put", () => {
  it("writes one item per batch, keyed by the event and a zero-padded batch number, the results as JSON", async () => {
    // Prepare
    ledgerTable();
    const results = [result(ID_A), result(ID_B, { verdict: "fail", reason: "IMDSv1 answered (200)." })];

    // Act
    await store().put(EVENT_ID, 7, results, EXPIRES_AT);

    // Assess
    const inputs = dynamoMock.commandCalls(PutItemCommand).map((c) => c.args[0].input);
    expect(inputs).toStrictEqual([
      {
        TableName: TABLE,
        Item: {
          eventId: { S: EVENT_ID },
          item: { S: "result#00007" },
          results: { S: JSON.stringify(results) },
          expiresAt: { N: String(EXPIRES_AT) },
        },
      },
    ]);
  });

  it("overwrites the batch's item when a retried FinalizeBatch stores it again, and never conditions the put", async () => {
    // Prepare
    const table = ledgerTable();
    const first = [result(ID_A, { verdict: "error", reason: "timed out" })];
    const retried = [result(ID_A)];

    // Act
    await store().put(EVENT_ID, 3, first, EXPIRES_AT);
    await store().put(EVENT_ID, 3, retried, EXPIRES_AT + 60);
    const loaded = await store().load(EVENT_ID);

    // Assess
    expect(table.size).toBe(1);
    expect(loaded).toEqual(new Map([[3, retried]]));
    for (const call of dynamoMock.commandCalls(PutItemCommand)) {
      expect(call.args[0].input.ConditionExpression).toBeUndefined();
    }
  });
});

describe("dynamoResultStore: errors", () => {
  it.each([
    { label: "throttled", error: "ThrottlingException", status: 400, name: "RetryableThrottlingError" },
    { label: "a 500", error: "InternalServerError", status: 500, name: "RetryableServiceError" },
    { label: "refused", error: "AccessDeniedException", status: 400, name: "NonRetryableAwsError" },
    { label: "missing its table", error: "ResourceNotFoundException", status: 400, name: "NonRetryableAwsError" },
  ])("throws $name, naming the call, when DynamoDB is $label", async ({ error, status, name }) => {
    // Prepare
    const cause = serviceError(DynamoDBServiceException, error, status);
    dynamoMock.on(PutItemCommand).rejects(cause).on(QueryCommand).rejects(cause);

    // Act
    const put = store().put(EVENT_ID, 0, [result(ID_A)], EXPIRES_AT);
    const load = store().load(EVENT_ID);

    // Assess
    await expect(put).rejects.toMatchObject({ name, cause, message: expect.stringContaining("PutItem (results)") });
    await expect(load).rejects.toMatchObject({ name, cause, message: expect.stringContaining("Query (results)") });
  });

  // StoreWorkList's Retry (the same table) lists DynamoDB.ProvisionedThroughputExceededException as throttling; an
  // on-demand table answers a hot partition with it too. Step Functions retries Notify only on Retryable* names.
  it.each(["put", "load"] as const)(
    "classifies ProvisionedThroughputExceededException on %s as throttling",
    async (call) => {
      // Prepare
      const cause = contractError("dynamodbThroughputExceeded");
      dynamoMock.on(PutItemCommand).rejects(cause).on(QueryCommand).rejects(cause);

      // Act
      const run = call === "put" ? store().put(EVENT_ID, 0, [result(ID_A)], EXPIRES_AT) : store().load(EVENT_ID);

      // Assess
      await expect(run).rejects.toMatchObject({ name: "RetryableThrottlingError", cause });
    },
  );
});

describe("dynamoResultStore: load", () => {
  it("reads back what was put, batch by batch, with a consistent read of the event's result items only", async () => {
    // Prepare
    const table = ledgerTable();
    table.set("claim", { eventId: { S: EVENT_ID }, item: { S: "claim" }, executionId: { S: "arn:exec" } });
    await store().put(EVENT_ID, 0, [result(ID_A)], EXPIRES_AT);
    await store().put(EVENT_ID, 12, [result(ID_B)], EXPIRES_AT);
    await store().put("another-event", 0, [result(ID_C)], EXPIRES_AT);

    // Act
    const loaded = await store().load(EVENT_ID);

    // Assess
    expect(loaded).toEqual(
      new Map([
        [0, [result(ID_A)]],
        [12, [result(ID_B)]],
      ]),
    );
    const query = dynamoMock.commandCalls(QueryCommand)[0]?.args[0].input;
    expect(query).toMatchObject({
      TableName: TABLE,
      KeyConditionExpression: "eventId = :e AND begins_with(#item, :prefix)",
      ExpressionAttributeNames: { "#item": "item" },
      ExpressionAttributeValues: { ":e": { S: EVENT_ID }, ":prefix": { S: "result#" } },
      ConsistentRead: true,
    });
  });

  it("follows LastEvaluatedKey until the last page", async () => {
    // Prepare
    ledgerTable(2);
    const ids = instanceIds(5);
    for (const [index, id] of ids.entries()) await store().put(EVENT_ID, index, [result(id)], EXPIRES_AT);

    // Act
    const loaded = await store().load(EVENT_ID);

    // Assess
    expect([...loaded.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
    expect(loaded.get(4)).toEqual([result(ids[4] ?? "")]);
    const starts = dynamoMock.commandCalls(QueryCommand).map((c) => c.args[0].input.ExclusiveStartKey);
    expect(starts).toEqual([
      undefined,
      { eventId: { S: EVENT_ID }, item: { S: "result#00001" } },
      { eventId: { S: EVENT_ID }, item: { S: "result#00003" } },
    ]);
  });

  it("returns an empty map for an event that stored nothing", async () => {
    // Prepare
    ledgerTable();

    // Act
    const loaded = await store().load(EVENT_ID);

    // Assess
    expect(loaded.size).toBe(0);
    expect(dynamoMock.commandCalls(QueryCommand)).toHaveLength(1);
  });

  it("keeps a default for warnings an older item left out", async () => {
    // Prepare
    dynamoMock.on(QueryCommand).resolves({
      Items: [storedItem("result#00000", [{ instanceId: ID_A, verdict: "pass", reason: "r" }])],
    });

    // Act
    const loaded = await store().load(EVENT_ID);

    // Assess
    expect(loaded.get(0)).toEqual([{ instanceId: ID_A, verdict: "pass", reason: "r", warnings: [] }]);
  });

  it.each([
    { label: "results of the wrong shape", item: storedItem("result#00001", [{ instanceId: ID_B, verdict: "great" }]) },
    { label: "results that are not a list", item: storedItem("result#00001", { instanceId: ID_B }) },
    { label: "no results attribute", item: { eventId: { S: EVENT_ID }, item: { S: "result#00001" } } },
    { label: "a batch number that is not a number", item: storedItem("result#seven", [result(ID_B)]) },
    { label: "results that are not JSON", item: storedItem("result#00001", '[{"instanceId":"i-0a1b2c3d4e5f60002",') },
  ])("ignores an item with $label and keeps the others", async ({ item }) => {
    // Prepare
    const good: InstanceResult[] = [result(ID_A)];
    dynamoMock.on(QueryCommand).resolves({ Items: [storedItem("result#00000", good), item] });

    // Act
    const loading = store().load(EVENT_ID);

    // Assess
    await expect(loading).resolves.toEqual(new Map([[0, good]]));
  });
});
