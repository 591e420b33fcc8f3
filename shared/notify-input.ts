import { z } from "zod";
import { accountPostureSchema } from "./account-posture.js";
import {
  eventRefSchema,
  flowSettingsSchema,
  type InstanceResult,
  instanceProgressSchema,
  instanceResultSchema,
  stepFailureSchema,
  triggerSchema,
} from "./model.js";
import { buildReport, type EventReport } from "./report.js";
import { describeEvent } from "./resolve-targets.js";
import { type RejectedAlertInput, rejectedAlertInputSchema } from "./watch-rejected.js";

/**
 * What reaches Notify. On the happy path each batch has been replaced by its results (the Map writes its output over
 * `batches`, which keeps the execution's state far below Step Functions' 256 KiB limit at a thousand instances).
 * After a Map failure the batches are still work items; after a ResolveTargets failure only the raw event is left.
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
    batches: z.array(z.array(z.union([instanceResultSchema, instanceProgressSchema]))),
    mapFailure: stepFailureSchema.optional(),
  }),
  z.object({ resolveFailure: stepFailureSchema, rawEvent: z.unknown() }),
  rejectedAlertInputSchema,
]);
export type NotifyInput = z.infer<typeof notifyInputSchema>;

/** Turns whatever the flow reached into one report in which every instance has exactly one verdict. */
export function reportFromNotifyInput(input: Exclude<NotifyInput, RejectedAlertInput>): EventReport {
  if ("resolveFailure" in input) {
    return buildReport({
      event: describeEvent(input.rawEvent),
      mode: "enforce",
      results: [],
      rejected: [],
      problem: `The event could not be resolved: ${failureText(input.resolveFailure)}`,
    });
  }
  const results: InstanceResult[] = input.batches.flat().map((item) =>
    "verdict" in item
      ? item
      : {
          instanceId: item.instanceId,
          verdict: "error",
          reason: `The flow failed before a verdict: ${failureText(input.mapFailure ?? {})}`,
          warnings: [],
        },
  );
  return buildReport({
    event: input.event,
    mode: input.settings.mode,
    results,
    rejected: input.rejected,
    ...(input.problem ? { problem: input.problem } : {}),
    ...(input.trigger ? { trigger: input.trigger } : {}),
    ...(input.accountPosture ? { accountPosture: input.accountPosture } : {}),
    ...(input.fleet ? { fleet: input.fleet } : {}),
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
