import {
  ConditionalCheckFailedException,
  DynamoDBServiceException,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { dynamodb } from "../../shared/aws/clients/index.js";
import { dynamoProbeSends, type ProbeSendKey } from "../../shared/aws/probe-sends.js";
import { dynamoMock, ID_A, ID_B, resetMocks, serviceError } from "./support.js";

const NOW = new Date("2026-11-28T10:00:00.000Z");
const KEY: ProbeSendKey = { ledgerKey: "evt-1", batchIndex: 3, platform: "linux", instanceIds: [ID_A, ID_B] };
const sends = () => dynamoProbeSends(dynamodb, "ledger", () => NOW);

beforeEach(resetMocks);

describe("dynamoProbeSends: SendProbe's marker in the event ledger", () => {
  it("claims a chunk's send with a conditional put that only a released marker lets through", async () => {
    // Prepare
    dynamoMock.on(PutItemCommand).resolves({});

    // Act
    const claim = await sends().claim(KEY);

    // Assess
    expect(claim).toEqual({ claimed: true });
    const [put] = dynamoMock.commandCalls(PutItemCommand).map((c) => c.args[0].input);
    expect(put).toMatchObject({
      TableName: "ledger",
      ConditionExpression: "attribute_not_exists(eventId) OR probeState = :released",
      ExpressionAttributeValues: { ":released": { S: "released" } },
      Item: { eventId: { S: "evt-1" }, probeState: { S: "sending" } },
    });
    expect(put?.Item?.item?.S).toMatch(/^probe#00003#[0-9a-f]{24}$/);
  });

  it("hands a repeat the CommandId the first run recorded, under the same item", async () => {
    // Prepare
    dynamoMock
      .on(PutItemCommand)
      .rejects(new ConditionalCheckFailedException({ message: "exists", $metadata: {} }))
      .on(GetItemCommand)
      .resolves({ Item: { commandId: { S: "cmd-1" }, probeState: { S: "sent" } } });

    // Act
    const claim = await sends().claim(KEY);

    // Assess
    expect(claim).toEqual({ claimed: false, commandId: "cmd-1" });
    const put = dynamoMock.commandCalls(PutItemCommand)[0]?.args[0].input;
    const get = dynamoMock.commandCalls(GetItemCommand)[0]?.args[0].input;
    expect(get).toMatchObject({ ConsistentRead: true, Key: { eventId: { S: "evt-1" }, item: put?.Item?.item } });
  });

  it("keys a different chunk apart, and records the command and the release as overwrites", async () => {
    // Prepare
    dynamoMock.on(PutItemCommand).resolves({});

    // Act
    await sends().claim(KEY);
    await sends().claim({ ...KEY, instanceIds: [ID_A] });
    await sends().sent(KEY, "cmd-2");
    await sends().release(KEY);

    // Assess
    const puts = dynamoMock.commandCalls(PutItemCommand).map((c) => c.args[0].input);
    expect(puts[0]?.Item?.item?.S).not.toBe(puts[1]?.Item?.item?.S);
    expect(puts[2]).toMatchObject({ Item: { probeState: { S: "sent" }, commandId: { S: "cmd-2" } } });
    expect(puts[2]?.ConditionExpression).toBeUndefined();
    expect(puts[3]).toMatchObject({ Item: { probeState: { S: "released" } } });
  });

  it("classifies a ledger error by retry behaviour instead of treating it as a claim", async () => {
    // Prepare
    dynamoMock.on(PutItemCommand).rejects(serviceError(DynamoDBServiceException, "InternalServerError", 500));

    // Act + Assess
    await expect(sends().claim(KEY)).rejects.toMatchObject({ name: expect.stringMatching(/^Retryable/) });
  });
});
