import type { StateMachine } from "aws-local-stepfunctions";
import { EXPRESS_MAX_DURATION_MS, ExecutionTracker, statesError, trackedMachine } from "./aws-quotas.js";
import { type ChildOutcome, type DistributedMapSpec, type MapResultOrder, runMapRun } from "./distributed-map.js";

/** aws-local-stepfunctions does not export its JSON type; this is the value its task overrides exchange. */
type JSONValue = Parameters<StateMachine["run"]>[0];
export type TaskOverrides = Record<string, (input: JSONValue) => Promise<JSONValue>>;

/** One Distributed Map child execution (one batch, or one slice of a batch). */
export interface ChildExecutionStats {
  status: ChildOutcome["status"];
  transitions: number;
  historyEvents: number;
  /** Simulated milliseconds from its start to its end: what an Express child is billed by. */
  durationMs: number;
  /** The largest state input or output of the child (UTF-8 bytes of the JSON). */
  maxStatePayloadBytes: number;
}

/** What Step Functions would show for one execution, counted from the states it ran. */
export interface ExecutionStats {
  /** Every state entered and retry, in the parent and its children, and one per child started. */
  transitions: number;
  /** The parent's own: its states, its retries, and one per Map child it started. */
  parentTransitions: number;
  children: ChildExecutionStats[];
  /** History events of the parent execution (Distributed Map children have their own). */
  historyEvents: number;
  /** History events of the largest child execution (one batch). */
  maxChildHistoryEvents: number;
  retries: number;
  /** The largest state input or output across the parent and its children (the 256 KiB quota's measure). */
  maxStatePayloadBytes: number;
}

export interface ExecutionOutcome {
  status: "succeeded" | "failed";
  output?: unknown;
  /** `Error: Cause` as Step Functions reports the execution's failure. */
  error?: string;
  stats: ExecutionStats;
}

export interface ExecutorConfig {
  /** The engine's copy of the definition (Distributed Maps taken out by `takeDistributedMaps`). */
  definition: Record<string, unknown>;
  maps: Map<string, DistributedMapSpec>;
  /** The runner's task overrides (the functions, token tasks and ledger calls), shared by every execution. */
  overrides: TaskOverrides;
  /** State name → the Parameters field that carried `$$.State.RetryCount` (the runner supplies it). */
  retryCountFields: Map<string, string>;
  stateMachineArn: string;
  mapResultOrder?: MapResultOrder;
  /**
   * Express runs a child at least once, and a second run may overlap the first ("Choosing workflow type in Step
   * Functions": at-least-once). Start every Express child again this many simulated milliseconds after the first,
   * with the same name and input; the Map keeps the first run's outcome, the second runs on to its end.
   */
  overlappingDuplicateAfterMs?: number;
  /** Hands the runner work that outlives the call that started it (an overlapping duplicate), so it waits for it. */
  background?: (work: Promise<unknown>) => void;
}

export interface ExecutionStart {
  name: string;
  arn: string;
  input: unknown;
}

/**
 * Runs executions of one state machine the way Step Functions does: each with its own context object, its own
 * `$$.State.RetryCount` per state entry, its own quotas (aws-quotas.ts), and its Distributed Maps' children as
 * executions of their own (distributed-map.ts).
 */
export function createExecutor(config: ExecutorConfig) {
  const mapStateNames = new Set(config.maps.keys());
  let childSequence = 0;

  /** The task overrides as one execution sees them: its RetryCount, its task payloads checked against the quota. */
  function overridesFor(tracker: ExecutionTracker, context: ExecutionContext, children: ChildExecutionStats[]) {
    const out: TaskOverrides = {};
    for (const [stateName, invoke] of Object.entries(config.overrides)) {
      const field = config.retryCountFields.get(stateName);
      out[stateName] = async (input) => {
        const effective = field
          ? ({ ...(input as Record<string, JSONValue>), [field]: tracker.retryCount(stateName) } as JSONValue)
          : input;
        tracker.payload(`The input of task ${stateName}`, effective);
        const result = await invoke(effective);
        tracker.payload(`The result of task ${stateName}`, result);
        return result;
      };
    }
    for (const [stateName, spec] of config.maps) {
      out[stateName] = async (input) => {
        const results = await runMapRun(
          spec,
          input,
          context,
          (childInput, index, abortSignal) => runChild(spec, childInput, index, abortSignal, children),
          config.mapResultOrder,
        );
        tracker.payload(`The result of Map ${stateName}`, results);
        return results as JSONValue;
      };
    }
    return out;
  }

  /** One child execution of a Map run: its own execution, own quotas; an Express child stops at 5 minutes. */
  async function runChild(
    spec: DistributedMapSpec,
    input: unknown,
    index: number,
    abortSignal: AbortSignal,
    sink: ChildExecutionStats[],
  ): Promise<ChildOutcome> {
    const name = `${spec.stateName}-${(++childSequence).toString(16).padStart(8, "0")}-${index}`;
    const duplicateAfter = config.overlappingDuplicateAfterMs;
    if (spec.executionType === "EXPRESS" && duplicateAfter !== undefined) {
      const duplicate = new Promise<unknown>((resolve) => setTimeout(resolve, duplicateAfter)).then(() =>
        runChildOnce(spec, input, name, new AbortController().signal, sink),
      );
      config.background?.(duplicate);
    }
    return runChildOnce(spec, input, name, abortSignal, sink);
  }

  async function runChildOnce(
    spec: DistributedMapSpec,
    input: unknown,
    name: string,
    abortSignal: AbortSignal,
    sink: ChildExecutionStats[],
  ): Promise<ChildOutcome> {
    const stateMachineArn = `${config.stateMachineArn}/${spec.stateName}`;
    const executionArn = stateMachineArn
      .replace(":stateMachine:", spec.executionType === "EXPRESS" ? ":express:" : ":execution:")
      .concat(`:${name}`);
    const tracker = new ExecutionTracker(spec.executionType);
    const startDate = Date.now();
    const context: ExecutionContext = {
      Execution: { Id: executionArn, Name: name, Input: input, StartTime: new Date(startDate).toISOString() },
    };
    const execution = trackedMachine(spec.processor, tracker).run(input as JSONValue, {
      overrides: { taskResourceLocalHandlers: overridesFor(tracker, context, []) },
      context: context as never,
    });
    let ending: { status: "TIMED_OUT" | "ABORTED"; error: Error } | undefined;
    const onAbort = () => {
      ending ??= { status: "ABORTED", error: statesError("States.Aborted", "The Map run failed") };
      execution.abort();
    };
    abortSignal.addEventListener("abort", onAbort, { once: true });
    const timer =
      spec.executionType === "EXPRESS"
        ? setTimeout(() => {
            ending ??= {
              status: "TIMED_OUT",
              error: statesError("States.Timeout", "An Express execution runs at most 5 minutes"),
            };
            execution.abort();
          }, EXPRESS_MAX_DURATION_MS)
        : undefined;
    const base = { executionArn, stateMachineArn, name, input, startDate };
    let outcome: ChildOutcome;
    try {
      const output = await execution.result;
      outcome = { ...base, status: "SUCCEEDED", output, stopDate: Date.now() };
    } catch (error) {
      const e = ending?.error ?? failureOf(error);
      outcome = { ...base, status: ending?.status ?? "FAILED", error: e.name, cause: e.message, stopDate: Date.now() };
    } finally {
      clearTimeout(timer);
      abortSignal.removeEventListener("abort", onAbort);
    }
    sink.push({
      status: outcome.status,
      transitions: tracker.transitions,
      historyEvents: tracker.historyEvents,
      durationMs: outcome.stopDate - startDate,
      maxStatePayloadBytes: tracker.maxStatePayloadBytes,
    });
    return outcome;
  }

  /** Runs one execution of the state machine (StartExecution) to its end. */
  async function execute(start: ExecutionStart): Promise<ExecutionOutcome> {
    const tracker = new ExecutionTracker("STANDARD", mapStateNames);
    const children: ChildExecutionStats[] = [];
    const context: ExecutionContext = {
      Execution: { Id: start.arn, Name: start.name, Input: start.input, StartTime: new Date().toISOString() },
    };
    const execution = trackedMachine(config.definition, tracker).run(start.input as JSONValue, {
      overrides: { taskResourceLocalHandlers: overridesFor(tracker, context, children) },
      context: context as never,
    });
    let result: Omit<ExecutionOutcome, "stats">;
    try {
      result = { status: "succeeded", output: await execution.result };
    } catch (error) {
      const e = failureOf(error);
      result = { status: "failed", error: `${e.name}: ${e.message}` };
    }
    const childTransitions = children.reduce((n, c) => n + c.transitions, 0);
    // Starting each child is one transition of the parent, as AWS bills it; the parent's history records the Map
    // run itself (MapRunStarted/Succeeded and the state's own events).
    const parentTransitions = tracker.transitions + children.length;
    return {
      ...result,
      stats: {
        transitions: parentTransitions + childTransitions,
        parentTransitions,
        children,
        historyEvents: tracker.historyEvents + (children.length > 0 ? 4 : 0),
        maxChildHistoryEvents: Math.max(0, ...children.map((c) => c.historyEvents)),
        retries: tracker.retries,
        maxStatePayloadBytes: Math.max(tracker.maxStatePayloadBytes, ...children.map((c) => c.maxStatePayloadBytes)),
      },
    };
  }

  return { execute };
}

interface ExecutionContext {
  Execution: { Id: string; Name: string; Input: unknown; StartTime: string };
}

/** The error that ended an execution: the engine wraps it in an ExecutionError whose `cause` it is. */
function failureOf(error: unknown): Error {
  const e = error instanceof Error ? error : new Error(String(error));
  return e.cause instanceof Error ? e.cause : e;
}
