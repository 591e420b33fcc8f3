import * as z from "zod";
import { accountDefaultChangeSchema, accountDefaultOutcomeSchema } from "../domain/account-default-change.js";
import { eventRefSchema, stepFailureSchema } from "../domain/model.js";
import { commandRegion, describePosture } from "../domain/root-cause.js";
import type { SnsMessage } from "./report.js";
import { codeSafe, markdownSafe, plainSafe, toAscii } from "./text-safety.js";

/** What AlertAccountDefault hands Notify: the change from the record, and what GuardAccountDefault found and did. */
export const accountDefaultAlertInputSchema = z.object({
  alert: z.literal("account-default"),
  event: eventRefSchema,
  change: accountDefaultChangeSchema,
  /** GuardAccountDefault's outcome, or its failure (the Catch payload) when it could not read the defaults. */
  outcome: z.union([accountDefaultOutcomeSchema, stepFailureSchema]),
});
export type AccountDefaultAlertInput = z.infer<typeof accountDefaultAlertInputSchema>;

/**
 * The alert about a weakened account default, in every protocol's format. It names the actor and the new value
 * from the record, and says plainly that the old value is not known from it: CloudTrail does not record it, and the
 * guard keeps no history of the defaults, so it shows what it read after the call instead.
 */
export function accountDefaultAlertMessage(input: AccountDefaultAlertInput): SnsMessage {
  const { event, change } = input;
  const region = commandRegion(event.region);
  const outcome = "observed" in input.outcome ? input.outcome : undefined;
  const failure = outcome ? undefined : (input.outcome as { Error?: string; Cause?: string });
  const requested = [
    ...(change.httpTokens ? [`HttpTokens=${change.httpTokens}`] : []),
    ...(change.httpTokensEnforced ? [`HttpTokensEnforced=${change.httpTokensEnforced}`] : []),
  ].join(", ");
  const fixes = [
    ...(outcome?.restored
      ? []
      : [`aws ec2 modify-instance-metadata-defaults --region ${region} --http-tokens required`]),
    ...(change.httpTokensEnforced && change.httpTokensEnforced !== "enabled"
      ? [
          `aws ec2 modify-instance-metadata-defaults --region ${region} --http-tokens-enforced enabled (launches that do not require IMDSv2 then fail: the guard never does this itself)`,
        ]
      : []),
  ];
  const now = outcome
    ? `${describePosture(outcome.observed)} (read by the guard at ${outcome.observedAt})`
    : `could not be read: ${failure?.Error ?? "unknown error"}`;
  const lines = [
    `imdsv2-guard: the account's IMDS default in ${plainSafe(event.region)} was weakened: ${change.weakened.map(plainSafe).join("; ")}.`,
    `Actor:     ${plainSafe(event.actor)}`,
    `Call:      ${plainSafe(event.eventName)} ${plainSafe(event.eventId)} at ${plainSafe(event.eventTime)} in account ${plainSafe(event.account)}`,
    `New value: ${plainSafe(requested)} (from the CloudTrail request)`,
    "Old value: unknown. CloudTrail records the request, not the defaults before it, and the guard keeps no history of them.",
    `Now:       ${plainSafe(now)}`,
    `Action:    ${outcome ? outcome.action : "None: the guard could not read the defaults, so it changed nothing."}`,
    ...(fixes.length ? ["", "To require IMDSv2 for new launches again:", ...fixes.map((f) => `  ${f}`)] : []),
  ];
  const text = lines.join("\n");
  const chatbot = {
    version: "1.0",
    source: "custom",
    id: `${event.eventId}-account-default`,
    content: {
      textType: "client-markdown",
      title: `🚨 imdsv2-guard: account IMDS default weakened in ${markdownSafe(region)}`,
      description: [
        `*${markdownSafe(event.eventName)}* by \`${codeSafe(event.actor)}\`: ${change.weakened.map(markdownSafe).join("; ")}.`,
        "Old value: not in the CloudTrail record.",
        `Now: ${markdownSafe(now)}`,
        outcome ? markdownSafe(outcome.action) : "The guard changed nothing.",
      ]
        .join("\n")
        .slice(0, 3800),
      nextSteps: fixes.map((f) => `\`${f}\``),
      keywords: ["alert", event.region, event.account],
    },
  };
  const machine = JSON.stringify({ schema: "imdsv2-guard.account-default.v1", event, change, outcome: input.outcome });
  return {
    Subject: toAscii(`[imdsv2-guard] ALERT: account IMDS default weakened - ${event.region}`).slice(0, 99),
    MessageStructure: "json",
    Message: JSON.stringify({ default: text, https: JSON.stringify(chatbot), sqs: machine, lambda: machine }),
    MessageAttributes: {
      verdict: { DataType: "String", StringValue: "alert" },
      verdicts: { DataType: "String.Array", StringValue: JSON.stringify(["alert"]) },
    },
  };
}
