import { existsSync, readFileSync } from "node:fs";
import aslValidator from "asl-validator";
import { StateMachine } from "aws-local-stepfunctions";
import { describe, expect, it } from "vitest";
import { aslText, CRASH_SAFE, type StepFunction } from "../infra/state-machine.js";
import {
  DYNAMODB_ERROR_NAMES,
  GUARD_ERROR_NAMES,
  LAMBDA_CRASH_ERROR_NAMES,
  LAMBDA_SERVICE_ERROR_NAMES,
} from "../shared/domain/errors.js";

interface Retrier {
  ErrorEquals: string[];
}
interface State {
  Type: string;
  Resource?: string;
  End?: boolean;
  Next?: string;
  Retry?: Retrier[];
  Catch?: Retrier[];
  ItemProcessor?: { States: Record<string, State> };
}

const definition = JSON.parse(readFileSync("infra/state-machine.asl.json", "utf8")) as {
  States: Record<string, State>;
};

function allStates(states: Record<string, State> = definition.States): [string, State][] {
  return Object.entries(states).flatMap(([name, state]) => [
    [name, state] as [string, State],
    ...(state.ItemProcessor ? allStates(state.ItemProcessor.States) : []),
  ]);
}

/** Every task state that invokes one of the guard's functions: state name, function, state. */
function lambdaTasks(): [string, StepFunction, State][] {
  return allStates().flatMap(([name, state]) => {
    const fn = state.Resource?.match(/^\$\{(\w+)FunctionArn\}$/)?.[1];
    if (state.Type !== "Task" || !fn) return [];
    expect(Object.keys(CRASH_SAFE), `${name} invokes ${fn}`).toContain(fn);
    return [[name, fn as StepFunction, state] as [string, StepFunction, State]];
  });
}

describe("infra/state-machine.asl.json", () => {
  it("is valid Amazon States Language", () => {
    // Act
    const { isValid, errors } = aslValidator(definition);

    // Assess
    expect(errors).toEqual([]);
    expect(isValid).toBe(true);
  });

  it("uses only error names that the shared errors module defines", () => {
    // Prepare
    const known = new Set<string>([
      ...GUARD_ERROR_NAMES,
      ...LAMBDA_SERVICE_ERROR_NAMES,
      ...LAMBDA_CRASH_ERROR_NAMES,
      ...DYNAMODB_ERROR_NAMES,
      "States.ALL",
      // A task that waits for its token past its timeout (AwaitAttribution).
      "States.Timeout",
    ]);

    // Act
    const used = allStates().flatMap(([, s]) => [...(s.Retry ?? []), ...(s.Catch ?? [])].flatMap((r) => r.ErrorEquals));
    const unknown = used.filter((name) => !known.has(name));

    // Assess
    expect(used.length).toBeGreaterThan(10);
    expect(unknown).toEqual([]);
  });

  it("never retries blindly: no Retry matches States.ALL or States.TaskFailed", () => {
    const blind = allStates().filter(([, s]) =>
      (s.Retry ?? []).some((r) => r.ErrorEquals.includes("States.ALL") || r.ErrorEquals.includes("States.TaskFailed")),
    );
    expect(blind.map(([name]) => name)).toEqual([]);
  });

  it("is exactly what infra/state-machine.ts builds (npm run build:asl rewrites it)", () => {
    expect(readFileSync("infra/state-machine.asl.json", "utf8")).toBe(aslText());
  });

  it("gives every Lambda task the standard retry of Lambda's service exceptions", () => {
    const tasks = lambdaTasks();
    expect(tasks.length).toBeGreaterThanOrEqual(14);
    for (const [name, , state] of tasks) {
      const covered = new Set((state.Retry ?? []).flatMap((r) => r.ErrorEquals));
      for (const error of LAMBDA_SERVICE_ERROR_NAMES) expect(covered.has(error), `${name}: ${error}`).toBe(true);
    }
  });

  it("retries a crash only on the functions named crash-safe, where a second run cannot act twice", () => {
    expect(CRASH_SAFE.SendProbe).toBe(false);
    for (const [name, fn, state] of lambdaTasks()) {
      const retried = (state.Retry ?? []).flatMap((r) => r.ErrorEquals);
      for (const crash of LAMBDA_CRASH_ERROR_NAMES) {
        expect(retried.includes(crash), `${name} (${fn}) retries ${crash}`).toBe(CRASH_SAFE[fn]);
      }
    }
  });

  it("invokes only functions that exist under functions/, by their placeholder", () => {
    // Act
    const placeholders = allStates()
      .map(([, s]) => s.Resource?.match(/^\$\{(\w+)FunctionArn\}$/)?.[1])
      .filter((p): p is string => p !== undefined);
    const toDir = (name: string) => name.replace(/[A-Z]/g, (c, i: number) => `${i ? "-" : ""}${c.toLowerCase()}`);

    // Assess
    expect(placeholders.length).toBeGreaterThanOrEqual(8);
    for (const name of placeholders) expect(existsSync(`functions/${toDir(name)}/handler.ts`), name).toBe(true);
  });

  it("ends every batch in FinalizeBatch whatever step fails", () => {
    const batchStates = definition.States.ForEachBatch?.ItemProcessor?.States ?? {};
    // The five round steps; each reads its batch from the ledger at a slice's start and stores it when the slice
    // ends, so a failed read or write is caught like any other failure (FinalizeBatch reads the work list then).
    const tasks = Object.entries(batchStates).filter(
      ([name, s]) => s.Type === "Task" && name !== "FinalizeBatch" && name !== "FinalizeWithoutLedger",
    );
    expect(tasks.map(([name]) => name).sort()).toEqual([
      "CheckApplied",
      "CheckManaged",
      "CheckProbe",
      "Enforce",
      "SendProbe",
    ]);
    for (const [name, state] of tasks) {
      expect(state.Catch, name).toEqual([
        expect.objectContaining({ ErrorEquals: ["States.ALL"], Next: "FinalizeBatch" }),
      ]);
    }
  });

  it("ends the execution at Notify: the watch after enforcing is a schedule Notify books, not states that wait", () => {
    // Act
    const names = allStates().map(([name]) => name);
    const notify = definition.States.Notify;

    // Assess
    expect(notify?.End).toBe(true);
    expect(notify?.Next).toBeUndefined();
    for (const gone of [
      "ShouldWatch",
      "ShouldWatchWindow",
      "WatchWindow",
      "CheckRejected",
      "WatchFailed",
      "AnyRejected",
      "AlertRejected",
    ]) {
      expect(names, gone).not.toContain(gone);
    }
    expect(lambdaTasks().map(([, fn]) => fn)).not.toContain("CheckRejected");
    expect(allStates().filter(([, s]) => s.Type === "Wait" && JSON.stringify(s).includes("watchRejected"))).toEqual([]);
  });
});

describe("the batch's child workflow, run on its own", () => {
  // The processor as a state machine of its own: its StartAt and States, without the Map's ProcessorConfig, and
  // with its placeholders filled as a deploy fills them.
  const { ProcessorConfig: _config, ...processor } = (definition.States.ForEachBatch?.ItemProcessor ?? {}) as Record<
    string,
    unknown
  >;
  const child = JSON.parse(
    JSON.stringify(processor)
      .replace(/\$\{(\w+)FunctionArn\}/g, "arn:aws:lambda:eu-west-1:111122223333:function:$1")
      .replace(/\$\{EventLedgerTableName\}/g, "ledger"),
  ) as Record<string, unknown>;
  const place = {
    eventId: "e-1",
    account: "111122223333",
    region: "eu-west-1",
    ledgerKey: "e-1",
    trigger: "launch",
    settings: {},
    startedAt: "2026-11-28T09:00:00.000Z",
  };

  it("keeps a failed child's execution record as failedChild, then hands it back unchanged, never to a batch step", async () => {
    // Prepare: the record AWS puts in a Distributed Map's result for a failed child ("Distributed Map state").
    const record = {
      Error: "States.Timeout",
      Cause: 'The execution timed out "after" 300 s \\ really',
      ExecutionArn: "arn:aws:states:eu-west-1:111122223333:express:guard/child:1",
      Input: JSON.stringify({ ...place, item: { batchIndex: 4, instances: 50 } }),
      Name: "child",
      Status: "FAILED",
      StartDate: "2026-11-28T09:00:00.000Z",
      StopDate: "2026-11-28T09:05:00.000Z",
      StateMachineArn: "arn:aws:states:eu-west-1:111122223333:stateMachine:guard/ForEachBatch",
    };
    const called: string[] = [];
    const step = (name: string) => async () => {
      called.push(name);
      throw new Error(`${name} must not run`);
    };
    const machine = new StateMachine(child as never, { validationOptions: { checkArn: false, checkPaths: false } });

    const overrides = {
      taskResourceLocalHandlers: Object.fromEntries(
        ["Enforce", "CheckApplied", "CheckManaged", "SendProbe", "CheckProbe", "FinalizeBatch"].map((n) => [
          n,
          step(n),
        ]),
      ),
    };

    // Act: the slice after the failure, and the one after that
    const kept = await machine.run({ ...place, item: record } as never, { overrides }).result;
    const again = await machine.run({ ...place, item: kept } as never, { overrides }).result;

    // Assess: the record is kept whole, says `suspended: false` (what the Map's ResultSelector reads), never grows
    expect(kept).toEqual({ failedChild: record, suspended: false });
    expect(again).toEqual(kept);
    expect(called).toEqual([]);
  });

  it("starts a new batch at Enforce with a pointer to its work list, not its instances", async () => {
    // Prepare
    const inputs: unknown[] = [];
    const machine = new StateMachine(child as never, { validationOptions: { checkArn: false, checkPaths: false } });

    // Act
    await machine.run({ ...place, item: { batchIndex: 7, instances: 50 } } as never, {
      // The engine has no $$.State.RetryCount (the runner emulates it): a first attempt.
      context: { State: { RetryCount: 0 } } as never,
      overrides: {
        taskResourceLocalHandlers: {
          Enforce: async (input) => {
            inputs.push(input);
            return { batchIndex: 7, next: "finalize" };
          },
          FinalizeBatch: async () => ({ batchIndex: 7, suspended: false, instances: 50, counts: {} }),
        },
      },
    }).result;

    // Assess: the index is the item's own, never a position in the Map.
    expect(inputs).toEqual([{ batch: { ...place, batchIndex: 7, stored: "work" }, retryCount: 0 }]);
  });
});
