import * as z from "zod";
import { accountPostureSchema } from "../domain/account-posture.js";
import { ACTOR_UNKNOWN, describeEvent } from "../domain/event.js";
import {
  batchSummarySchema,
  type EventRef,
  eventRefSchema,
  flowSettingsSchema,
  type InstanceProgress,
  type InstanceResult,
  instanceProgressSchema,
  stepFailureSchema,
  triggerSchema,
} from "../domain/model.js";
import { buildReport, type EventReport, type SnsMessage } from "../report/report.js";
import { type AccountDefaultAlertInput, accountDefaultAlertInputSchema } from "./account-default-alert.js";
import { ledgerDetail } from "./full-detail.js";
import { markdownSafe, plainSafe, toAscii } from "./text-safety.js";

/**
 * An execution started before the work list moved to the ledger kept it in the state: as `batches` (arrays of
 * instances), or, after a second slice, in `instanceLists` (the old KeepInstanceLists). Read as the work list.
 */
function withInstanceLists(raw: unknown): unknown {
  if (typeof raw !== "object" || raw === null || !("instanceLists" in raw)) return raw;
  const { instanceLists, ...rest } = raw as Record<string, unknown>;
  return { ...rest, batches: instanceLists };
}

/** One entry of a Distributed Map's result for a child that failed ("Distributed Map state"; "ResultWriter (Map)"). */
const failedChildSchema = z.object({ Error: z.string(), Cause: z.string().optional(), Input: z.string().optional() });

/**
 * The batches whose child execution failed, by index, with why. AWS puts a failed child's execution record in the
 * Map's result in place of its output; its `Input` (a JSON string) is the child's input, whose `item` carries the
 * batch's own index (never its position: the result's order is not documented).
 */
function failedChildren(entries: readonly unknown[]): Map<number, { Error?: string; Cause?: string }> {
  const failed = new Map<number, { Error?: string; Cause?: string }>();
  for (const entry of entries) {
    // As the Map returned it, or as a later slice kept it (`failedChild`, the ASL's FailedEarlier).
    const kept = (entry as { failedChild?: unknown } | null)?.failedChild;
    const record = failedChildSchema.safeParse(kept ?? entry);
    if (!record.success || record.data.Input === undefined) continue;
    let index: unknown;
    try {
      index = (JSON.parse(record.data.Input) as { item?: { batchIndex?: unknown } } | null)?.item?.batchIndex;
    } catch {
      continue;
    }
    if (typeof index === "number" && Number.isInteger(index)) {
      failed.set(index, {
        Error: record.data.Error,
        ...(record.data.Cause !== undefined ? { Cause: record.data.Cause } : {}),
      });
    }
  }
  return failed;
}

/**
 * What reaches Notify: the event's work list (`batches`), and the results the batches stored (result-store.ts).
 * A batch that stored nothing (its child execution failed, or the Map did) is reported instance by instance as
 * `error`. After a ResolveTargets failure only the raw event is left. The rejected-calls alert is not Notify's any
 * more: CheckRejected publishes it (an execution of the old definition still in its watch window at a deploy fails
 * at AlertRejected, after the new CheckRejected already sent the alert).
 */
export const notifyInputSchema = z.union([
  z.preprocess(
    withInstanceLists,
    z.object({
      event: eventRefSchema,
      trigger: triggerSchema.optional(),
      accountPosture: accountPostureSchema.optional(),
      fleet: z.object({ allowingImdsV1: z.number(), exempt: z.number() }).optional(),
      settings: flowSettingsSchema,
      rejected: z.array(z.object({ value: z.string(), reason: z.string() })),
      problem: z.string().optional(),
      /**
       * What the Map last ran over: pointers (`{batchIndex, instances}`), counts, failed-child records (as the Map
       * returned them, or kept by a later slice as `failedChild`). The instances
       * are in the ledger (work#<batchIndex>). An execution from before that holds arrays of instances here.
       */
      batches: z.array(
        z.union([
          z.looseObject({ batchIndex: z.number().int().min(0) }),
          failedChildSchema.loose(),
          z.looseObject({ failedChild: failedChildSchema.loose() }),
          z.array(instanceProgressSchema),
        ]),
      ),
      targetCount: z.number().int().min(0).optional(),
      /** The last slice's output: one summary per batch (a failed child leaves an error object instead). */
      slice: z.object({ batches: z.array(z.unknown()) }).optional(),
      /** The same, as executions started before the Express slices carry it. */
      batchSummaries: z.array(z.unknown()).optional(),
      mapFailure: stepFailureSchema.optional(),
      /** The event's ledger key (ResolveTargets'): where the batches stored their results. */
      dedupe: z.object({ key: z.string() }).optional(),
      /** State-change path: the deadline the report waited until for the CloudTrail record, and what it found. */
      awaitAttribution: z.object({ deadline: z.string() }).optional(),
      attribution: z
        .object({ done: z.boolean(), record: eventRefSchema.optional(), timedOut: z.boolean().optional() })
        .optional(),
      attributionFailure: stepFailureSchema.optional(),
      /** Set when ClaimInstances could not use the ledger: another signal for these instances may report them too. */
      instanceClaimFailure: stepFailureSchema.optional(),
    }),
  ),
  z.object({ resolveFailure: stepFailureSchema, rawEvent: z.unknown() }),
  accountDefaultAlertInputSchema,
  /** Notify itself failed after its retries (e.g. the report was refused): a minimal message still goes out. */
  z.object({ notifyFailure: stepFailureSchema, event: z.unknown().optional(), rawEvent: z.unknown().optional() }),
]);
export type NotifyInput = z.infer<typeof notifyInputSchema>;
export type NotifyFallbackInput = Extract<NotifyInput, { notifyFailure: unknown }>;

/** The last-resort message when the report itself could not be published: the event, the error, where to look. */
export function fallbackMessage(input: NotifyFallbackInput): SnsMessage {
  const parsedEvent = eventRefSchema.safeParse(input.event);
  const event = parsedEvent.success ? parsedEvent.data : describeEvent(input.rawEvent);
  const text = [
    `imdsv2-guard could not publish its report for ${plainSafe(event.eventName)} ${plainSafe(event.eventId)} (${plainSafe(event.region)}).`,
    `Why: ${plainSafe(failureText(input.notifyFailure))}`,
    "The verdicts are in the child executions of the execution's ForEachBatch Map Run (each FinalizeBatch output) and, unless the ledger failed too, in the event ledger table. The watch for refused IMDSv1 calls after enforcing runs only if Notify booked it before it failed (a schedule in the watch's EventBridge Scheduler group).",
  ].join("\n");
  return {
    Subject: toAscii(`[imdsv2-guard] ERROR: report not published - ${event.eventName} in ${event.region}`).slice(0, 99),
    MessageStructure: "json",
    Message: JSON.stringify({
      default: text,
      https: JSON.stringify({
        version: "1.0",
        source: "custom",
        content: {
          textType: "client-markdown",
          title: "🚨 imdsv2-guard: report not published",
          description: markdownSafe(text),
        },
      }),
    }),
    MessageAttributes: {
      // `alert`, like the refused-calls alert, passes every email filter and goes to Slack by default: this message
      // is the only sign that a report was lost.
      verdict: { DataType: "String", StringValue: "alert" },
      verdicts: { DataType: "String.Array", StringValue: JSON.stringify(["alert"]) },
    },
  };
}

/**
 * Turns whatever the flow reached into one report in which every instance has exactly one verdict: the stored results
 * of each batch, or `error` for every instance of a batch that stored none.
 */
export function reportFromNotifyInput(
  input: Exclude<NotifyInput, AccountDefaultAlertInput | NotifyFallbackInput>,
  stored: ReadonlyMap<number, InstanceResult[]> = new Map(),
  readFailure?: string,
  ledger?: { tableName: string; keptForDays: number },
  work: ReadonlyMap<number, InstanceProgress[]> = new Map(),
): EventReport {
  if ("resolveFailure" in input) {
    return buildReport({
      event: describeEvent(input.rawEvent),
      mode: "enforce",
      results: [],
      rejected: [],
      problem: `The event could not be resolved: ${failureText(input.resolveFailure)}`,
    });
  }
  const entries = input.slice?.batches ?? input.batchSummaries ?? [];
  const inline = inlineResultsByBatch(entries);
  const failed = failedChildren(entries);
  const lists = workListOf(input, work);
  const results: InstanceResult[] = [...lists].flatMap(([index, batch]) => {
    const found = stored.get(index) ?? inline.get(index);
    const byId = new Map((found ?? []).map((r) => [r.instanceId, r]));
    const childFailure = failed.get(index);
    const why = childFailure
      ? `this batch's child execution failed: ${failureText(childFailure)}`
      : input.mapFailure
        ? failureText(input.mapFailure)
        : "this batch's child execution stored no result";
    return batch.map(
      (item): InstanceResult =>
        byId.get(item.instanceId) ?? {
          instanceId: item.instanceId,
          verdict: "error",
          reason: `The flow failed before a verdict: ${why}`,
          warnings: [],
        },
    );
  });
  // Every instance has a verdict or is named as missing: never a report that silently covers fewer instances.
  const listed = [...lists.values()].reduce((n, b) => n + b.length, 0);
  const unlisted = input.targetCount !== undefined && listed < input.targetCount ? input.targetCount - listed : 0;
  const workNotice = unlisted
    ? `${unlisted} of the event's ${input.targetCount} instances are not in this report: their work list could not be read from the event ledger${ledger ? ` (${ledger.tableName})` : ""}.`
    : undefined;
  const attributed = attributedEvent(input);
  const ledgerNotice = readFailure
    ? `The stored verdicts could not be read (${readFailure}); only those returned inline are shown.`
    : undefined;
  const notice = [attributed.notice, ledgerNotice, workNotice, claimNotice(input.instanceClaimFailure)]
    .filter(Boolean)
    .join(" ");
  return buildReport({
    event: attributed.event,
    mode: input.settings.mode,
    results,
    rejected: input.rejected,
    ...(input.problem ? { problem: input.problem } : {}),
    ...(input.trigger ? { trigger: input.trigger } : {}),
    ...(input.accountPosture ? { accountPosture: input.accountPosture } : {}),
    ...(input.fleet ? { fleet: input.fleet } : {}),
    ...(notice ? { notice } : {}),
    // Only when every batch's results are in the ledger: a pointer must never promise detail it does not hold.
    ...(ledger && lists.size > 0 && [...lists.keys()].every((index) => stored.has(index))
      ? { fullDetail: ledgerDetail(ledger.tableName, input.event.eventId, input.event.region, ledger.keptForDays) }
      : {}),
  });
}

type ReportInput = Extract<NotifyInput, { batches: unknown }>;

/** A pointer that still carries its instances: the ledger refused the work list (shared/domain/batch-slices.ts). */
const inlinePointerSchema = z.object({ batchIndex: z.number().int().min(0), inline: z.array(instanceProgressSchema) });

/**
 * Each batch's instances, by batch index, in index order: what the ledger holds (work#<batchIndex>), else what the
 * state still carries (a work list the ledger refused, or an execution from before the ledger held it).
 */
function workListOf(input: ReportInput, loaded: ReadonlyMap<number, InstanceProgress[]>) {
  const lists = new Map<number, InstanceProgress[]>();
  input.batches.forEach((batch, index) => {
    const old = z.array(instanceProgressSchema).safeParse(batch);
    if (old.success) lists.set(index, old.data);
    const carried = inlinePointerSchema.safeParse(batch);
    if (carried.success) lists.set(carried.data.batchIndex, carried.data.inline);
  });
  for (const [index, instances] of loaded) lists.set(index, instances);
  return new Map([...lists].sort(([a], [b]) => a - b));
}

/**
 * A report started from EC2's state-change notification names the actor and launch template of the CloudTrail
 * record when it arrived in time; otherwise it says the actor is unknown and why, and the origin comes from the
 * instance's tags and AMI alone.
 */
function attributedEvent(input: ReportInput): { event: EventRef; notice?: string } {
  if (!input.awaitAttribution) return { event: input.event };
  const record = input.attribution?.record;
  if (record) {
    return {
      event: {
        ...input.event,
        actor: record.actor,
        ...(record.launchTemplate ? { launchTemplate: record.launchTemplate } : {}),
      },
      notice: `Enforced from EC2's state-change notification, before its CloudTrail record arrived; actor and launch template from ${record.eventName} ${record.eventId} at ${record.eventTime}.`,
    };
  }
  if (input.attributionFailure) {
    return {
      event: input.event,
      notice: `${ACTOR_UNKNOWN}: the attribution could not be read (${failureText(input.attributionFailure)}); the origin is from the instance's tags and AMI.`,
    };
  }
  return {
    event: input.event,
    notice: `${ACTOR_UNKNOWN} by ${input.awaitAttribution.deadline}: the origin is from the instance's tags and AMI only.`,
  };
}

function claimNotice(failure: { Error?: string | undefined; Cause?: string | undefined } | undefined) {
  return failure
    ? `The per-instance claim was unavailable (${failureText(failure)}): another signal for these instances may report them too.`
    : undefined;
}

/** Verdicts a batch returned inline because the ledger could not store them. */
function inlineResultsByBatch(summaries: readonly unknown[]): Map<number, InstanceResult[]> {
  const byBatch = new Map<number, InstanceResult[]>();
  for (const summary of summaries) {
    const parsed = batchSummarySchema.safeParse(summary);
    if (!parsed.success || !parsed.data.inline) continue;
    const { passed, others } = parsed.data.inline;
    byBatch.set(parsed.data.batchIndex, [
      ...passed.map(
        (instanceId): InstanceResult => ({
          instanceId,
          verdict: "pass",
          reason: "IMDSv1 refused from inside the instance (details not kept: the event ledger was unavailable).",
          warnings: [],
        }),
      ),
      ...others,
    ]);
  }
  return byBatch;
}

function failureText(failure: { Error?: string | undefined; Cause?: string | undefined }): string {
  let cause = failure.Cause ?? "";
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === "string") cause = parsed.errorMessage;
  } catch {
    // plain text cause
  }
  return `${failure.Error ?? "UnknownError"}${cause ? `: ${cause.slice(0, 400)}` : ""}`;
}
