import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
  QueryCommand,
  type QueryCommandOutput,
} from "@aws-sdk/client-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { LEDGER_TABLE_DEFINITION } from "../local/sim/dynamodb.js";
import { SimAccount, type SimFaults, simCrashPoint } from "../local/sim/sim-account.js";
import { dynamoInstanceClaims } from "../shared/aws/instance-claims.js";
import { dynamoResultStore } from "../shared/aws/result-store.js";
import { AWS_PAGING } from "./contract/aws-contract.js";

/**
 * The simulated account's DynamoDB (local/sim/dynamodb.ts: dynalite on loopback, faults in front of it), held to the
 * rules the guard relies on. Each row is provoked through a real SDK client, intercepted as the local runner
 * intercepts the guard's clients, and cites the AWS page it comes from.
 *
 * | Rule                                                              | AWS page                                        |
 * | ----------------------------------------------------------------- | ----------------------------------------------- |
 * | ConditionExpression evaluated as an expression, not a string      | "Condition expressions" / "PutItem"             |
 * | reserved words refused unless named through ExpressionAttributeNames | "Reserved words in DynamoDB"                 |
 * | unused expression values and names refused                        | "PutItem" (ValidationException)                 |
 * | ReturnValuesOnConditionCheckFailure ALL_OLD returns the item      | "PutItem"                                       |
 * | item at most 400 KB, partition key 2,048 bytes, sort key 1,024    | "Service, account, and table quotas in Amazon DynamoDB" |
 * | Query honours KeyConditionExpression and its names                | "Query"                                         |
 * | Query page stops once 1 MB was read, with LastEvaluatedKey        | "Query" (Limit), "Paginating table query results" |
 */

const TABLE = "ledger";
const dynamodb = new DynamoDBClient({ region: "eu-west-1" });

let sim: SimAccount | undefined;

function account(faults: SimFaults = {}): SimAccount {
  sim = new SimAccount([], faults);
  sim.install();
  return sim;
}

afterEach(() => {
  sim?.restore();
  sim = undefined;
});

function put(input: Omit<PutItemCommandInput, "TableName">) {
  return dynamodb.send(new PutItemCommand({ TableName: TABLE, ...input }));
}

/** The error `call` fails with; fails the test when it succeeds. */
async function refusal(call: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  return call.then(
    () => expect.fail("the call went through"),
    (e: unknown) => e as Error & Record<string, unknown>,
  );
}

const claim = (owner: string): Record<string, AttributeValue> => ({
  eventId: { S: "inst#k" },
  item: { S: "claim" },
  executionId: { S: owner },
});

describe("the table", () => {
  it("has the key schema and attribute definitions of the ledger table in infra/orchestration.yml", async () => {
    // template.test.ts checks the packaged stack against LEDGER_TABLE_DEFINITION too; this reads the source.
    const { readFile } = await import("node:fs/promises");
    const yml = await readFile(new URL("../infra/orchestration.yml", import.meta.url), "utf8");
    const block = yml.slice(yml.indexOf("  EventLedgerTable:\n"));
    const props = block.slice(0, block.indexOf("\n\n"));
    // Each section is a YAML list of `- AttributeName: x` / `  <key>: y` pairs; the table has two of each.
    const pairs = (section: string, key: string) =>
      [
        ...props
          .slice(props.indexOf(`      ${section}:`))
          .matchAll(new RegExp(`- AttributeName: (\\w+)\\n\\s+${key}: (\\w+)`, "g")),
      ]
        .slice(0, 2)
        .map((m) => ({ AttributeName: m[1], [key]: m[2] }));
    expect(pairs("KeySchema", "KeyType")).toEqual(LEDGER_TABLE_DEFINITION.KeySchema);
    expect(pairs("AttributeDefinitions", "AttributeType")).toEqual(LEDGER_TABLE_DEFINITION.AttributeDefinitions);
    expect(props).toContain(`BillingMode: ${LEDGER_TABLE_DEFINITION.BillingMode}`);
  });

  it("is dynalite in memory: no native addon (classic-level's on-disk store) is loaded", async () => {
    const s = account();
    await put({ Item: claim("a") });
    expect(await s.ledger.nativeModules()).toEqual([]);
  });

  it("refuses a table other than the ledger, as AWS refuses a table that does not exist", async () => {
    account();
    await put({ Item: claim("a") });
    const error = await refusal(
      dynamodb.send(new GetItemCommand({ TableName: "other", Key: { eventId: { S: "e" }, item: { S: "x" } } })),
    );
    expect(error.name).toBe("ResourceNotFoundException");
  });
});

describe("condition expressions", () => {
  it("evaluates a condition, so an equivalent rewrite of the guard's claim behaves the same", async () => {
    account();
    const claims = dynamoInstanceClaims(dynamodb, TABLE);
    expect(await claims.claim("inst#k", "execution-a", 0)).toBe(true);
    // The guard's condition, "attribute_not_exists(eventId) OR executionId = :me", written another way.
    const rewritten = (owner: string) =>
      put({
        Item: claim(owner),
        ConditionExpression: "NOT (attribute_exists(#pk) AND #owner <> :me)",
        ExpressionAttributeNames: { "#pk": "eventId", "#owner": "executionId" },
        ExpressionAttributeValues: { ":me": { S: owner } },
      });
    await expect(rewritten("execution-a")).resolves.toBeDefined();
    const error = await refusal(rewritten("execution-b"));
    expect(error.name).toBe("ConditionalCheckFailedException");
    expect(error.$metadata).toMatchObject({ httpStatusCode: 400 });
    expect(await claims.claim("inst#k", "execution-b", 0)).toBe(false);
  });

  it("refuses a reserved word named directly, and takes it through ExpressionAttributeNames", async () => {
    account();
    const direct = await refusal(put({ Item: claim("a"), ConditionExpression: "attribute_not_exists(item)" }));
    expect(direct.name).toBe("ValidationException");
    expect(direct.message).toMatch(/reserved keyword; reserved keyword: item/);
    await expect(
      put({
        Item: claim("a"),
        ConditionExpression: "attribute_not_exists(#i)",
        ExpressionAttributeNames: { "#i": "item" },
      }),
    ).resolves.toBeDefined();
  });

  it("refuses expression values and names the expression does not use", async () => {
    account();
    const unusedValue = await refusal(
      put({
        Item: claim("a"),
        ConditionExpression: "attribute_not_exists(eventId)",
        ExpressionAttributeValues: { ":me": { S: "a" } },
      }),
    );
    expect(unusedValue.name).toBe("ValidationException");
    expect(unusedValue.message).toMatch(/unused.*:me/i);
    const unusedName = await refusal(
      put({
        Item: claim("a"),
        ConditionExpression: "attribute_not_exists(eventId)",
        ExpressionAttributeNames: { "#i": "item" },
      }),
    );
    expect(unusedName.name).toBe("ValidationException");
  });
});

describe("ReturnValuesOnConditionCheckFailure", () => {
  const takeover = (mode: "ALL_OLD" | "NONE") =>
    put({
      Item: claim("execution-b"),
      ConditionExpression: "attribute_not_exists(#pk) OR #owner = :me",
      ExpressionAttributeNames: { "#pk": "eventId", "#owner": "executionId" },
      ExpressionAttributeValues: { ":me": { S: "execution-b" } },
      ReturnValuesOnConditionCheckFailure: mode,
    });

  it("ALL_OLD: the refused write carries the item that refused it, with no second read by the caller", async () => {
    account();
    await put({ Item: claim("execution-a") });
    const error = await refusal(takeover("ALL_OLD"));
    expect(error.name).toBe("ConditionalCheckFailedException");
    expect(error.Item).toEqual(claim("execution-a"));
  });

  it("NONE (the default): the error carries no item", async () => {
    account();
    await put({ Item: claim("execution-a") });
    const error = await refusal(takeover("NONE"));
    expect(error.name).toBe("ConditionalCheckFailedException");
    expect(error.Item).toBeUndefined();
  });

  it("a value other than ALL_OLD or NONE is a ValidationException", async () => {
    account();
    const error = await refusal(put({ Item: claim("a"), ReturnValuesOnConditionCheckFailure: "ALL_NEW" as "ALL_OLD" }));
    expect(error.name).toBe("ValidationException");
  });
});

describe("quotas", () => {
  it("an item is at most 400 KB", async () => {
    account();
    const KB = 1024;
    // Item size counts attribute names and values (UTF-8 bytes): key attributes take a few bytes of the 400 KB.
    const padded = (bytes: number) => ({ ...claim("a"), pad: { S: "x".repeat(bytes) } });
    await expect(put({ Item: padded(400 * KB - 100) })).resolves.toBeDefined();
    const error = await refusal(put({ Item: padded(400 * KB) }));
    expect(error.name).toBe("ValidationException");
    expect(error.message).toMatch(/Item size has exceeded the maximum allowed size/);
  });

  it("a partition key is at most 2,048 bytes and a sort key at most 1,024 bytes", async () => {
    account();
    const item = (eventId: string, sortKey: string) => ({ eventId: { S: eventId }, item: { S: sortKey } });
    await expect(put({ Item: item("e".repeat(2048), "s".repeat(1024)) })).resolves.toBeDefined();
    const partition = await refusal(put({ Item: item("e".repeat(2049), "s") }));
    expect(partition.name).toBe("ValidationException");
    expect(partition.message).toMatch(/hashkey has exceeded the maximum size limit of ?2048 bytes/);
    const sort = await refusal(put({ Item: item("e", "s".repeat(1025)) }));
    expect(sort.name).toBe("ValidationException");
    expect(sort.message).toMatch(/range keys has exceeded the size limit of 1024 bytes/);
  });
});

describe("Query", () => {
  const query = (eventId: string, prefix: string, start?: Record<string, AttributeValue>) =>
    dynamodb.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: "eventId = :e AND begins_with(#item, :prefix)",
        ExpressionAttributeNames: { "#item": "item" },
        ExpressionAttributeValues: { ":e": { S: eventId }, ":prefix": { S: prefix } },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );

  it("honours the key condition: its partition, its prefix, in sort-key order", async () => {
    account();
    for (const [eventId, item] of [
      ["e1", "result#00002"],
      ["e1", "result#00001"],
      ["e1", "claim"],
      ["e2", "result#00001"],
    ] as const) {
      await put({ Item: { eventId: { S: eventId }, item: { S: item } } });
    }
    const page = await query("e1", "result#");
    expect(page.Items?.map((i) => i.item?.S)).toEqual(["result#00001", "result#00002"]);
    expect(page.LastEvaluatedKey).toBeUndefined();
  });

  it("refuses a key condition on a non-key attribute", async () => {
    account();
    const error = await refusal(
      dynamodb.send(
        new QueryCommand({
          TableName: TABLE,
          KeyConditionExpression: "executionId = :e",
          ExpressionAttributeValues: { ":e": { S: "x" } },
        }),
      ),
    );
    expect(error.name).toBe("ValidationException");
  });

  it("stops a page once 1 MB was read, with LastEvaluatedKey, and the pages together hold every item", async () => {
    account();
    const store = dynamoResultStore(dynamodb, TABLE);
    const results = Array.from({ length: 100 }, (_, i) => ({
      instanceId: `i-${i}`,
      verdict: "pass" as const,
      reason: "x".repeat(1000),
      warnings: [],
    }));
    for (let batch = 0; batch < 12; batch++) await store.put("big", batch, results, 0); // ~100 KB each

    const pages: QueryCommandOutput[] = [await query("big", "result#")];
    for (let last = pages.at(-1)?.LastEvaluatedKey; last; last = pages.at(-1)?.LastEvaluatedKey) {
      pages.push(await query("big", "result#", last));
    }

    const first = pages[0]?.Items ?? [];
    expect(first.length).toBeLessThan(12);
    // The item that crossed 1 MB ends the page; all before it fit under 1 MB.
    expect(JSON.stringify(first.slice(0, -1)).length).toBeLessThan(AWS_PAGING.query.pageBytes);
    expect(JSON.stringify(first).length).toBeGreaterThan(AWS_PAGING.query.pageBytes - 110_000);
    expect(pages.flatMap((p) => p.Items ?? []).map((i) => i.item?.S)).toHaveLength(12);
    expect((await store.load("big")).size).toBe(12);
  });
});

describe("the guard's fault injection, in front of dynalite", () => {
  it("ledgerUnavailable: every call is a 500 the guard reads as transient", async () => {
    account({ ledgerUnavailable: true });
    const error = await refusal(put({ Item: claim("a") }));
    expect(error.name).toBe("InternalServerError");
    expect(error.$metadata).toMatchObject({ httpStatusCode: 500 });
  });

  it("transient5xx: every n-th PutItem fails with a 500, and the write did not happen", async () => {
    const s = account({ transient5xx: { PutItem: 0.5 } });
    await put({ Item: { eventId: { S: "e" }, item: { S: "1" } } });
    const error = await refusal(put({ Item: { eventId: { S: "e" }, item: { S: "2" } } }));
    expect(error.$metadata).toMatchObject({ httpStatusCode: 500 });
    const page = await dynamodb.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: "eventId = :e",
        ExpressionAttributeValues: { ":e": { S: "e" } },
      }),
    );
    expect(page.Items?.map((i) => i.item?.S)).toEqual(["1"]);
    expect(s.calls.PutItem).toBe(2);
  });

  it("queryPageItems: a page holds at most that many items and the next page starts after it", async () => {
    account({ queryPageItems: 2 });
    for (const item of ["a", "b", "c"]) await put({ Item: { eventId: { S: "e" }, item: { S: item } } });
    const first = await dynamodb.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: "eventId = :e",
        ExpressionAttributeValues: { ":e": { S: "e" } },
      }),
    );
    expect(first.Items?.map((i) => i.item?.S)).toEqual(["a", "b"]);
    expect(first.LastEvaluatedKey).toEqual({ eventId: { S: "e" }, item: { S: "b" } });
  });

  it("a crash right after PutItem: the write took effect, and the process sends nothing more", async () => {
    account();
    const crash = { api: "PutItem" as const, crashed: false };
    await simCrashPoint.run(crash, async () => {
      await put({ Item: claim("a") });
      const after = await refusal(put({ Item: claim("b") }));
      expect(after.message).toMatch(/simulated crash/);
    });
    const stored = await dynamodb.send(
      new GetItemCommand({ TableName: TABLE, Key: { eventId: { S: "inst#k" }, item: { S: "claim" } } }),
    );
    expect(stored.Item?.executionId).toEqual({ S: "a" });
  });

  it("counts a request in flight as real work, so the runner's clock waits for it", async () => {
    const s = account();
    const pending = put({ Item: claim("a") });
    let seen = 0;
    for (let turn = 0; turn < 10_000 && seen === 0; turn++) {
      seen = Math.max(seen, s.realWorkInFlight);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await pending;
    expect(seen).toBeGreaterThan(0);
    expect(s.realWorkInFlight).toBe(0);
  });

  it("each account has a table of its own, kept across restore and install, deleted by close", async () => {
    const first = account();
    await put({ Item: claim("a") });
    first.restore();
    const second = account();
    const key = { eventId: { S: "inst#k" }, item: { S: "claim" } };
    expect((await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: key }))).Item).toBeUndefined();
    second.restore();
    first.install(); // a test reading the ledger after a run does this
    expect((await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: key }))).Item).toEqual(claim("a"));
    first.ledger.close();
    await expect(dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: key }))).rejects.toThrow(/closed/);
    first.restore();
  });
});
