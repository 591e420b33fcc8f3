import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import FakeTimers from "@sinonjs/fake-timers";
import { StateMachine } from "aws-local-stepfunctions";

/** aws-local-stepfunctions does not export its JSON type; this is the value its task overrides exchange. */
type JSONValue = Parameters<StateMachine["run"]>[0];

import type { AwsSecurityFinding } from "@aws-sdk/client-securityhub";
import { createHandler as createSweepHandler } from "../../functions/sweep/handler.js";
import {
  DEFAULT_EVIDENCE_RETENTION_DAYS,
  DEFAULT_REPROVE_AFTER_DAYS,
  type EvidenceRecord,
  evidenceRecordSchema,
} from "../../shared/domain/evidence.js";
import type { FlowSettings } from "../../shared/domain/model.js";
import type { AccountDefaultAlertInput } from "../../shared/report/account-default-alert.js";
import { ORG_POSTURE_SCHEMA, type OrgPostureReport } from "../../shared/report/org-posture.js";
import type { RejectedCalls } from "../../shared/report/rejected-calls.js";
import {
  type EventReport,
  type MachineReport,
  mergeReportParts,
  parseMachineReport,
} from "../../shared/report/report.js";
import {
  DEFAULT_FLOW_SETTINGS,
  type NotifyConfig,
  type ResolveTargetsConfig,
  type WatchScheduleConfig,
} from "../../shared/runtime/config.js";
import type { OrganizationSweepOutcome, SweepOutcome } from "../../shared/steps/sweep.js";
import { ledgerCallSettled } from "../sim/dynamodb.js";
import { SimAccount, type SimApi, type SimFaults } from "../sim/sim-account.js";
import { deliverAsAws } from "../sim/sim-eventbridge.js";
import { SIM_SPOKE_ROLE_NAME, SimOrganization } from "../sim/sim-organization.js";
import { DEFAULT_WEATHER, SimRandom } from "../sim/sim-weather.js";
import { type MapResultOrder, takeDistributedMaps } from "./distributed-map.js";
import { createExecutor, type ExecutionStats, type TaskOverrides } from "./executions.js";
import { localFunctions } from "./lambda-functions.js";
import {
  type AsyncInvocationRecord,
  functionInvoker,
  type InvokeFunction,
  invokeAsync,
  type LambdaFaults,
  lambdaContext,
  lambdaError,
  SIM_ACCOUNT_ID,
  SIM_REGION,
} from "./lambda-invoke.js";
import type { Scenario } from "./scenario.js";
import { applyWeather, type RunWeather, weatherForSeed } from "./weather.js";

export type { ChildExecutionStats, ExecutionStats } from "./executions.js";

/** The one state machine file. Found by walking up from this module, which works from source and from a bundle. */
export const ASL_PATH = findUp("infra/state-machine.asl.json");

function findUp(relative: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`Cannot find ${relative} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export type { SIM_ACCOUNT_ID, SIM_REGION };
export const GUARD_ROLE_ARN_PREFIX = `arn:aws:sts::${SIM_ACCOUNT_ID}:assumed-role/imdsv2-guard-local-enforce/`;
const STATE_MACHINE_ARN = `arn:aws:states:${SIM_REGION}:${SIM_ACCOUNT_ID}:stateMachine:imdsv2-guard-local`;
const TOPIC_ARN = `arn:aws:sns:${SIM_REGION}:${SIM_ACCOUNT_ID}:imdsv2-guard-local-alerts`;
/** What `loadDefinition` substitutes for `${EventLedgerTableName}`. */
const LEDGER_TABLE_NAME = "imdsv2-guard-local-EventLedgerTableName";
const SCENARIO_EPOCH = Date.parse("2026-11-28T09:00:00Z");

/** A deployed function's ARN, as `loadDefinition` fills the ASL's `${…FunctionArn}` placeholders. */
function localFunctionArn(name: string): string {
  return `arn:aws:lambda:${SIM_REGION}:${SIM_ACCOUNT_ID}:function:imdsv2-guard-local-${name}`;
}

/** The watch's schedule as a local deploy has it: Notify books it, and the runner fires it at its time. */
export const LOCAL_WATCH_SCHEDULE: WatchScheduleConfig = {
  groupName: "imdsv2-guard-local-watch",
  roleArn: `arn:aws:iam::${SIM_ACCOUNT_ID}:role/imdsv2-guard-local-watch-scheduler`,
  targetArn: localFunctionArn("CheckRejected"),
  deadLetterQueueArn: `arn:aws:sqs:${SIM_REGION}:${SIM_ACCOUNT_ID}:imdsv2-guard-local-watch-dead-letters`,
};

/** The local runner judges by what a deploy without overrides would (scenarios may override `settings`). */
export const DEFAULT_SETTINGS: FlowSettings = DEFAULT_FLOW_SETTINGS;

export interface RunOptions {
  faults?: SimFaults;
  lambdaFaults?: LambdaFaults;
  lambdaCrashesAfter?: LambdaFaults;
  /** Crash a function on these invocations right after this AWS call of it took effect (the rest never runs). */
  lambdaCrashesAfterCall?: Partial<Record<string, { api: SimApi; invocations: number[] }>>;
  batchSize?: number;
  /** Deliver these event indexes twice (EventBridge's at-least-once delivery). */
  duplicateDeliveries?: number[];
  /** The sweep sets the account's IMDS default to required, and the guard sets a weakened default back. */
  enforceAccountDefault?: boolean;
  /** Instances per execution the sweep starts. */
  sweepInstancesPerExecution?: number;
  /**
   * Express runs its child workflows at least once: run every task of the batch's child workflow twice with the
   * same input, and go on with the second run's output (the one that saw the first run's side effects).
   */
  duplicateChildSteps?: boolean;
  /**
   * The order in which a Distributed Map run returns its children's results. AWS documents none, so the ASL must
   * not depend on it: `completion` (the order children end in) or `reversed` shows whether it does.
   */
  mapResultOrder?: MapResultOrder;
  /**
   * Express's at-least-once, overlapping: every Express child runs a second time, started this many simulated
   * seconds after the first with the same input, while the first may still run. The Map keeps the first's outcome.
   */
  overlappingChildDuplicatesAfterSeconds?: number;
}

export type RejectedCallsAlert = RejectedCalls & { event: EventReport["event"] };
export type AccountDefaultAlert = Omit<AccountDefaultAlertInput, "alert">;

export interface ExecutionRecord {
  eventIndex: number;
  delivery: number;
  /** The name StartExecution gave it (the intake and the sweep name every execution they start). */
  name?: string;
  status: "succeeded" | "failed";
  output?: unknown;
  error?: string;
  startedAt: number;
  endedAt: number;
  stats: ExecutionStats;
}

export interface FlowRun {
  scenario: Scenario;
  /** The seeded weather the run had (`scenario.weather`), and what it turned on. */
  weather?: { seed: number; knobs: RunWeather };
  executions: ExecutionRecord[];
  /** The machine-readable report of every event, in publish order (a split report's parts merged, at its last). */
  reports: EventReport[];
  /** Alerts about software refused IMDSv1 after the guard enforced (the watch after enforcing). */
  alerts: RejectedCallsAlert[];
  /** Alerts about a weakened account IMDS default (ModifyInstanceMetadataDefaults). */
  accountDefaultAlerts: AccountDefaultAlert[];
  /** Last-resort messages: the report itself could not be published. */
  fallbacks: string[];
  /**
   * Split reports whose parts did not all arrive (`account/region/eventId`, the part indexes seen, of how many): a
   * Notify that failed between parts, before its fallback. Not in `reports`: nobody could read every verdict.
   */
  incompleteReports: { event: string; parts: number[]; of: number }[];
  sweeps: SweepOutcome[];
  /** Organization mode: the organization sweeps' outcomes, one row per account × region. */
  orgSweeps: OrganizationSweepOutcome[];
  /** Organization mode: the posture reports the sweeps published (the machine copy). */
  postureReports: OrgPostureReport[];
  /** Every instance's standing truth at the end of the run: its evidence record in the ledger (issue 21). */
  evidence: EvidenceRecord[];
  /** The findings imported into Security Hub, in every account and region (with the `securityHub` setting). */
  findings: AwsSecurityFinding[];
  /** The simulated account (single-account mode), or the hub's (organization mode: ledger, topic, executions). */
  sim: SimAccount;
  /** Organization mode: the simulated organization, its member accounts and the AssumeRole calls made. */
  org?: SimOrganization;
  lambdaInvocations: Record<string, number>;
  /**
   * Every asynchronous invocation of a function (Lambda's retries included), in the order they ended: EventBridge's
   * of the intake (with the delivery it carried), and the watch after enforcing, which EventBridge Scheduler invokes
   * when a schedule fires. Each says its attempts, its result, and whether it ended in the dead-letter queue.
   */
  asyncInvocations: (AsyncInvocationRecord & { eventIndex?: number; delivery?: number })[];
  /**
   * Scenario events AWS would not have delivered (local/sim/sim-eventbridge.ts): over EventBridge's entry size, with
   * why. A CloudTrail record with an oversized field is delivered truncated, and listed in `truncatedDeliveries`.
   */
  refusedDeliveries: { eventIndex: number; reason: string }[];
  truncatedDeliveries: { eventIndex: number; fields: string[] }[];
  /** How the ASL runs its Distributed Map children, which decides how they are billed. */
  childExecutionType: "STANDARD" | "EXPRESS";
  simulatedSeconds: number;
  /** Simulated seconds from the start to the last report (verdicts) published, before any watch after enforcing. */
  lastReportSeconds: number;
  wallMilliseconds: number;
}

/** The ASL with its deploy-time placeholders filled, as CloudFormation's DefinitionSubstitutions would. */
export function loadDefinition(): Record<string, unknown> {
  const text = readFileSync(ASL_PATH, "utf8").replace(/\$\{(\w+)\}/g, (_, name: string) =>
    name.endsWith("FunctionArn") ? localFunctionArn(name.replace(/FunctionArn$/, "")) : `imdsv2-guard-local-${name}`,
  );
  return JSON.parse(text) as Record<string, unknown>;
}

interface StateDef {
  Type: string;
  Resource?: string;
  ItemProcessor?: {
    States: Record<string, StateDef>;
    ProcessorConfig?: { Mode?: string; ExecutionType?: string };
  };
}

/** Task state name → placeholder of the function it invokes, across the parent and the Map's processor. */
function taskFunctions(definition: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (states: Record<string, StateDef>) => {
    for (const [name, state] of Object.entries(states)) {
      const fn = state.Resource?.match(/:function:imdsv2-guard-local-(\w+)$/)?.[1];
      if (state.Type === "Task" && fn) out.set(name, `${fn}FunctionArn`);
      if (state.ItemProcessor) visit(state.ItemProcessor.States);
    }
  };
  visit(definition.States as Record<string, StateDef>);
  return out;
}

const TASK_TOKEN_PATH = "$$.Task.Token";
/** Where the runner carries a token task's TimeoutSecondsPath value (see takeTaskTokenTasks). */
const TIMEOUT_FIELD = "runnerTimeoutSeconds";

/**
 * The `.waitForTaskToken` Lambda tasks (state name → the function's placeholder and the Payload field that carries
 * the token). aws-local-stepfunctions has no `$$.Task.Token`, so the field is taken out of the definition and the
 * runner hands the function a token of the simulated account, which SendTaskSuccess then resumes.
 */
function takeTaskTokenTasks(definition: Record<string, unknown>): Map<string, { placeholder: string; field: string }> {
  const out = new Map<string, { placeholder: string; field: string }>();
  type TokenTask = StateDef & {
    Parameters?: { FunctionName?: string; Payload?: Record<string, unknown> };
    TimeoutSeconds?: number;
    TimeoutSecondsPath?: string;
  };
  for (const [name, state] of Object.entries(definition.States as Record<string, TokenTask>)) {
    if (state.Type !== "Task" || !state.Resource?.endsWith(".waitForTaskToken")) continue;
    const fn = state.Parameters?.FunctionName?.match(/:function:imdsv2-guard-local-(\w+)$/)?.[1];
    const payload = state.Parameters?.Payload ?? {};
    const key = Object.keys(payload).find((k) => payload[k] === TASK_TOKEN_PATH);
    if (!fn || !key) throw new Error(`${name} waits for a task token but passes none to a guard function`);
    delete payload[key];
    // AWS reads TimeoutSecondsPath from the state's input; aws-local-stepfunctions reads it from the Parameters'
    // output (and defaults a task to 60 s). The runner moves it into the payload, where the override applies it.
    if (state.TimeoutSecondsPath) {
      payload[`${TIMEOUT_FIELD}.$`] = state.TimeoutSecondsPath;
      delete state.TimeoutSecondsPath;
      // Longer than any wait, and within setTimeout's 24.8-day limit (a longer delay fires at once).
      state.TimeoutSeconds = 20 * 86_400;
    }
    out.set(name, { placeholder: `${fn}FunctionArn`, field: key.replace(/\.\$$/, "") });
  }
  return out;
}

/** The Task states of the Map's child workflow. */
function childTaskStates(definition: Record<string, unknown>): string[] {
  return Object.values(definition.States as Record<string, StateDef>).flatMap((s) =>
    Object.entries(s.ItemProcessor?.States ?? {})
      .filter(([, child]) => child.Type === "Task")
      .map(([name]) => name),
  );
}

/** At-least-once delivery of each step: the same input twice, the second output kept. */
function runTwice(overrides: TaskOverrides, stateNames: string[]): void {
  for (const name of stateNames) {
    const once = overrides[name];
    if (!once) throw new Error(`No local handler for ${name}, so it cannot be run twice`);
    overrides[name] = async (input) => {
      await once(input);
      return once(input);
    };
  }
}

/** The ExecutionType of the (one) Distributed Map's children. */
function childExecutionType(definition: Record<string, unknown>): "STANDARD" | "EXPRESS" {
  const states = Object.values(definition.States as Record<string, StateDef>);
  const map = states.find((s) => s.ItemProcessor?.ProcessorConfig?.Mode === "DISTRIBUTED");
  return map?.ItemProcessor?.ProcessorConfig?.ExecutionType === "EXPRESS" ? "EXPRESS" : "STANDARD";
}

const RETRY_COUNT_PATH = "$$.State.RetryCount";

/**
 * aws-local-stepfunctions has no `$$.State` in its context object, so a Parameters field reading
 * `$$.State.RetryCount` would fail the execution. The runner takes such fields out of the definition (state name →
 * field) and supplies them itself, from the execution's own count of retries since the state's entry (executions.ts).
 */
function takeRetryCountParameters(definition: Record<string, unknown>): Map<string, string> {
  const fields = new Map<string, string>();
  const visit = (states: Record<string, StateDef & { Parameters?: Record<string, unknown> }>) => {
    for (const [name, state] of Object.entries(states)) {
      for (const [key, value] of Object.entries(state.Parameters ?? {})) {
        if (value === RETRY_COUNT_PATH && state.Parameters) {
          delete state.Parameters[key];
          fields.set(name, key.replace(/\.\$$/, ""));
        }
      }
      if (state.ItemProcessor) visit(state.ItemProcessor.States);
    }
  };
  visit(definition.States as Record<string, StateDef>);
  return fields;
}

/**
 * Runs a scenario end to end: the real ASL file in aws-local-stepfunctions, the real handlers, the simulated account.
 * Simulated time is discrete-event: timers are faked, and whenever nothing is running (no promise pending work, no
 * probe in `sh`) the clock jumps to the next timer — a Wait state, a retry's backoff, the next event's delivery.
 * A scenario that spans hours of AWS time runs in seconds, and timings are exact and repeatable.
 */
export async function runFlow(requested: Scenario, requestedOptions: RunOptions = {}): Promise<FlowRun> {
  // Weather changes the scenario's knobs and the run's faults before anything starts, so a seed replays exactly.
  const weather = requested.weather
    ? { seed: requested.weather.seed, knobs: weatherForSeed(requested, requested.weather.seed) }
    : undefined;
  const { scenario, options } = weather
    ? applyWeather(requested, weather.knobs, requestedOptions, weather.seed)
    : { scenario: requested, options: requestedOptions };
  const realSetImmediate = globalThis.setImmediate;
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  const wallStart = performance.now();
  const clock = FakeTimers.install({
    now: SCENARIO_EPOCH,
    toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"],
  });
  // Chance is seeded like time is faked: the intake's and the sweep's full-jitter retries (shared/runtime/retry.ts)
  // and the SDK's own retry jitter draw from Math.random, and a seed must replay to the millisecond.
  const realRandom = Math.random;
  const chance = new SimRandom(weather?.seed ?? DEFAULT_WEATHER.seed);
  Math.random = () => chance.next();
  const org = scenario.organization
    ? new SimOrganization(scenario.organization, scenario.instances, options.faults, scenario)
    : undefined;
  const sim = org ? org.hub : new SimAccount(scenario.instances, options.faults, scenario);
  const world = org ?? sim;
  world.install();
  const lambdaInvocations: Record<string, number> = {};
  try {
    const { sweepInstancesPerExecution: perExecution, ...flowSettings } = scenario.settings;
    const settings: FlowSettings = { ...DEFAULT_SETTINGS, ...flowSettings };
    const resolveTargets: ResolveTargetsConfig = {
      settings,
      guardRoleArnPrefix: org
        ? `arn:aws:sts::${org.spec.hubAccount}:assumed-role/imdsv2-guard-local-enforce/`
        : GUARD_ROLE_ARN_PREFIX,
      batchSize: options.batchSize ?? 50,
      attributionTimeoutSeconds: scenario.attributionTimeoutSeconds,
      ...(org
        ? {
            organization: {
              id: org.spec.id,
              spokeRoleName: SIM_SPOKE_ROLE_NAME,
              allowedAccounts: org.spec.allowedAccounts,
              allowedOus: [],
            },
          }
        : {}),
    };
    const notify: NotifyConfig = {
      topicArn: TOPIC_ARN,
      slackVerdicts: ["fail", "error", "unverified"],
      watch: LOCAL_WATCH_SCHEDULE,
    };
    const functions = localFunctions({
      resolveTargets,
      notify,
      ledgerTableName: LEDGER_TABLE_NAME,
      stateMachineArn: STATE_MACHINE_ARN,
      guardAccountDefault: { mode: settings.mode, enforceAccountDefault: options.enforceAccountDefault ?? false },
      evidenceRetentionDays: DEFAULT_EVIDENCE_RETENTION_DAYS,
    });
    const definition = loadDefinition();
    const retryCountFields = takeRetryCountParameters(definition);
    const invoke = functionInvoker(
      Object.fromEntries(Object.entries(functions).map(([arn, fn]) => [arn.replace(/FunctionArn$/, ""), fn])),
      lambdaInvocations,
      {
        before: options.lambdaFaults ?? {},
        after: options.lambdaCrashesAfter ?? {},
        afterCall: options.lambdaCrashesAfterCall ?? {},
      },
    );
    const overrides = buildTaskOverrides(definition, invoke, sim);
    // A step Express runs again is not a retry: both runs see the RetryCount of the state's entry.
    if (options.duplicateChildSteps) runTwice(overrides, childTaskStates(definition));
    const executionType = childExecutionType(definition);
    const maps = takeDistributedMaps(definition);
    // Validated once, as CreateStateMachine would; every execution then runs this copy.
    new StateMachine(definition as never);
    const executor = createExecutor({
      definition,
      maps,
      overrides,
      retryCountFields,
      stateMachineArn: STATE_MACHINE_ARN,
      ...(options.mapResultOrder ? { mapResultOrder: options.mapResultOrder } : {}),
      ...(options.overlappingChildDuplicatesAfterSeconds !== undefined
        ? { overlappingDuplicateAfterMs: options.overlappingChildDuplicatesAfterSeconds * 1000 }
        : {}),
      // A duplicate still running is work under way: the run waits for it as for a delivery.
      background: (work) => track(work),
    });

    const executions: ExecutionRecord[] = [];
    const asyncInvocations: FlowRun["asyncInvocations"] = [];
    const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
    const sweeps: SweepOutcome[] = [];
    const orgSweeps: OrganizationSweepOutcome[] = [];
    const deliveries: { eventIndex: number; delivery: number; at: number }[] = [];
    const refusedDeliveries: FlowRun["refusedDeliveries"] = [];
    const truncatedDeliveries: FlowRun["truncatedDeliveries"] = [];
    scenario.events.forEach((event, i) => {
      const at = (i * scenario.eventSpacingSeconds + eventDelaySeconds(event)) * 1000;
      deliveries.push({ eventIndex: i, delivery: 1, at });
      if (options.duplicateDeliveries?.includes(i)) deliveries.push({ eventIndex: i, delivery: 2, at: at + 1500 });
    });
    // Work not started yet (scheduled deliveries and sweeps) and work under way: the run ends when both are zero.
    let scheduled = deliveries.length + scenario.sweepAtSeconds.length;
    let inFlight = 0;
    const track = (work: Promise<unknown>) => {
      inFlight++;
      void work.finally(() => {
        inFlight--;
      });
    };
    // EventBridge Scheduler: at a schedule's time, Lambda's asynchronous invocation of its target with its input.
    // Counted as scheduled work from its creation, so the run waits for the watch as it waits for a delivery.
    sim.onCreateSchedule = (schedule) => {
      scheduled++;
      const functionName = schedule.input.Target?.Arn?.match(/:function:imdsv2-guard-local-(\w+)$/)?.[1];
      setTimeout(
        () => {
          scheduled--;
          if (!functionName) throw new Error(`The local runner has no function ${schedule.input.Target?.Arn}`);
          const payload = JSON.parse(schedule.input.Target?.Input ?? "{}") as unknown;
          track(
            invokeAsync(invoke, functionName, payload, sleep).then((record) => {
              asyncInvocations.push(record);
              sim.completeSchedule(schedule);
            }),
          );
        },
        Math.max(0, schedule.fireAt - Date.now()),
      );
    };
    // The intake's and the sweep's StartExecution calls start executions of the same machine, as in AWS.
    sim.onStartExecution = (name, input) => {
      track(execute(executor, input, { eventIndex: -1, delivery: 1, name }, executions));
    };
    const sweepHandler = createSweepHandler({
      stateMachineArn: STATE_MACHINE_ARN,
      mode: settings.mode,
      exemptTagKey: settings.exemptTagKey,
      exemptUntilTagKey: settings.exemptUntilTagKey,
      enforceAccountDefault: options.enforceAccountDefault ?? false,
      instancesPerExecution: options.sweepInstancesPerExecution ?? perExecution ?? 500,
      account: org?.spec.hubAccount ?? SIM_ACCOUNT_ID,
      region: org?.spec.hubRegion ?? SIM_REGION,
      ...(settings.securityHub ? { securityHub: true } : {}),
      evidence: {
        tableName: LEDGER_TABLE_NAME,
        retentionDays: DEFAULT_EVIDENCE_RETENTION_DAYS,
        reproveAfterDays: DEFAULT_REPROVE_AFTER_DAYS,
      },
      ...(org
        ? {
            organization: {
              id: org.spec.id,
              spokeRoleName: SIM_SPOKE_ROLE_NAME,
              allowedAccounts: org.spec.allowedAccounts,
              allowedOus: [],
              // Every region any account of the scenario has: an account without one of them is swept there too.
              regions: [...new Set(org.spec.accounts.flatMap((a) => a.regions))],
              concurrency: 4,
              topics: notify,
            },
          }
        : {}),
    });
    scenario.sweepAtSeconds.forEach((at, i) => {
      setTimeout(() => {
        scheduled--;
        // The scheduled event's time is the schedule's, so a retried run (same event) keeps its time.
        const scheduledEvent = {
          source: "aws.events",
          "detail-type": "Scheduled Event",
          time: new Date(SCENARIO_EPOCH + at * 1000).toISOString(),
        };
        track(
          sweepHandler(scheduledEvent, lambdaContext("Sweep", i + 1)).then((o) =>
            "organization" in o ? orgSweeps.push(o) : sweeps.push(o as SweepOutcome),
          ),
        );
      }, at * 1000);
    });
    for (const d of deliveries) {
      setTimeout(() => {
        scheduled--;
        const delivery = deliverAsAws(asDelivered(scenario.events[d.eventIndex]));
        if ("refused" in delivery) {
          if (d.delivery === 1) refusedDeliveries.push({ eventIndex: d.eventIndex, reason: delivery.refused });
          return;
        }
        const event = delivery.event;
        if (d.delivery === 1 && delivery.truncated.length) {
          truncatedDeliveries.push({ eventIndex: d.eventIndex, fields: delivery.truncated });
        }
        if (d.delivery === 1) world.applyRecordedCall(event);
        // EventBridge invokes the intake asynchronously; it starts the execution, if the event needs one.
        track(
          invokeAsync(invoke, "AdmitEvent", event, sleep).then((record) =>
            asyncInvocations.push({ ...record, eventIndex: d.eventIndex, delivery: d.delivery }),
          ),
        );
      }, d.at);
    }

    // The discrete-event loop.
    let idleRounds = 0;
    for (;;) {
      await new Promise((r) => realSetImmediate(r));
      if (scheduled === 0 && inFlight === 0) break;
      if (world.realWorkInFlight > 0) {
        // A ledger call ends in well under a millisecond, a probe in sh in tens: wake at whichever comes first.
        let timer: ReturnType<typeof realSetTimeout> | undefined;
        await Promise.race([ledgerCallSettled(), new Promise((r) => (timer = realSetTimeout(r, 2)))]);
        realClearTimeout(timer);
        continue;
      }
      // Two quiet turns of the event loop: every promise chain that could still run without a timer has run.
      idleRounds++;
      if (idleRounds < 2) continue;
      idleRounds = 0;
      if (clock.countTimers() === 0) {
        await new Promise((r) => realSetTimeout(r, 1));
        continue;
      }
      clock.next();
    }
    const reports: EventReport[] = [];
    const alerts: RejectedCallsAlert[] = [];
    const accountDefaultAlerts: AccountDefaultAlert[] = [];
    const fallbacks: string[] = [];
    const incompleteReports: FlowRun["incompleteReports"] = [];
    const postureReports: OrgPostureReport[] = [];
    let lastReportAt = SCENARIO_EPOCH;
    // A report too large for one message comes in parts (shared/report snsMessages): one report per event once its
    // last part is in. A part seen again before then (a retried Notify publishes every part again) replaces its copy.
    const openParts = new Map<string, Map<number, MachineReport>>();
    for (const p of sim.published) {
      const message = JSON.parse(p.input.Message ?? "{}") as { sqs?: string; default?: string };
      const sqs = message.sqs ?? "{}";
      const schema = (JSON.parse(sqs) as { schema?: string }).schema;
      if (message.sqs === undefined) {
        // The last-resort message (NotifyFallback): text only.
        fallbacks.push(message.default ?? "");
      } else if (schema === "imdsv2-guard.rejected-calls.v1") {
        alerts.push(JSON.parse(sqs) as RejectedCallsAlert);
      } else if (schema === ORG_POSTURE_SCHEMA) {
        postureReports.push(JSON.parse(sqs) as OrgPostureReport);
      } else if (schema === "imdsv2-guard.account-default.v1") {
        accountDefaultAlerts.push(JSON.parse(sqs) as AccountDefaultAlert);
      } else {
        const machine = parseMachineReport(sqs);
        if (!machine.part) {
          reports.push(machine);
          lastReportAt = Math.max(lastReportAt, p.at);
          continue;
        }
        const key = `${machine.event.account}/${machine.event.region}/${machine.event.eventId}`;
        const parts = openParts.get(key) ?? new Map<number, MachineReport>();
        parts.set(machine.part.index, machine);
        openParts.set(key, parts);
        if (parts.size === machine.part.of) {
          reports.push(mergeReportParts([...parts.values()]));
          openParts.delete(key);
          lastReportAt = Math.max(lastReportAt, p.at);
        }
      }
    }
    for (const [key, parts] of openParts) {
      const of = [...parts.values()][0]?.part?.of ?? 0;
      incompleteReports.push({ event: key, parts: [...parts.keys()].sort((a, b) => a - b), of });
    }
    const evidence = (await sim.ledgerRecords("evidence#", "record"))
      .flatMap((text) => {
        const parsed = evidenceRecordSchema.safeParse(JSON.parse(text));
        return parsed.success ? [parsed.data] : [];
      })
      .sort((a, b) => `${a.account}${a.region}${a.instanceId}`.localeCompare(`${b.account}${b.region}${b.instanceId}`));
    const findings = [sim, ...(org?.memberAccounts().map((m) => m.sim) ?? [])].flatMap((s) => s.securityHub.findings);
    return {
      scenario,
      ...(weather ? { weather } : {}),
      executions: executions.sort((a, b) => a.startedAt - b.startedAt),
      evidence,
      findings,
      reports,
      alerts,
      accountDefaultAlerts,
      fallbacks,
      incompleteReports,
      sweeps,
      orgSweeps,
      postureReports,
      sim,
      ...(org ? { org } : {}),
      lambdaInvocations,
      asyncInvocations,
      refusedDeliveries,
      truncatedDeliveries,
      childExecutionType: executionType,
      simulatedSeconds: (Date.now() - SCENARIO_EPOCH) / 1000,
      lastReportSeconds: (lastReportAt - SCENARIO_EPOCH) / 1000,
      wallMilliseconds: performance.now() - wallStart,
    };
  } finally {
    world.restore();
    clock.uninstall();
    Math.random = realRandom;
  }
}

function buildTaskOverrides(
  definition: Record<string, unknown>,
  invoke: InvokeFunction,
  sim: SimAccount,
): TaskOverrides {
  const overrides: TaskOverrides = {};
  for (const [stateName, placeholder] of taskFunctions(definition)) {
    const functionName = placeholder.replace(/FunctionArn$/, "");
    overrides[stateName] = async (input) => (await invoke(functionName, input)) as JSONValue;
  }
  // lambda:invoke.waitForTaskToken: the function gets a token and returns; the task ends when someone sends it back.
  let tokens = 0;
  for (const [stateName, { placeholder, field }] of takeTaskTokenTasks(definition)) {
    const functionName = placeholder.replace(/FunctionArn$/, "");
    overrides[stateName] = async (input) => {
      const token = `sim-task-token-${++tokens}`;
      const resumed = sim.openTaskToken(token);
      const { [TIMEOUT_FIELD]: timeoutSeconds, ...payload } =
        (input as { Payload?: Record<string, unknown> }).Payload ?? {};
      await invoke(functionName, { ...payload, [field]: token });
      if (typeof timeoutSeconds !== "number") return (await resumed) as JSONValue;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(lambdaError("States.Timeout", "The task timed out")), timeoutSeconds * 1000);
      });
      try {
        return (await Promise.race([resumed, timedOut])) as JSONValue;
      } finally {
        clearTimeout(timer);
      }
    };
  }
  // The state machine's direct DynamoDB calls (StoreWorkList's putItem) reach the same simulated ledger as the
  // functions' SDK calls, with its faults; errors come back named as Step Functions names them.
  const ledgerCall = (api: "PutItem" | "GetItem") => async (input: JSONValue) => {
    try {
      return JSON.parse(JSON.stringify(await sim.handle(api, input))) as JSONValue;
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      throw lambdaError(`DynamoDB.${e.name}`, e.message);
    }
  };
  overrides.StoreWorkItem = ledgerCall("PutItem");
  return overrides;
}

/**
 * `eventDelaySeconds` on an event entry delays that one delivery, so a scenario can deliver EC2's state-change
 * notification before, or without, the CloudTrail record. It is the scenario's, not the event's: it is not delivered.
 */
function eventDelaySeconds(event: unknown): number {
  const delay = (event as { eventDelaySeconds?: unknown } | null)?.eventDelaySeconds;
  return typeof delay === "number" && delay >= 0 ? delay : 0;
}

function asDelivered(event: unknown): unknown {
  if (typeof event !== "object" || event === null || !("eventDelaySeconds" in event)) return event;
  const { eventDelaySeconds: _delay, ...delivered } = event as Record<string, unknown>;
  return delivered;
}

async function execute(
  executor: ReturnType<typeof createExecutor>,
  event: unknown,
  delivery: { eventIndex: number; delivery: number; name?: string },
  sink: ExecutionRecord[],
): Promise<void> {
  const startedAt = Date.now();
  const name = delivery.name ?? `event-${delivery.eventIndex}-delivery-${delivery.delivery}`;
  const outcome = await executor.execute({
    name,
    arn: `arn:aws:states:${SIM_REGION}:${SIM_ACCOUNT_ID}:execution:imdsv2-guard-local:${name}`,
    input: event,
  });
  sink.push({ ...delivery, ...outcome, startedAt, endedAt: Date.now() });
}
