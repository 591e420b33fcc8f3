import { Agent as HttpAgent, Server as HttpServer, request as httpRequest } from "node:http";
import { createRequire, Module } from "node:module";
import type { AddressInfo } from "node:net";
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  type CreateTableCommandInput,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { HttpRequest, HttpResponse, RequestHandler } from "@smithy/types";
import type { BucketSpec } from "./ec2-throttling.js";

/**
 * The event ledger table as infra/orchestration.yml declares `EventLedgerTable` (test/dynamodb-contract.test.ts
 * checks they agree): the simulated account's table is created with exactly this key schema.
 */
export const LEDGER_TABLE_DEFINITION = {
  AttributeDefinitions: [
    { AttributeName: "eventId", AttributeType: "S" },
    { AttributeName: "item", AttributeType: "S" },
  ],
  KeySchema: [
    { AttributeName: "eventId", KeyType: "HASH" },
    { AttributeName: "item", KeyType: "RANGE" },
  ],
  BillingMode: "PAY_PER_REQUEST",
} as const satisfies Omit<CreateTableCommandInput, "TableName">;

/** The DynamoDB operations the simulated ledger forwards to dynalite (dynalite has no transactions and no TTL). */
const LEDGER_COMMANDS = {
  PutItem: PutItemCommand,
  GetItem: GetItemCommand,
  Query: QueryCommand,
  UpdateItem: UpdateItemCommand,
  DeleteItem: DeleteItemCommand,
  BatchGetItem: BatchGetItemCommand,
  BatchWriteItem: BatchWriteItemCommand,
  Scan: ScanCommand,
} as const;

export type LedgerApi = keyof typeof LEDGER_COMMANDS;

/** The writes whose ReturnValuesOnConditionCheckFailure the ledger answers in front of dynalite ("PutItem"). */
const CONDITIONAL_WRITES: ReadonlySet<string> = new Set(["PutItem", "UpdateItem", "DeleteItem"]);

/** The ledger's faults, a subset of the simulated account's (`SimFaults`). */
export interface LedgerFaults {
  /** Throttle the event ledger's PutItem and Query with this bucket, answering with this DynamoDB code. */
  ledgerThrottling?: { bucket: BucketSpec; code: "ProvisionedThroughputExceededException" | "ThrottlingException" };
  /** The most items one Query returns before it answers with LastEvaluatedKey (DynamoDB's own limit is 1 MB). */
  queryPageItems?: number;
  /** The event ledger's table answers 500 to every call. */
  ledgerUnavailable?: boolean;
}

function awsError(name: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: httpStatusCode >= 500 ? "server" : "client",
    $metadata: { httpStatusCode },
  });
}

/**
 * The bucket a throttled ledger call draws on and the error it answers with, or undefined when the scenario does not
 * throttle the ledger (codes and messages: "PutItem", "Query", Errors).
 */
export function ledgerThrottle(
  faults: LedgerFaults,
  api: string,
): { spec: BucketSpec; error: () => Error } | undefined {
  const throttling = faults.ledgerThrottling;
  if (!throttling || (api !== "PutItem" && api !== "Query")) return undefined;
  const message =
    throttling.code === "ThrottlingException"
      ? "Throughput exceeds the current throughput limit for your account."
      : "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.";
  // One bucket for the table, reads and writes alike: enough to provoke what the readers must ride out.
  return { spec: throttling.bucket, error: () => awsError(throttling.code, message) };
}

// Captured when this module loads, before a runner or a test fakes the global timers.
const realSetTimeout = globalThis.setTimeout;

/**
 * dynalite, with its store in memory only. Its db module requires `level` (classic-level, a native addon whose
 * install script this repository keeps off) for on-disk stores, which the ledger never asks for: `level` is answered
 * with a stand-in, so the addon is never loaded.
 */
function loadDynalite(): (options: { createTableMs: number }) => HttpServer {
  const require = createRequire(import.meta.url);
  const dynalitePath = require.resolve("dynalite");
  const levelPath = createRequire(dynalitePath).resolve("level");
  if (!(levelPath in require.cache)) {
    const stub = new Module(levelPath);
    stub.filename = levelPath;
    stub.loaded = true;
    stub.exports = {
      Level: class {
        constructor() {
          throw new Error("The simulated ledger keeps dynalite in memory: an on-disk store (classic-level) is off");
        }
      },
    };
    require.cache[levelPath] = stub;
  }
  return require(dynalitePath);
}

/**
 * A request handler on node:http that sets no timer: the SDK's own handler arms timeouts with `setTimeout`, which the
 * runner fakes, so its timers would sit in the simulated clock's queue. Loopback only.
 */
class LoopbackHandler implements RequestHandler<HttpRequest, HttpResponse> {
  private readonly agent = new HttpAgent({ keepAlive: true });

  handle(request: HttpRequest): Promise<{ response: HttpResponse }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: request.hostname,
          port: request.port,
          method: request.method,
          path: request.path,
          headers: request.headers,
          agent: this.agent,
        },
        (res) => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
          }
          resolve({ response: { statusCode: res.statusCode ?? 500, reason: res.statusMessage, headers, body: res } });
        },
      );
      req.on("error", reject);
      req.end(request.body);
    });
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    this.agent.destroy();
  }
}

interface Backend {
  server: HttpServer;
  client: DynamoDBClient;
  handler: LoopbackHandler;
}

/**
 * The simulated account's DynamoDB: the event ledger table served by dynalite (an independent implementation of the
 * DynamoDB API) on 127.0.0.1, in memory, reached through a real SDK client. Expressions, key conditions, paging,
 * item and key size limits are dynalite's, not ours. In front of it, only what dynalite lacks or what a test
 * injects: the account's faults, `queryPageItems`, and ReturnValuesOnConditionCheckFailure.
 *
 * The server starts on the first call and creates the table under that call's TableName (the account has one table,
 * the ledger; a call naming another table then gets dynalite's ResourceNotFoundException, as AWS answers).
 */
export class SimLedger {
  private backend: Promise<Backend> | undefined;
  /** The server, once the ledger table is ACTIVE in it. */
  private table: Promise<DynamoDBClient> | undefined;
  private requests = 0;
  private closed = false;
  /** Writes to one key, in order: what makes ReturnValuesOnConditionCheckFailure's read see the refusing item. */
  private readonly writes = new Map<string, Promise<unknown>>();

  constructor(private readonly faults: LedgerFaults = {}) {}

  /** Requests to dynalite under way: real work, during which simulated time must not jump. */
  get inFlight(): number {
    return this.requests;
  }

  /** Answers one DynamoDB call as the ledger table does (its response without the SDK's `$metadata`). */
  async answer(api: LedgerApi, request: unknown): Promise<unknown> {
    if (this.faults.ledgerUnavailable) throw awsError("InternalServerError", "simulated DynamoDB 500", 500);
    const input = { ...(request as Record<string, unknown>) };
    const client = await this.ready(typeof input.TableName === "string" ? input.TableName : undefined);
    if (api === "Query" && this.faults.queryPageItems !== undefined) {
      const limit = typeof input.Limit === "number" ? input.Limit : Number.POSITIVE_INFINITY;
      input.Limit = Math.min(limit, this.faults.queryPageItems);
    }
    const returnOld = input.ReturnValuesOnConditionCheckFailure;
    if (returnOld !== undefined && returnOld !== "ALL_OLD" && returnOld !== "NONE") {
      throw awsError(
        "ValidationException",
        `1 validation error detected: Value '${String(returnOld)}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]`,
      );
    }
    if (!CONDITIONAL_WRITES.has(api)) return this.send(client, api, input);
    // dynalite ignores ReturnValuesOnConditionCheckFailure; writes to one key are serialized here so that the read
    // after a refused condition sees the item that refused it, as DynamoDB returns it with the error.
    const key = this.keyOf(input);
    const previous = this.writes.get(key) ?? Promise.resolve();
    const write = previous.then(
      () => this.conditionalWrite(client, api, input),
      () => this.conditionalWrite(client, api, input),
    );
    this.writes.set(key, write);
    try {
      return await write;
    } finally {
      if (this.writes.get(key) === write) this.writes.delete(key);
    }
  }

  /** Stops the server and drops the table (nothing waits on a timer, so it works under a fake clock too). */
  close(): void {
    this.closed = true;
    void this.backend?.then(({ server, client }) => {
      client.destroy();
      server.closeAllConnections();
      // dynalite's own close() waits for its store on timers; its store is memory, nothing to flush.
      HttpServer.prototype.close.call(server);
    });
  }

  private async conditionalWrite(client: DynamoDBClient, api: LedgerApi, input: Record<string, unknown>) {
    try {
      return await this.send(client, api, input);
    } catch (error) {
      if (input.ReturnValuesOnConditionCheckFailure !== "ALL_OLD") throw error;
      if (!(error instanceof Error) || error.name !== "ConditionalCheckFailedException") throw error;
      const found = (await this.send(client, "GetItem", {
        TableName: input.TableName,
        Key: this.keyAttributes(input),
        ConsistentRead: true,
      })) as { Item?: unknown };
      if (found.Item !== undefined) Object.assign(error, { Item: found.Item });
      throw error;
    }
  }

  private keyAttributes(input: Record<string, unknown>): Record<string, unknown> {
    const source = (input.Key ?? input.Item ?? {}) as Record<string, unknown>;
    return Object.fromEntries(LEDGER_TABLE_DEFINITION.KeySchema.map((k) => [k.AttributeName, source[k.AttributeName]]));
  }

  private keyOf(input: Record<string, unknown>): string {
    return JSON.stringify([input.TableName, this.keyAttributes(input)]);
  }

  private async send(client: DynamoDBClient, api: LedgerApi, input: Record<string, unknown>): Promise<unknown> {
    const Command = LEDGER_COMMANDS[api];
    this.requests++;
    try {
      // Each command's input is the wire shape the caller sent; dynalite validates it as DynamoDB does.
      const command = new (Command as typeof PutItemCommand)(input as never);
      const { $metadata: _, ...output } = await client.send(command);
      return output;
    } finally {
      this.requests--;
    }
  }

  private ready(tableName: string | undefined): Promise<DynamoDBClient> {
    if (this.closed) return Promise.reject(new Error("The simulated DynamoDB was closed (the run is over)"));
    if (this.table === undefined) {
      if (tableName === undefined) {
        return Promise.reject(awsError("ResourceNotFoundException", "Requested resource not found"));
      }
      this.table = this.start().then(async (backend) => {
        await this.createTable(backend.client, tableName);
        return backend.client;
      });
    }
    return this.table;
  }

  private start(): Promise<Backend> {
    this.backend = this.listen();
    return this.backend;
  }

  private async listen(): Promise<Backend> {
    const server = loadDynalite()({ createTableMs: 0 });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const handler = new LoopbackHandler();
    const client = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: "eu-west-1",
      credentials: { accessKeyId: "simulated", secretAccessKey: "simulated" },
      // One attempt: the SDK's retries (clock skew included) wait on timers the runner fakes. Retrying is the
      // guard's own code's job, as the functions' clients retry in AWS.
      maxAttempts: 1,
      requestHandler: handler,
    });
    // aws-sdk-client-mock stubs DynamoDBClient.prototype.send for the guard's clients; this one must really send.
    const realSend: DynamoDBClient["send"] = Object.getPrototypeOf(DynamoDBClient.prototype).send;
    client.send = realSend.bind(client);
    return { server, client, handler };
  }

  /**
   * Creates the ledger table and waits until dynalite shows it ACTIVE. dynalite activates a table on a `setTimeout`
   * (0 ms here); under the runner's fake clock that timer is due now, and the runner fires it when nothing else runs,
   * so the wait between polls is not counted as real work.
   */
  private async createTable(client: DynamoDBClient, tableName: string): Promise<void> {
    this.requests++;
    try {
      await client.send(new CreateTableCommand({ TableName: tableName, ...LEDGER_TABLE_DEFINITION }));
    } finally {
      this.requests--;
    }
    for (let poll = 0; poll < 1000; poll++) {
      this.requests++;
      try {
        const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
        if (Table?.TableStatus === "ACTIVE") return;
      } finally {
        this.requests--;
      }
      await new Promise((resolve) => realSetTimeout(resolve, 2));
    }
    throw new Error(`The simulated ledger table ${tableName} never became ACTIVE (is a fake clock left unadvanced?)`);
  }
}
