import FakeTimers from "@sinonjs/fake-timers";
import { afterEach, describe, expect, it } from "vitest";
import {
  LAMBDA_ASYNC_PAYLOAD_LIMIT_BYTES,
  LAMBDA_SYNC_PAYLOAD_LIMIT_BYTES,
  STATE_PAYLOAD_LIMIT_BYTES,
} from "../../local/runner/aws-quotas.js";
import { type MapResultOrder, takeDistributedMaps } from "../../local/runner/distributed-map.js";
import { createExecutor, type TaskOverrides } from "../../local/runner/executions.js";
import { functionInvoker, invokeAsync, lambdaError } from "../../local/runner/lambda-invoke.js";
import { runFlow } from "../../local/runner/run-flow.js";
import { allResults, instanceIds, recordedRunInstancesEvent, scenario } from "./helpers.js";

/**
 * The runner's AWS quotas and semantics (local/runner/aws-quotas.ts, distributed-map.ts), each provoked with a tiny
 * definition run by the same executor that runs the guard's ASL, then the RetryCount fix on the guard's own flow.
 */

const SM_ARN = "arn:aws:states:eu-west-1:111122223333:stateMachine:quota-test";
const BIG = "x".repeat(STATE_PAYLOAD_LIMIT_BYTES); // any JSON holding it is over the quota

type Json = Parameters<TaskOverrides[string]>[0];

function executor(
  definition: Record<string, unknown>,
  overrides: TaskOverrides,
  options: {
    retryCountFields?: Map<string, string>;
    mapResultOrder?: MapResultOrder;
    overlappingDuplicateAfterMs?: number;
    background?: (work: Promise<unknown>) => void;
  } = {},
) {
  const copy = structuredClone(definition);
  const maps = takeDistributedMaps(copy);
  return createExecutor({
    definition: copy,
    maps,
    overrides,
    retryCountFields: options.retryCountFields ?? new Map(),
    stateMachineArn: SM_ARN,
    ...(options.mapResultOrder ? { mapResultOrder: options.mapResultOrder } : {}),
    ...(options.overlappingDuplicateAfterMs !== undefined
      ? { overlappingDuplicateAfterMs: options.overlappingDuplicateAfterMs }
      : {}),
    ...(options.background ? { background: options.background } : {}),
  });
}

function start(input: unknown, name = "run-1") {
  return { name, arn: `${SM_ARN.replace(":stateMachine:", ":execution:")}:${name}`, input };
}

/** A Distributed Map over `$.items` whose child runs `child` (ItemProcessor States), with the given Map fields. */
function mapMachine(child: Record<string, unknown>, fields: Record<string, unknown> = {}, executionType = "EXPRESS") {
  return {
    StartAt: "Each",
    States: {
      Each: {
        Type: "Map",
        ItemsPath: "$.items",
        ItemSelector: { "index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value" },
        ItemProcessor: { ProcessorConfig: { Mode: "DISTRIBUTED", ExecutionType: executionType }, ...child },
        ResultPath: "$.results",
        Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.mapFailure", Next: "Caught" }],
        End: true,
        ...fields,
      },
      Caught: { Type: "Pass", End: true },
    },
  };
}

/** A child that fails for the item whose value is "bad" and returns its input otherwise. */
const FAILING_CHILD = {
  StartAt: "Work",
  States: { Work: { Type: "Task", Resource: "arn:aws:lambda:eu-west-1:111122223333:function:work", End: true } },
};
const work: TaskOverrides = {
  Work: async (input) => {
    if ((input as { value?: unknown }).value === "bad") throw lambdaError("WorkFailed", "the bad item");
    return input;
  },
};

describe("States.DataLimitExceeded: 256 KiB per state input and output, and no Catch catches it", () => {
  it("fails the execution when a task's result is over the quota, and neither Retry nor Catch (States.ALL) runs", async () => {
    const calls: string[] = [];
    const run = executor(
      {
        StartAt: "Grow",
        States: {
          Grow: {
            Type: "Task",
            Resource: "arn:aws:lambda:eu-west-1:111122223333:function:grow",
            Retry: [{ ErrorEquals: ["States.ALL"], MaxAttempts: 3 }],
            Catch: [{ ErrorEquals: ["States.ALL"], Next: "Caught" }],
            Next: "After",
          },
          Caught: { Type: "Task", Resource: "arn:aws:lambda:eu-west-1:111122223333:function:caught", End: true },
          After: { Type: "Task", Resource: "arn:aws:lambda:eu-west-1:111122223333:function:after", End: true },
        },
      },
      {
        Grow: async () => {
          calls.push("Grow");
          return { big: BIG };
        },
        Caught: async (input) => {
          calls.push("Caught");
          return input;
        },
        After: async (input) => {
          calls.push("After");
          return input;
        },
      },
    );
    const outcome = await run.execute(start({}));
    expect(outcome.status).toBe("failed");
    expect(outcome.error).toMatch(/^States\.DataLimitExceeded: The result of task Grow is \d+ bytes/);
    expect(calls).toEqual(["Grow"]);
  });

  it("refuses a Pass state's output over the quota before the next state runs", async () => {
    const calls: string[] = [];
    const run = executor(
      {
        StartAt: "Grow",
        States: {
          Grow: { Type: "Pass", Result: { big: BIG }, ResultPath: "$.grown", Next: "After" },
          After: { Type: "Task", Resource: "arn:aws:lambda:eu-west-1:111122223333:function:after", End: true },
        },
      },
      {
        After: async (input) => {
          calls.push("After");
          return input;
        },
      },
    );
    const outcome = await run.execute(start({}));
    expect(outcome).toMatchObject({
      status: "failed",
      error: expect.stringMatching(/^States\.DataLimitExceeded: The output of state Grow/),
    });
    expect(calls).toEqual([]);
  });

  it("refuses an execution input over the quota, and records the largest payload it saw", async () => {
    const run = executor({ StartAt: "Done", States: { Done: { Type: "Succeed" } } }, {});
    const over = await run.execute(start({ big: BIG }));
    expect(over).toMatchObject({
      status: "failed",
      error: expect.stringMatching(/^States\.DataLimitExceeded: The input of state Done/),
    });
    const under = await run.execute(start({ small: "x".repeat(1000) }));
    expect(under.status).toBe("succeeded");
    expect(under.stats.maxStatePayloadBytes).toBe(JSON.stringify({ small: "x".repeat(1000) }).length);
  });

  it("counts UTF-8 bytes, not characters", async () => {
    const run = executor({ StartAt: "Done", States: { Done: { Type: "Succeed" } } }, {});
    // 100,000 three-byte characters: 300,000 bytes, though only 100,000 characters.
    const outcome = await run.execute(start({ text: "€".repeat(100_000) }));
    expect(outcome.error).toMatch(/^States\.DataLimitExceeded/);
  });
});

describe("Standard execution history: at most 25,000 events", () => {
  it("fails a Standard execution whose history passes 25,000 events", async () => {
    const run = executor(
      {
        StartAt: "Tick",
        States: {
          Tick: { Type: "Task", Resource: "arn:aws:lambda:eu-west-1:111122223333:function:tick", Next: "Again" },
          Again: {
            Type: "Choice",
            Choices: [{ Variable: "$.n", NumericLessThan: 10_000, Next: "Tick" }],
            Default: "Done",
          },
          Done: { Type: "Succeed" },
        },
      },
      { Tick: async (input) => ({ n: ((input as { n?: number }).n ?? 0) + 1 }) },
    );
    const outcome = await run.execute(start({ n: 0 }));
    expect(outcome.status).toBe("failed");
    expect(outcome.error).toMatch(/^States\.Runtime: The execution history reached 2500\d events/);
    expect(outcome.stats.historyEvents).toBeGreaterThan(25_000);
  });
});

describe("Distributed Map: children are executions of their own", () => {
  it("under ToleratedFailurePercentage 100, a failed child gives AWS's execution record in the result and the Map succeeds", async () => {
    const run = executor(mapMachine(FAILING_CHILD, { ToleratedFailurePercentage: 100 }), work);
    const outcome = await run.execute(start({ items: ["a", "bad", "c"] }));
    expect(outcome.status).toBe("succeeded");
    const results = (outcome.output as { results: unknown[]; mapFailure?: unknown }).results;
    expect((outcome.output as { mapFailure?: unknown }).mapFailure).toBeUndefined();
    expect(results[0]).toEqual({ index: 0, value: "a" });
    expect(results[2]).toEqual({ index: 2, value: "c" });
    expect(results[1]).toEqual({
      Cause: JSON.stringify({ errorType: "WorkFailed", errorMessage: "the bad item" }),
      Error: "WorkFailed",
      ExecutionArn: expect.stringMatching(/^arn:aws:states:eu-west-1:111122223333:express:quota-test\/Each:/),
      Input: JSON.stringify({ index: 1, value: "bad" }),
      InputDetails: { Included: true },
      Name: expect.any(String),
      StartDate: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      StateMachineArn: `${SM_ARN}/Each`,
      Status: "FAILED",
      StopDate: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(outcome.stats.children.map((c) => c.status)).toEqual(["SUCCEEDED", "FAILED", "SUCCEEDED"]);
  });

  it("without a tolerated threshold one failed child fails the Map with States.ExceedToleratedFailureThreshold, which a Catch may catch", async () => {
    const run = executor(mapMachine(FAILING_CHILD), work);
    const outcome = await run.execute(start({ items: ["a", "bad"] }));
    expect(outcome.status).toBe("succeeded");
    expect((outcome.output as { mapFailure?: { Error?: string } }).mapFailure?.Error).toBe(
      "States.ExceedToleratedFailureThreshold",
    );
  });

  it("ToleratedFailureCount: at the count the Map succeeds, one more fails it", async () => {
    const run = executor(mapMachine(FAILING_CHILD, { ToleratedFailureCount: 1 }), work);
    const one = await run.execute(start({ items: ["bad", "a"] }));
    expect((one.output as { mapFailure?: unknown }).mapFailure).toBeUndefined();
    const two = await run.execute(start({ items: ["bad", "bad", "a"] }));
    expect((two.output as { mapFailure?: { Error?: string } }).mapFailure?.Error).toBe(
      "States.ExceedToleratedFailureThreshold",
    );
  });

  it("gives each child its own $$.Execution, not the parent's", async () => {
    const run = executor(
      mapMachine({
        StartAt: "Who",
        States: {
          Who: { Type: "Pass", Parameters: { "id.$": "$$.Execution.Id", "input.$": "$$.Execution.Input" }, End: true },
        },
      }),
      {},
    );
    const outcome = await run.execute(start({ items: ["a", "b"] }, "parent"));
    const results = (outcome.output as { results: { id: string; input: unknown }[] }).results;
    expect(results.map((r) => r.input)).toEqual([
      { index: 0, value: "a" },
      { index: 1, value: "b" },
    ]);
    expect(new Set(results.map((r) => r.id)).size).toBe(2);
    for (const r of results) expect(r.id).not.toContain("parent");
  });

  it("a child state over 256 KiB fails that child (a failed record under the threshold), not the parent", async () => {
    const run = executor(
      mapMachine(
        { StartAt: "Grow", States: { Grow: { Type: "Pass", Result: { big: BIG }, End: true } } },
        { ToleratedFailurePercentage: 100, ResultSelector: { "errors.$": "$[*].Error" } },
      ),
      {},
    );
    const outcome = await run.execute(start({ items: ["a"] }));
    expect(outcome.status).toBe("succeeded");
    expect((outcome.output as { results: { errors: string[] } }).results.errors).toEqual(["States.DataLimitExceeded"]);
    expect(outcome.stats.children[0]?.maxStatePayloadBytes).toBeGreaterThan(STATE_PAYLOAD_LIMIT_BYTES);
    expect(outcome.stats.maxStatePayloadBytes).toBeGreaterThan(STATE_PAYLOAD_LIMIT_BYTES);
  });

  it("refuses a Distributed Map field it does not emulate, rather than run it wrongly", () => {
    const definition = mapMachine(FAILING_CHILD, { ItemBatcher: { MaxItemsPerBatch: 2 } });
    expect(() => takeDistributedMaps(structuredClone(definition))).toThrow(
      /does not emulate ItemBatcher of Distributed Map Each/,
    );
  });

  it("can return results in an order other than the items' (AWS documents none)", async () => {
    const run = executor(
      mapMachine({ StartAt: "Echo", States: { Echo: { Type: "Pass", End: true } } }),
      {},
      {
        mapResultOrder: "reversed",
      },
    );
    const outcome = await run.execute(start({ items: ["a", "b", "c"] }));
    expect((outcome.output as { results: { value: string }[] }).results.map((r) => r.value)).toEqual(["c", "b", "a"]);
  });
});

describe("Express children: at most 5 minutes each", () => {
  let clock: ReturnType<typeof FakeTimers.install> | undefined;
  afterEach(() => clock?.uninstall());

  it("times a child out at 5 minutes: a TIMED_OUT record in the result, the other children's outputs kept", async () => {
    clock = FakeTimers.install({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const run = executor(
      mapMachine(
        {
          StartAt: "Long",
          States: {
            Long: {
              Type: "Choice",
              Choices: [{ Variable: "$.value", StringEquals: "slow", Next: "Sleep" }],
              Default: "Done",
            },
            Sleep: { Type: "Wait", Seconds: 301, Next: "Done" },
            Done: { Type: "Pass", End: true },
          },
        },
        { ToleratedFailurePercentage: 100 },
      ),
      {},
    );
    const pending = run.execute(start({ items: ["fast", "slow"] }));
    await clock.runAllAsync();
    const outcome = await pending;
    const results = (outcome.output as { results: Record<string, unknown>[] }).results;
    expect(results[0]).toEqual({ index: 0, value: "fast" });
    expect(results[1]).toMatchObject({ Status: "TIMED_OUT", Error: "States.Timeout" });
    expect(outcome.stats.children.find((c) => c.status === "TIMED_OUT")?.durationMs).toBe(300_000);
  });

  it("runs an at-least-once duplicate of each child overlapping the first, with the same name and input", async () => {
    clock = FakeTimers.install({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const runs: { name: unknown; input: unknown; start: number; end?: number }[] = [];
    const background: Promise<unknown>[] = [];
    const run = executor(
      mapMachine({
        StartAt: "Start",
        States: {
          Start: { Type: "Pass", Parameters: { "name.$": "$$.Execution.Name", "input.$": "$" }, Next: "Sleep" },
          Sleep: { Type: "Wait", Seconds: 10, Next: "Work" },
          Work: { Type: "Task", Resource: "arn:aws:lambda:eu-west-1:111122223333:function:work", End: true },
        },
      }),
      {
        Work: async (input) => {
          const { name, input: item } = input as { name: string; input: unknown };
          runs.push({ name, input: item, start: Date.now() - 10_000, end: Date.now() });
          return { copy: runs.length };
        },
      },
      { overlappingDuplicateAfterMs: 2000, background: (work) => background.push(work) },
    );
    const pending = run.execute(start({ items: ["a"] }));
    await clock.runAllAsync();
    const outcome = await pending;
    await Promise.all(background);
    expect(runs).toHaveLength(2);
    const [first, second] = runs;
    expect(second?.name).toBe(first?.name);
    expect(second?.input).toEqual(first?.input);
    expect((second?.start ?? 0) - (first?.start ?? 0)).toBe(2000);
    expect(second?.start).toBeLessThan(first?.end ?? 0);
    expect((outcome.output as { results: unknown[] }).results).toEqual([{ copy: 1 }]);
  });

  it("lets a Standard child run past 5 minutes", async () => {
    clock = FakeTimers.install({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const run = executor(
      mapMachine({ StartAt: "Sleep", States: { Sleep: { Type: "Wait", Seconds: 301, End: true } } }, {}, "STANDARD"),
      {},
    );
    const pending = run.execute(start({ items: ["a"] }));
    await clock.runAllAsync();
    const outcome = await pending;
    expect((outcome.output as { results: unknown[] }).results).toEqual([{ index: 0, value: "a" }]);
  });
});

describe("$$.State.RetryCount: reset on each entry into the state", () => {
  it("counts the engine's retries of this entry only; entering again with the same input starts at 0", async () => {
    const seen: number[] = [];
    let calls = 0;
    const run = executor(
      {
        StartAt: "Enforce",
        States: {
          Enforce: {
            Type: "Task",
            Resource: "arn:aws:lambda:eu-west-1:111122223333:function:enforce",
            Parameters: { "same.$": "$.same" },
            ResultPath: "$.last",
            Retry: [{ ErrorEquals: ["Lambda.Unknown"], MaxAttempts: 2, IntervalSeconds: 0 }],
            Next: "Again",
          },
          Again: {
            Type: "Choice",
            Choices: [{ Variable: "$.last.round", NumericLessThan: 4, Next: "Enforce" }],
            Default: "Done",
          },
          Done: { Type: "Succeed" },
        },
      },
      {
        Enforce: async (input) => {
          calls++;
          seen.push((input as { retryCount: number }).retryCount);
          // The second call crashes once: the engine retries it (RetryCount 1); every other call succeeds.
          if (calls === 2) throw lambdaError("Lambda.Unknown", "crashed");
          return { round: calls } as Json;
        },
      },
      { retryCountFields: new Map([["Enforce", "retryCount"]]) },
    );
    const outcome = await run.execute(start({ same: "input" }));
    expect(outcome.status).toBe("succeeded");
    expect(seen).toEqual([0, 0, 1, 0]);
  });

  it("no longer claims a change never made when Enforce is re-entered for an instance not yet visible", async () => {
    // The event recorded `optional`, but the instance is `required` by the time it is visible (someone else set
    // it): Enforce polls with identical input until then. Counting identical inputs as retries made the third
    // round claim `set-required / attempt-stopped-after-call` with zero modify calls. A describe that shows `required`
    // where the event recorded `optional` may be lagging (EC2's eventual consistency), so Enforce sets it once more,
    // and says so (`reasserted`): a claim backed by the one modify the account saw.
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({
        events: [recordedRunInstancesEvent([id], "optional")],
        instances: [{ id, httpTokens: "required", visibleAfterSeconds: 60 }],
      }),
    );
    expect(run.lambdaInvocations.Enforce).toBeGreaterThan(2);
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(1);
    const [result] = allResults(run);
    expect(result?.enforcement).toMatchObject({ kind: "set-required", evidence: "reasserted" });
  });
});

describe("Lambda payload quotas", () => {
  it("refuses a synchronous request over 6 MB before the function runs", async () => {
    let ran = false;
    const invocations: Record<string, number> = {};
    const invoke = functionInvoker(
      {
        Big: async () => {
          ran = true;
          return {};
        },
      },
      invocations,
      { before: {}, after: {}, afterCall: {} },
    );
    await expect(invoke("Big", { data: "x".repeat(LAMBDA_SYNC_PAYLOAD_LIMIT_BYTES) })).rejects.toMatchObject({
      name: "Lambda.RequestTooLargeException",
    });
    expect(ran).toBe(false);
  });

  it("fails an invocation whose response is over 6 MB, after the function ran", async () => {
    let ran = false;
    const invoke = functionInvoker(
      {
        Big: async () => {
          ran = true;
          return { data: "x".repeat(LAMBDA_SYNC_PAYLOAD_LIMIT_BYTES) };
        },
      },
      {},
      { before: {}, after: {}, afterCall: {} },
    );
    await expect(invoke("Big", {})).rejects.toMatchObject({ name: "Function.ResponseSizeTooLarge" });
    expect(ran).toBe(true);
  });

  it("refuses an asynchronous event over 1 MB at the door: no attempt, no retry, no dead-letter queue", async () => {
    const invocations: Record<string, number> = {};
    const invoke = functionInvoker({ Target: async () => ({}) }, invocations, { before: {}, after: {}, afterCall: {} });
    const record = await invokeAsync(
      invoke,
      "Target",
      { data: "x".repeat(LAMBDA_ASYNC_PAYLOAD_LIMIT_BYTES) },
      async () => {},
    );
    expect(record).toMatchObject({ attempts: 0, refused: expect.stringMatching(/^RequestTooLargeException/) });
    expect(record.deadLettered).toBeUndefined();
    expect(invocations.Target).toBeUndefined();
    const small = await invokeAsync(invoke, "Target", { data: "x" }, async () => {});
    expect(small).toMatchObject({ attempts: 1, output: {} });
  });
});
