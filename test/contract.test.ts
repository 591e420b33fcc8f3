import { DynamoDBClient, PutItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  GetInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { SendCommandCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseScenario } from "../local/runner/scenario.js";
import { EC2_REQUEST_BUCKETS, type Ec2ThrottledApi } from "../local/sim/ec2-throttling.js";
import { SimAccount, type SimFaults } from "../local/sim/sim-account.js";
import { describeInstancesWhere } from "../shared/aws/ec2-instances.js";
import { dynamoEnforceIntents } from "../shared/aws/enforce-intents.js";
import { isThrottling, isTransient } from "../shared/aws/errors.js";
import { dynamoInstanceClaims } from "../shared/aws/instance-claims.js";
import { findLaunch, launchOf, launchSiblings } from "../shared/aws/launch-lookup.js";
import { dynamoResultStore } from "../shared/aws/result-store.js";
import {
  AWS_ERRORS,
  AWS_PAGING,
  type ContractErrorName,
  contractError,
  expectedShape,
  shapeOf,
} from "./contract/aws-contract.js";

/**
 * The simulated account and the unit tests' mocks, held to one table (test/contract/aws-contract.ts). Each row is
 * provoked from the simulated account through the real SDK clients, intercepted as the local runner intercepts
 * them, and compared with the error the mocks throw for that row (`contractError`, which test/unit/support.ts
 * uses): if the simulator and the mocks disagree, or either disagrees with AWS as the table records it, this fails.
 */

const T0 = Date.parse("2026-11-28T09:00:00Z");
const TABLE = "ledger";
const ec2 = new EC2Client({ region: "eu-west-1" });
const ssm = new SSMClient({ region: "eu-west-1" });
const dynamodb = new DynamoDBClient({ region: "eu-west-1" });

let sim: SimAccount | undefined;

function account(
  instances: Record<string, unknown>[] = [{ id: "i-0a1b2c3d4e5f60001" }],
  faults: SimFaults = {},
): SimAccount {
  const scenario = parseScenario({ name: "contract", events: [], instances }, "contract");
  sim = new SimAccount(scenario.instances, faults);
  sim.install();
  return sim;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
});
afterEach(() => {
  sim?.restore();
  sim = undefined;
  vi.useRealTimers();
});

/** Calls `call` until it fails, and returns how many calls succeeded and the error. */
async function untilRefused(
  call: () => Promise<unknown>,
  atMost = 1000,
): Promise<{ answered: number; error: unknown }> {
  for (let answered = 0; answered < atMost; answered++) {
    try {
      await call();
    } catch (error) {
      return { answered, error };
    }
  }
  throw new Error(`still answering after ${atMost} calls`);
}

/** The row's error as the simulated account threw it, compared with the row and with what the mocks throw. */
function expectAsContracted(error: unknown, name: ContractErrorName) {
  expect(shapeOf(error)).toEqual(expectedShape(name));
  expect(shapeOf(error)).toEqual(shapeOf(contractError(name)));
}

describe("the table itself, as the unit tests' mocks throw it", () => {
  it.each(Object.keys(AWS_ERRORS) as ContractErrorName[])(
    "%s: the SDK's error shape, read by the guard as the table says",
    (name) => {
      const row = AWS_ERRORS[name];
      const error = contractError(name);
      expect(shapeOf(error)).toEqual(expectedShape(name));
      const read = isThrottling(error) ? "throttling" : isTransient(error) ? "transient" : "final";
      expect(read).toBe(row.guardReads);
    },
  );
});

describe("throttling, per API, in the simulated account", () => {
  const ID = "i-0a1b2c3d4e5f60001";
  const calls: Record<Ec2ThrottledApi, () => Promise<unknown>> = {
    DescribeInstances: () =>
      ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "instance-id", Values: [ID] }], MaxResults: 5 })),
    DescribeImages: () => ec2.send(new DescribeImagesCommand({ ImageIds: ["ami-0abcdef1234567890"] })),
    GetInstanceMetadataDefaults: () => ec2.send(new GetInstanceMetadataDefaultsCommand({})),
    ModifyInstanceMetadataOptions: () =>
      ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: ID, HttpTokens: "required" })),
    ModifyInstanceMetadataDefaults: () =>
      ec2.send(new ModifyInstanceMetadataDefaultsCommand({ HttpTokens: "required" })),
  };

  it.each(AWS_ERRORS.ec2Throttled.apis)(
    "EC2 %s: its own documented bucket, then RequestLimitExceeded as contracted, refilled at its rate",
    async (api) => {
      // Prepare
      account([{ id: ID }], { ec2Throttling: true });
      const bucket = EC2_REQUEST_BUCKETS[api];

      // Act
      const burst = await untilRefused(calls[api]);
      vi.setSystemTime(T0 + 1000);
      const refilled = await untilRefused(calls[api]);

      // Assess
      expect(burst.answered).toBe(bucket.capacity);
      expectAsContracted(burst.error, "ec2Throttled");
      expect(refilled.answered).toBe(Math.floor(bucket.refillPerSecond));
    },
  );

  it("EC2 throttles each API on its own: an empty modify bucket leaves DescribeInstances answering", async () => {
    account([{ id: ID }], { ec2Throttling: true });
    await untilRefused(calls.ModifyInstanceMetadataOptions);
    await expect(calls.DescribeInstances()).resolves.toBeDefined();
  });

  it("EC2 DescribeInstances without filter or pagination draws on the smaller documented bucket", async () => {
    account([{ id: ID }], { ec2Throttling: true });
    const unfiltered = await untilRefused(() => ec2.send(new DescribeInstancesCommand({})));
    expect(unfiltered.answered).toBe(50);
    expectAsContracted(unfiltered.error, "ec2Throttled");
    await expect(calls.DescribeInstances()).resolves.toBeDefined();
  });

  it("SSM SendCommand: ThrottlingException as contracted", async () => {
    account([{ id: ID, runCommand: "failed" }], { sendCommandBucket: { capacity: 1, refillPerSecond: 0.1 } });
    vi.setSystemTime(T0 + 31_000); // registered with SSM
    const send = () =>
      ssm.send(
        new SendCommandCommand({
          DocumentName: "AWS-RunShellScript",
          InstanceIds: [ID],
          Parameters: { commands: ["true"] },
        }),
      );
    const { answered, error } = await untilRefused(send);
    expect(answered).toBe(1);
    expectAsContracted(error, "ssmThrottled");
  });

  it.each([
    ["ProvisionedThroughputExceededException", "dynamodbThroughputExceeded"],
    ["ThrottlingException", "dynamodbThrottled"],
  ] as const)("DynamoDB PutItem and Query: %s as contracted", async (code, name) => {
    account([], { ledgerThrottling: { bucket: { capacity: 1, refillPerSecond: 0.01 }, code } });
    const put = () =>
      dynamodb.send(new PutItemCommand({ TableName: TABLE, Item: { eventId: { S: "e" }, item: { S: "x" } } }));
    const { answered, error } = await untilRefused(put);
    expect(answered).toBe(1);
    expectAsContracted(error, name);
    const query = dynamodb.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: "eventId = :e AND begins_with(#item, :prefix)",
        ExpressionAttributeNames: { "#item": "item" },
        ExpressionAttributeValues: { ":e": { S: "e" }, ":prefix": { S: "" } },
      }),
    );
    await query.then(
      () => expect.fail("Query was not throttled"),
      (e: unknown) => expectAsContracted(e, name),
    );
  });
});

describe("an instance EC2 does not show yet (eventual consistency after RunInstances)", () => {
  const ID = "i-0a1b2c3d4e5f60001";

  it("is NotFound by id, absent from a filter, and visible later", async () => {
    // Prepare
    account([{ id: ID, visibleAfterSeconds: 10 }]);

    // Act
    const byId = ec2.send(new DescribeInstancesCommand({ InstanceIds: [ID] }));
    const modify = ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: ID, HttpTokens: "required" }));
    const filtered = await describeInstancesWhere(ec2, [{ Name: "instance-id", Values: [ID] }]);
    vi.setSystemTime(T0 + 10_000);
    const later = await describeInstancesWhere(ec2, [{ Name: "instance-id", Values: [ID] }]);

    // Assess
    for (const call of [byId, modify]) {
      await call.then(
        () => expect.fail("answered"),
        (e: unknown) => expectAsContracted(e, "ec2InstanceNotFound"),
      );
    }
    expect(filtered).toEqual([]);
    expect(later.map((i) => i.InstanceId)).toEqual([ID]);
  });
});

describe('DescribeInstances filters and reservations ("DescribeInstances", Amazon EC2 API Reference)', () => {
  const A = ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002"];
  const B = "i-0a1b2c3d4e5f60003";

  it("answers by reservation, and the guard finds a launch by its reservation or its client token", async () => {
    account([
      ...A.map((id) => ({ id, reservationId: "r-0a1b2c3d4e5f60718", clientToken: "token-a" })),
      { id: B, reservationId: "r-0b1b2c3d4e5f60718", clientToken: "token-b" },
    ]);
    const all = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: "instance-state-name", Values: ["running"] }] }),
    );
    expect(all.Reservations?.map((r) => [r.ReservationId, r.Instances?.map((i) => i.InstanceId)])).toEqual([
      ["r-0a1b2c3d4e5f60718", A],
      ["r-0b1b2c3d4e5f60718", [B]],
    ]);
    const launch = await launchOf(ec2, A[0] ?? "");
    expect(launch?.reservationId).toBe("r-0a1b2c3d4e5f60718");
    expect((await launchSiblings(ec2, launch ?? { instanceId: "", launchTime: "" })).map((i) => i.instanceId)).toEqual(
      A,
    );
    const found = await findLaunch(ec2, {
      call: "RunInstances",
      clientToken: "token-b",
      eventTime: "2026-11-28T09:00:01Z",
    });
    expect(found).toEqual({ by: "client-token", instances: [expect.objectContaining({ instanceId: B })] });
  });

  it("matches launch-time with wildcards, and refuses a filter it does not know rather than ignoring it", async () => {
    account([{ id: B, tags: { "aws:ec2launchtemplate:id": "lt-0c1d2e3f4a5b60718" } }]);
    const window = await findLaunch(ec2, {
      call: "CreateFleet",
      eventTime: "2026-11-28T09:00:30Z",
      launchTemplateIds: ["lt-0c1d2e3f4a5b60718"],
    });
    expect(window.instances.map((i) => i.instanceId)).toEqual([B]);
    const elsewhere = await findLaunch(ec2, {
      call: "CreateFleet",
      eventTime: "2026-11-28T09:05:00Z",
      launchTemplateIds: ["lt-0c1d2e3f4a5b60718"],
    });
    expect(elsewhere.instances).toEqual([]);
    await expect(
      ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "no-such-filter", Values: ["x"] }] })),
    ).rejects.toMatchObject({ name: "InvalidParameterValue" });
  });
});

describe("pagination", () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `i-0c${i.toString(16).padStart(15, "0")}`);

  it("DescribeInstances pages at MaxResults with NextToken, refuses MaxResults out of range, and the guard follows it", async () => {
    // Prepare
    const all = ids(450);
    account(all.map((id) => ({ id })));
    const filters = [{ Name: "instance-state-name", Values: ["running"] }];

    // Act
    const first = await ec2.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 5 }));
    const second = await ec2.send(
      new DescribeInstancesCommand({ Filters: filters, MaxResults: 5, NextToken: first.NextToken }),
    );
    const guard = await describeInstancesWhere(ec2, filters);

    // Assess
    expect(first.Reservations?.flatMap((r) => r.Instances ?? [])).toHaveLength(5);
    expect(first.NextToken).toBeDefined();
    expect(second.Reservations?.[0]?.Instances?.[0]?.InstanceId).toBe(all[5]);
    expect(guard.map((i) => i.InstanceId)).toEqual(all);
    const { maxResultsMin, maxResultsMax } = AWS_PAGING.describeInstances;
    for (const bad of [maxResultsMin - 1, maxResultsMax + 1]) {
      await expect(ec2.send(new DescribeInstancesCommand({ MaxResults: bad }))).rejects.toMatchObject({
        name: "InvalidParameterValue",
      });
    }
  });

  it("DynamoDB Query pages at its item limit with LastEvaluatedKey, and every ledger reader follows it", async () => {
    // Prepare: 6 results in pages of 3, so the third page is the empty one a full second page promises.
    const sim = account([], { queryPageItems: 3 });
    const store = dynamoResultStore(dynamodb, TABLE);
    const intents = dynamoEnforceIntents(dynamodb, TABLE);
    for (let batch = 0; batch < 6; batch++) {
      await store.put("evt", batch, [{ instanceId: `i-${batch}`, verdict: "pass", reason: "ok", warnings: [] }], 0);
    }
    for (let round = 0; round < 4; round++) {
      await intents.record({ eventId: "evt", batchIndex: 2 }, { [`i-${round}`]: "optional" }, new Date(T0 + round), 0);
    }

    // Act
    const page = await dynamodb.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: "eventId = :e AND begins_with(#item, :prefix)",
        ExpressionAttributeNames: { "#item": "item" },
        ExpressionAttributeValues: { ":e": { S: "evt" }, ":prefix": { S: "result#" } },
      }),
    );

    // Assess
    expect(page.Items).toHaveLength(3);
    expect(page.LastEvaluatedKey).toEqual({ eventId: { S: "evt" }, item: { S: "result#00002" } });
    const queriesBefore = sim.calls.Query;
    expect([...(await store.load("evt")).keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(sim.calls.Query - queriesBefore).toBe(3);
    expect([...(await intents.recorded({ eventId: "evt", batchIndex: 2 })).keys()].sort()).toEqual([
      "i-0",
      "i-1",
      "i-2",
      "i-3",
    ]);
  });

  it("DynamoDB Query stops a page at 1 MB of items, and the result store still reads every batch", async () => {
    account();
    const store = dynamoResultStore(dynamodb, TABLE);
    const reason = "x".repeat(1000);
    const results = Array.from({ length: 100 }, (_, i) => ({
      instanceId: `i-${i}`,
      verdict: "pass" as const,
      reason,
      warnings: [],
    }));
    for (let batch = 0; batch < 12; batch++) await store.put("big", batch, results, 0); // ~100 KB each

    const page = await dynamodb.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: "eventId = :e AND begins_with(#item, :prefix)",
        ExpressionAttributeNames: { "#item": "item" },
        ExpressionAttributeValues: { ":e": { S: "big" }, ":prefix": { S: "result#" } },
      }),
    );

    // "Query" (Limit): the operation stops once the data it processed exceeds 1 MB, so the item that crossed the
    // mark is the page's last; every item before it fit under 1 MB.
    expect(page.Items?.length).toBeLessThan(12);
    expect(JSON.stringify(page.Items?.slice(0, -1)).length).toBeLessThanOrEqual(AWS_PAGING.query.pageBytes);
    expect(page.LastEvaluatedKey).toBeDefined();
    expect((await store.load("big")).size).toBe(12);
  });

  it("DynamoDB Query, one item a page: the claims' attribution is read through the paging", async () => {
    account([], { queryPageItems: 1 });
    const claims = dynamoInstanceClaims(dynamodb, TABLE);
    const event = {
      eventId: "e-1",
      eventName: "RunInstances",
      eventTime: "2026-11-28T09:00:00Z",
      actor: "arn:aws:iam::111122223333:user/alice",
      account: "111122223333",
      region: "eu-west-1",
      source: "cloudtrail" as const,
    };
    await claims.claim("inst#k", "execution-a", 0); // another item under the same key, not read
    await claims.attribute("inst#k", event, 0);
    expect(await claims.attribution("inst#k")).toEqual(event);
    expect(await claims.attribution("inst#other")).toBeUndefined();
  });
});

describe("conditional puts", () => {
  it("a claim held by another execution: ConditionalCheckFailedException as contracted, read by the guard as taken", async () => {
    account([]);
    const claims = dynamoInstanceClaims(dynamodb, TABLE);
    expect(await claims.claim("inst#k", "execution-a", 0)).toBe(true);
    expect(await claims.claim("inst#k", "execution-a", 0)).toBe(true); // its own retry
    const raw = dynamodb.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { eventId: { S: "inst#k" }, item: { S: "claim" }, executionId: { S: "execution-b" } },
        ConditionExpression: "attribute_not_exists(eventId) OR executionId = :me",
        ExpressionAttributeValues: { ":me": { S: "execution-b" } },
      }),
    );
    await raw.then(
      () => expect.fail("the put went through"),
      (e: unknown) => expectAsContracted(e, "dynamodbConditionFailed"),
    );
    expect(await claims.claim("inst#k", "execution-b", 0)).toBe(false);
  });
});
