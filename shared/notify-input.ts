import { z } from "zod";
import { accountPostureSchema } from "./account-posture.js";
import {
  eventRefSchema,
  flowSettingsSchema,
  type InstanceResult,
  instanceProgressSchema,
  stepFailureSchema,
  triggerSchema,
} from "./model.js";
import { buildReport, type EventReport, markdownSafe, plainSafe, type SnsMessage, toAscii } from "./report.js";
import { describeEvent } from "./resolve-targets.js";
import { type RejectedAlertInput, rejectedAlertInputSchema } from "./watch-rejected.js";

/**
 * What reaches Notify: the event's work list (`batches`), and the results the batches stored (result-store.ts).
 * A batch that stored nothing (its child execution failed, or the Map did) is reported instance by instance as
 * `error`. After a ResolveTargets failure only the raw event is left.
 */
export const notifyInputSchema = z.union([
  z.object({
    event: eventRefSchema,
    trigger: triggerSchema.optional(),
    accountPosture: accountPostureSchema.optional(),
    fleet: z.object({ allowingImdsV1: z.number(), exempt: z.number() }).optional(),
    settings: flowSettingsSchema,
    rejected: z.array(z.object({ value: z.string(), reason: z.string() })),
    problem: z.string().optional(),
    batches: z.array(z.array(instanceProgressSchema)),
    mapFailure: stepFailureSchema.optional(),
    /** Set when ClaimEvent could not use the ledger: this event is not protected against a redelivery. */
    ledgerFailure: stepFailureSchema.optional(),
  }),
  z.object({ resolveFailure: stepFailureSchema, rawEvent: z.unknown() }),
  rejectedAlertInputSchema,
  /** Notify itself failed after its retries (e.g. the report was refused): a minimal message still goes out. */
  z.object({ notifyFailure: stepFailureSchema, state: z.unknown() }),
]);
export type NotifyInput = z.infer<typeof notifyInputSchema>;
export type NotifyFallbackInput = Extract<NotifyInput, { notifyFailure: unknown }>;

/** The last-resort message when the report itself could not be published: the event, the error, where to look. */
export function fallbackMessage(input: NotifyFallbackInput): SnsMessage {
  const state = (typeof input.state === "object" && input.state !== null ? input.state : {}) as Record<string, unknown>;
  const parsedEvent = eventRefSchema.safeParse(state.event);
  const event = parsedEvent.success ? parsedEvent.data : describeEvent(state.rawEvent);
  const text = [
    `imdsv2-guard could not publish its report for ${plainSafe(event.eventName)} ${plainSafe(event.eventId)} (${plainSafe(event.region)}).`,
    `Why: ${plainSafe(failureText(input.notifyFailure))}`,
    "The verdicts are in the Step Functions execution's output and in the event ledger table; the execution's history shows each step.",
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
      verdict: { DataType: "String", StringValue: "error" },
      verdicts: { DataType: "String.Array", StringValue: JSON.stringify(["error"]) },
    },
  };
}

/**
 * Turns whatever the flow reached into one report in which every instance has exactly one verdict: the stored results
 * of each batch, or `error` for every instance of a batch that stored none.
 */
export function reportFromNotifyInput(
  input: Exclude<NotifyInput, RejectedAlertInput | NotifyFallbackInput>,
  stored: ReadonlyMap<number, InstanceResult[]> = new Map(),
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
  const results: InstanceResult[] = input.batches.flatMap((batch, index) => {
    const found = stored.get(index);
    const byId = new Map((found ?? []).map((r) => [r.instanceId, r]));
    return batch.map(
      (item): InstanceResult =>
        byId.get(item.instanceId) ?? {
          instanceId: item.instanceId,
          verdict: "error",
          reason: `The flow failed before a verdict: ${input.mapFailure ? failureText(input.mapFailure) : "this batch's child execution stored no result"}`,
          warnings: [],
        },
    );
  });
  return buildReport({
    event: input.event,
    mode: input.settings.mode,
    results,
    rejected: input.rejected,
    ...(input.problem ? { problem: input.problem } : {}),
    ...(input.trigger ? { trigger: input.trigger } : {}),
    ...(input.accountPosture ? { accountPosture: input.accountPosture } : {}),
    ...(input.fleet ? { fleet: input.fleet } : {}),
    ...(input.ledgerFailure
      ? {
          notice: `Deduplication was unavailable (${failureText(input.ledgerFailure)}): a redelivery of this event would be handled again.`,
        }
      : {}),
  });
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
