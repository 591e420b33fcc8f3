import { StateMachine } from "aws-local-stepfunctions";
import { statesError, terminalError } from "./aws-quotas.js";

/**
 * A Distributed Map as AWS runs it, which aws-local-stepfunctions 3.0.0 does not: it runs a Map's iterations inline
 * with `Promise.all`, so one failed iteration fails the Map, and iterations share the parent's context object.
 *
 * `takeDistributedMaps` replaces each DISTRIBUTED Map of the parent by a Task state that keeps the Map's own fields
 * the engine applies to any Task (InputPath, ResultSelector, ResultPath, OutputPath, Retry, Catch); the runner's
 * override of that Task is `runMapRun`, which applies the rest, each as the AWS page named says:
 *
 * | Behaviour | AWS page |
 * | --- | --- |
 * | ItemsPath, ItemSelector with `$$.Map.Item.Index` / `$$.Map.Item.Value` | "ItemsPath (Map)"; "ItemSelector (Map)" |
 * | Each item runs as its own child execution: own `$$.Execution`, own history, own duration | "Distributed Map state" |
 * | MaxConcurrency (0 or absent: up to 10,000 children at once) | "Distributed Map state" |
 * | ToleratedFailurePercentage / ToleratedFailureCount: under them a failed child does not fail the Map; over them the Map fails with `States.ExceedToleratedFailureThreshold` | "Distributed Map state"; "Handling errors in Step Functions workflows" |
 * | A failed child's entry in the Map's result is its execution record (Error, Cause, ExecutionArn, Input as a string, Name, StartDate, StopDate, StateMachineArn, Status), not an output | "ResultWriter (Map)": "If a child workflow execution fails, Step Functions returns its execution result unchanged", as with `Transformation: NONE` |
 * | No order of results is documented: the runner can return them in completion order or reversed (`MapResultOrder`) | (none found; the ASL must not rely on it) |
 */
export interface DistributedMapSpec {
  stateName: string;
  /** The child workflow: the ItemProcessor's StartAt and States. */
  processor: Record<string, unknown>;
  executionType: "STANDARD" | "EXPRESS";
  itemsPath?: string;
  itemSelector?: Record<string, unknown>;
  maxConcurrency: number;
  toleratedFailurePercentage?: number;
  toleratedFailureCount?: number;
}

/** How the runner orders a Map run's results: as the items (what the engine does), or otherwise. */
export type MapResultOrder = "items" | "completion" | "reversed";

/** AWS's ceiling on a Distributed Map's concurrent children, and its default ("Distributed Map state"). */
const MAX_CHILD_CONCURRENCY = 10_000;
/** Longer than any run, within setTimeout's 24.8-day limit: the Map itself has no timeout in AWS. */
const MAP_TASK_TIMEOUT_SECONDS = 20 * 86_400;
/** The Task's Resource in the engine's copy; the runner's override runs it, so it never reaches AWS. */
const MAP_RUN_RESOURCE = "arn:aws:states:::local:distributedMapRun";
/** The fields of a Map that a Task has too: the engine applies them to the Map run's result. */
const TASK_FIELDS = [
  "Comment",
  "InputPath",
  "OutputPath",
  "ResultSelector",
  "ResultPath",
  "Retry",
  "Catch",
  "Next",
  "End",
];
/** Distributed Map fields the local runner does not emulate: refused, so a definition using one fails loudly. */
const UNSUPPORTED = [
  "ItemReader",
  "ItemBatcher",
  "ResultWriter",
  "MaxConcurrencyPath",
  "ToleratedFailurePercentagePath",
  "ToleratedFailureCountPath",
  "Items",
];

interface MapState {
  Type: string;
  ItemProcessor?: { ProcessorConfig?: { Mode?: string; ExecutionType?: string }; StartAt?: string; States?: unknown };
  ItemsPath?: string;
  ItemSelector?: Record<string, unknown>;
  Parameters?: Record<string, unknown>;
  MaxConcurrency?: number;
  ToleratedFailurePercentage?: number;
  ToleratedFailureCount?: number;
  [field: string]: unknown;
}

/**
 * Takes the parent's DISTRIBUTED Map states out of the definition (each becomes a Task the runner overrides) and
 * returns them by state name. A Distributed Map nested in a child workflow is refused.
 */
export function takeDistributedMaps(definition: Record<string, unknown>): Map<string, DistributedMapSpec> {
  const states = definition.States as Record<string, MapState>;
  const out = new Map<string, DistributedMapSpec>();
  for (const [name, state] of Object.entries(states)) {
    if (state.Type !== "Map" || state.ItemProcessor?.ProcessorConfig?.Mode !== "DISTRIBUTED") continue;
    const unsupported = UNSUPPORTED.filter((field) => field in state);
    if (unsupported.length > 0) {
      throw new Error(`The local runner does not emulate ${unsupported.join(", ")} of Distributed Map ${name}`);
    }
    const { ProcessorConfig, ...processor } = state.ItemProcessor;
    if (JSON.stringify(processor).includes('"DISTRIBUTED"')) {
      throw new Error(`The local runner does not run a Distributed Map inside Distributed Map ${name}`);
    }
    const selector = state.ItemSelector ?? state.Parameters;
    out.set(name, {
      stateName: name,
      processor,
      executionType: ProcessorConfig?.ExecutionType === "EXPRESS" ? "EXPRESS" : "STANDARD",
      ...(state.ItemsPath ? { itemsPath: state.ItemsPath } : {}),
      ...(selector ? { itemSelector: selector } : {}),
      maxConcurrency: state.MaxConcurrency && state.MaxConcurrency > 0 ? state.MaxConcurrency : MAX_CHILD_CONCURRENCY,
      ...(state.ToleratedFailurePercentage !== undefined
        ? { toleratedFailurePercentage: state.ToleratedFailurePercentage }
        : {}),
      ...(state.ToleratedFailureCount !== undefined ? { toleratedFailureCount: state.ToleratedFailureCount } : {}),
    });
    const task: Record<string, unknown> = {
      Type: "Task",
      Resource: MAP_RUN_RESOURCE,
      TimeoutSeconds: MAP_TASK_TIMEOUT_SECONDS,
    };
    for (const field of TASK_FIELDS) if (field in state) task[field] = state[field];
    states[name] = task as MapState;
  }
  return out;
}

/** How one child execution ended, as DescribeExecution would show it. */
export interface ChildOutcome {
  status: "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";
  output?: unknown;
  error?: string;
  cause?: string;
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: unknown;
  startDate: number;
  stopDate: number;
}

/** Starts one child execution of the Map run with this input; `abortSignal` stops it when the Map run fails. */
export type StartChild = (input: unknown, index: number, abortSignal: AbortSignal) => Promise<ChildOutcome>;

/**
 * The failed child's entry in the Map's result, as AWS returns it (the `Transformation: NONE` shape of "ResultWriter
 * (Map)", which a failed child gets whatever the transformation): the input as a JSON string, no output.
 */
export function failedChildRecord(child: ChildOutcome): Record<string, unknown> {
  return {
    Cause: child.cause ?? "",
    Error: child.error ?? "",
    ExecutionArn: child.executionArn,
    Input: JSON.stringify(child.input),
    InputDetails: { Included: true },
    Name: child.name,
    StartDate: new Date(child.startDate).toISOString(),
    StateMachineArn: child.stateMachineArn,
    Status: child.status,
    StopDate: new Date(child.stopDate).toISOString(),
  };
}

/**
 * Evaluates a payload template (ItemSelector, ItemsPath) with the engine's own JSONPath and intrinsic functions: a
 * one-state Pass machine whose Parameters are the template. `$$.Execution.Input` is the parent's (a first Pass state
 * puts the Map's input in place, so the parent's input can be the run's).
 */
export async function evaluateTemplate(
  template: Record<string, unknown>,
  input: unknown,
  context: { Execution: { Input: unknown } & Record<string, unknown>; Map?: unknown },
): Promise<unknown> {
  const readsExecutionInput = JSON.stringify(template).includes("$$.Execution.Input");
  const definition = readsExecutionInput
    ? {
        StartAt: "Input",
        States: {
          Input: { Type: "Pass", Result: input, Next: "Template" },
          Template: { Type: "Pass", Parameters: template, End: true },
        },
      }
    : { StartAt: "Template", States: { Template: { Type: "Pass", Parameters: template, End: true } } };
  const machine = new StateMachine(definition as never, { validationOptions: { noValidate: true } });
  const runInput = readsExecutionInput ? context.Execution.Input : input;
  return machine.run(runInput as never, { context: context as never }).result;
}

/**
 * One Map run: every item as its own child execution, at most `maxConcurrency` at once, failures counted against
 * the tolerated threshold. Resolves with the results (a failed child's record in its place), or rejects with
 * `States.ExceedToleratedFailureThreshold` once failures pass the threshold, stopping the children still running.
 */
export async function runMapRun(
  spec: DistributedMapSpec,
  input: unknown,
  context: { Execution: { Input: unknown } & Record<string, unknown> },
  startChild: StartChild,
  order: MapResultOrder = "items",
): Promise<unknown[]> {
  const items = spec.itemsPath
    ? ((await evaluateTemplate({ "items.$": spec.itemsPath }, input, context)) as { items: unknown }).items
    : input;
  if (!Array.isArray(items)) {
    throw terminalError("States.Runtime", `The items of Map ${spec.stateName} are not an array`);
  }
  const results: unknown[] = new Array(items.length);
  const completed: number[] = [];
  const abort = new AbortController();
  let failures = 0;
  let failure: Error | undefined;
  let next = 0;
  const exceeds = (failed: number) => {
    const { toleratedFailureCount: count, toleratedFailurePercentage: percentage } = spec;
    if (count === undefined && percentage === undefined) return failed > 0;
    return (
      (count !== undefined && failed > count) ||
      (percentage !== undefined && (failed / items.length) * 100 > percentage)
    );
  };
  const worker = async () => {
    while (next < items.length && !failure) {
      const index = next++;
      const value = items[index] as unknown;
      const childInput = spec.itemSelector
        ? await evaluateTemplate(spec.itemSelector, input, {
            ...context,
            Map: { Item: { Index: index, Value: value } },
          })
        : value;
      const child = await startChild(childInput, index, abort.signal);
      completed.push(index);
      if (child.status === "SUCCEEDED") {
        results[index] = child.output;
        continue;
      }
      if (child.status === "ABORTED") continue;
      failures++;
      results[index] = failedChildRecord(child);
      if (!failure && exceeds(failures)) {
        failure = statesError(
          "States.ExceedToleratedFailureThreshold",
          `${failures} of ${items.length} child executions of Map ${spec.stateName} failed, over the tolerated failure threshold`,
        );
        abort.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(spec.maxConcurrency, items.length) }, worker));
  if (failure) throw failure;
  if (order === "completion") return completed.map((i) => results[i]);
  if (order === "reversed") return [...results].reverse();
  return results;
}
