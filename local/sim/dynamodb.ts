import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  type CreateTableCommandInput,
  DeleteItemCommand,
  DeleteTableCommand,
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
 * dynalite runs in a worker thread: its timers (a new table turns ACTIVE on a `setTimeout`) and its request handling
 * then run on real time while the runner fakes this thread's timers. Its store is memory-level: dynalite's db module
 * also requires `level` (classic-level, a native addon whose install script this repository keeps off) for on-disk
 * stores, which the ledger never asks for, so `level` is answered with a stand-in and the addon is never loaded.
 * The worker reports the native modules it loaded, for the contract test.
 */
const DYNALITE_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { createRequire, Module } = require("node:module");
const fromHere = createRequire(workerData.from);
const dynalitePath = fromHere.resolve("dynalite");
const levelPath = createRequire(dynalitePath).resolve("level");
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
fromHere.cache[levelPath] = stub;
const server = fromHere(dynalitePath)({ createTableMs: 0 });
// Node closes an idle kept-alive connection after 5 s of wall time, and a client's next request on it is reset
// (ECONNRESET): under the simulated clock, idle real seconds are common. Connections stay open until the end.
server.keepAliveTimeout = 0;
server.listen(0, "127.0.0.1", () => {
  const nativeModules = Object.keys(fromHere.cache).filter((path) => path.endsWith(".node"));
  parentPort.postMessage({ port: server.address().port, nativeModules });
});
`;

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

interface Dynalite {
  client: DynamoDBClient;
  /** The native addons (`.node` files) the worker loaded: none, dynalite stays in memory. */
  nativeModules: string[];
}

/**
 * One dynalite per process (per test file under vitest, per `npm start`), started on first use: a worker takes a
 * moment to start, and every simulated account gets a table of its own in it. The worker is unref'd, so it never
 * keeps a process alive. An account's table outlives its interception (a test may install the account again after
 * a run to read the ledger), so it stays until `close()` or the process ends: memory, a few MB per large run.
 */
let dynalite: Promise<Dynalite> | undefined;
let tables = 0;

function sharedDynalite(): Promise<Dynalite> {
  dynalite ??= startDynalite().catch((error: unknown) => {
    dynalite = undefined;
    throw error;
  });
  return dynalite;
}

async function startDynalite(): Promise<Dynalite> {
  const worker = new Worker(DYNALITE_WORKER, { eval: true, workerData: { from: fileURLToPath(import.meta.url) } });
  worker.unref();
  const { port, nativeModules } = await new Promise<{ port: number; nativeModules: string[] }>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  const client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: "eu-west-1",
    credentials: { accessKeyId: "simulated", secretAccessKey: "simulated" },
    // One attempt: the SDK's retries (clock skew included) wait on timers the runner fakes. Retrying is the guard's
    // own code's job, as the functions' clients retry in AWS.
    maxAttempts: 1,
    requestHandler: new LoopbackHandler(),
  });
  // aws-sdk-client-mock stubs DynamoDBClient.prototype.send for the guard's clients; this one must really send.
  const realSend: DynamoDBClient["send"] = Object.getPrototypeOf(DynamoDBClient.prototype).send;
  client.send = realSend.bind(client);
  return { client, nativeModules };
}

async function send(client: DynamoDBClient, api: LedgerApi, input: Record<string, unknown>): Promise<unknown> {
  const Command = LEDGER_COMMANDS[api];
  // Each command's input is the wire shape the caller sent; dynalite validates it as DynamoDB does.
  const command = new (Command as typeof PutItemCommand)(input as never);
  const { $metadata: _, ...output } = await client.send(command);
  return output;
}

/** Renames the keys of a by-table map (BatchGetItem's RequestItems, its Responses...) from one table to another. */
function renameTable(map: unknown, from: string, to: string): unknown {
  if (typeof map !== "object" || map === null) return map;
  return Object.fromEntries(Object.entries(map).map(([name, value]) => [name === from ? to : name, value]));
}

/**
 * The simulated account's DynamoDB: the event ledger table served by dynalite (an independent implementation of the
 * DynamoDB API) on 127.0.0.1, in memory, reached through a real SDK client. Expressions, key conditions, paging,
 * item and key size limits are dynalite's, not ours. In front of it, only what dynalite lacks or what a test
 * injects: the account's faults, `queryPageItems`, and ReturnValuesOnConditionCheckFailure.
 *
 * The account has one table, the ledger, named by the first call (the runner's name or a test's); a call naming
 * another table is refused with ResourceNotFoundException, as AWS refuses a table that does not exist. In dynalite
 * the table has a name of its own, so accounts never share items.
 */
/** Who waits for the next ledger call to end (the runner, so it need not poll while dynalite answers). */
let settledWaiters: (() => void)[] = [];

/**
 * Resolves when any simulated ledger call ends: the runner's loop waits on it (with a short real-time cap) instead of
 * polling, since a dynalite round trip takes well under a millisecond and a run makes thousands of them.
 */
export function ledgerCallSettled(): Promise<void> {
  return new Promise((resolve) => settledWaiters.push(resolve));
}

function ledgerCallEnded(): void {
  const waiting = settledWaiters;
  settledWaiters = [];
  for (const resolve of waiting) resolve();
}

export class SimLedger {
  private table: Promise<DynamoDBClient> | undefined;
  /** The table's name as the guard calls it, and as dynalite holds it. */
  private names: { outside: string; inside: string } | undefined;
  private requests = 0;
  private closed = false;
  /** Writes to one key, in order: what makes ReturnValuesOnConditionCheckFailure's read see the refusing item. */
  private readonly writes = new Map<string, Promise<unknown>>();

  constructor(private readonly faults: LedgerFaults = {}) {}

  /** Calls to dynalite under way (the table's creation included): real work, during which simulated time must not jump. */
  get inFlight(): number {
    return this.requests;
  }

  /** Answers one DynamoDB call as the ledger table does (its response without the SDK's `$metadata`). */
  async answer(api: LedgerApi, request: unknown): Promise<unknown> {
    if (this.faults.ledgerUnavailable) throw awsError("InternalServerError", "simulated DynamoDB 500", 500);
    this.requests++;
    try {
      return await this.forward(api, { ...(request as Record<string, unknown>) });
    } finally {
      this.requests--;
      ledgerCallEnded();
    }
  }

  /**
   * The string attribute `attribute` of every item whose partition key starts with `keyPrefix`, read with a Scan
   * that no fault or count touches: what a run reports after it ended (the evidence records), not a guard call.
   */
  async records(keyPrefix: string, attribute: string): Promise<string[]> {
    if (!this.table || !this.names) return [];
    const client = await this.table;
    const out: string[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({ TableName: this.names.inside, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      for (const item of page.Items ?? []) {
        const value = item[attribute]?.S;
        if (item.eventId?.S?.startsWith(keyPrefix) && value !== undefined) out.push(value);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /** Deletes the account's table, and refuses calls from then on (the shared dynalite stays up). */
  close(): void {
    this.closed = true;
    const inside = this.names?.inside;
    if (this.table && inside) {
      void this.table.then(
        (client) => client.send(new DeleteTableCommand({ TableName: inside })).catch(() => undefined),
        () => undefined,
      );
    }
  }

  /** The native addons dynalite's worker loaded (none: its store is memory-level). */
  async nativeModules(): Promise<string[]> {
    return (await sharedDynalite()).nativeModules;
  }

  private async forward(api: LedgerApi, input: Record<string, unknown>): Promise<unknown> {
    const requested = typeof input.TableName === "string" ? input.TableName : undefined;
    const client = await this.ready(requested ?? Object.keys(input.RequestItems ?? {})[0]);
    const names = this.names;
    if (!names) throw awsError("ResourceNotFoundException", "Requested resource not found");
    if (requested !== undefined) {
      if (requested !== names.outside) throw awsError("ResourceNotFoundException", "Requested resource not found");
      input.TableName = names.inside;
    }
    if (input.RequestItems !== undefined)
      input.RequestItems = renameTable(input.RequestItems, names.outside, names.inside);
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
    const output = (await this.write(client, api, input)) as Record<string, unknown>;
    for (const field of ["Responses", "UnprocessedItems", "UnprocessedKeys"]) {
      if (output[field] !== undefined) output[field] = renameTable(output[field], names.inside, names.outside);
    }
    return output;
  }

  private async write(client: DynamoDBClient, api: LedgerApi, input: Record<string, unknown>): Promise<unknown> {
    if (!CONDITIONAL_WRITES.has(api)) return send(client, api, input);
    // dynalite ignores ReturnValuesOnConditionCheckFailure; writes to one key are serialized here so that the read
    // after a refused condition sees the item that refused it, as DynamoDB returns it with the error.
    const key = JSON.stringify(this.keyAttributes(input));
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

  private async conditionalWrite(client: DynamoDBClient, api: LedgerApi, input: Record<string, unknown>) {
    try {
      return await send(client, api, input);
    } catch (error) {
      if (input.ReturnValuesOnConditionCheckFailure !== "ALL_OLD") throw error;
      if (!(error instanceof Error) || error.name !== "ConditionalCheckFailedException") throw error;
      const found = (await send(client, "GetItem", {
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

  private ready(tableName: string | undefined): Promise<DynamoDBClient> {
    if (this.closed) return Promise.reject(new Error("The simulated DynamoDB was closed (the run is over)"));
    if (this.table === undefined) {
      if (tableName === undefined) {
        return Promise.reject(awsError("ResourceNotFoundException", "Requested resource not found"));
      }
      const names = { outside: tableName, inside: `ledger-${++tables}` };
      this.names = names;
      this.table = sharedDynalite().then(async ({ client }) => {
        await createTable(client, names.inside);
        return client;
      });
    }
    return this.table;
  }
}

/**
 * Creates a ledger table and waits until dynalite shows it ACTIVE (it activates a table on a timer in its own thread,
 * on real time).
 */
async function createTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(new CreateTableCommand({ TableName: tableName, ...LEDGER_TABLE_DEFINITION }));
  for (let poll = 0; poll < 1000; poll++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === "ACTIVE") return;
    await new Promise((resolve) => realSetTimeout(resolve, 1));
  }
  throw new Error(`The simulated ledger table ${tableName} never became ACTIVE`);
}
