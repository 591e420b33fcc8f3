import type { EventRef } from "../domain/model.js";
import { commandRegion } from "../domain/root-cause.js";
import type { WatchList } from "../domain/watch-list.js";
import type { SnsMessage } from "./report.js";
import { markdownSafe, plainSafe, toAscii } from "./text-safety.js";

export interface RejectedCalls {
  count: number;
  instances: { instanceId: string; rejectedCalls: number }[];
  windowStart: string;
  windowEnd: string;
  /** False when the account's HttpTokensEnforced makes switching an instance back to optional impossible. */
  rollbackPossible: boolean;
}

/** What the rejected-calls alert is about: the event whose watch found them, and what it found. */
export interface RejectedAlertInput {
  event: EventRef;
  rejected: RejectedCalls;
}

/**
 * The report's sentence when the watch could not be booked: nobody will be alerted about software the change broke,
 * so the operator must look at the metric themselves.
 */
export function watchNotBookedNotice(watch: WatchList, reason: string): string {
  return `The watch for refused IMDSv1 calls after enforcing could not be booked (${reason.slice(0, 400)}): no alert will come if software on the ${watch.count} instance(s) switched to IMDSv2 keeps calling IMDSv1; check their MetadataNoTokenRejected metric (CloudWatch, AWS/EC2).`;
}

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

/** The alert, in every protocol's format; the `verdict` attribute is `alert` so subscriptions can route it. */
export function rejectedCallsMessage(input: RejectedAlertInput): SnsMessage {
  const { event, rejected } = input;
  const rollback = (id: string) =>
    `aws ec2 modify-instance-metadata-options --region ${commandRegion(event.region)} --instance-id ${id} --http-tokens optional`;
  const ids = rejected.instances.map((i) => i.instanceId).filter((id) => INSTANCE_ID.test(id));
  const way = rejected.rollbackPossible
    ? "To roll back (re-opens IMDSv1; fix the caller, then enforce again):"
    : "Rollback is impossible: HttpTokensEnforced is enabled for this account and region, so HttpTokens cannot be set back to optional. Fix the caller (update its AWS SDK or agent to IMDSv2), or disable HttpTokensEnforced first (aws ec2 modify-instance-metadata-defaults --http-tokens-enforced disabled).";
  const lines = [
    `imdsv2-guard: software on ${rejected.count} instance(s) keeps calling IMDSv1 and is refused since the guard required IMDSv2.`,
    `Event:  ${plainSafe(event.eventName)} ${plainSafe(event.eventId)} by ${plainSafe(event.actor)}`,
    `Window: ${rejected.windowStart} to ${rejected.windowEnd} (CloudWatch AWS/EC2 MetadataNoTokenRejected, Sum)`,
    "",
    ...rejected.instances.map((i) => `- ${plainSafe(i.instanceId)}: ${i.rejectedCalls} refused IMDSv1 call(s)`),
    "",
    way,
    ...(rejected.rollbackPossible ? ids.map((id) => `  ${rollback(id)}`) : []),
  ];
  const text = lines.join("\n");
  const chatbot = {
    version: "1.0",
    source: "custom",
    id: `${event.eventId}-rejected`,
    content: {
      textType: "client-markdown",
      title: `🚨 imdsv2-guard: IMDSv1 calls refused on ${rejected.count} instance(s) after enforcing`,
      description: [
        `After *${markdownSafe(event.eventName)}* by \`${plainSafe(event.actor).replaceAll("`", "'")}\`, software keeps calling IMDSv1 and is refused:`,
        ...rejected.instances.map(
          (i) => `• \`${plainSafe(i.instanceId).replaceAll("`", "'")}\`: ${i.rejectedCalls} refused call(s)`,
        ),
      ]
        .join("\n")
        .slice(0, 3800),
      nextSteps: rejected.rollbackPossible ? [way, ...ids.slice(0, 4).map((id) => `\`${rollback(id)}\``)] : [way],
      keywords: ["alert", event.region, event.account],
    },
  };
  const machine = JSON.stringify({ schema: "imdsv2-guard.rejected-calls.v1", event, ...rejected });
  return {
    Subject: toAscii(
      `[imdsv2-guard] ALERT: IMDSv1 calls refused on ${rejected.count} instance(s) - ${event.region}`,
    ).slice(0, 99),
    MessageStructure: "json",
    Message: JSON.stringify({
      default: text,
      https: JSON.stringify(chatbot),
      sqs: machine,
      lambda: machine,
    }),
    MessageAttributes: {
      verdict: { DataType: "String", StringValue: "alert" },
      verdicts: { DataType: "String.Array", StringValue: JSON.stringify(["alert"]) },
    },
  };
}
