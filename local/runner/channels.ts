import * as z from "zod";
import { wrapText } from "../../shared/report/text-table.js";

/** The AWS Chatbot custom notification the guard sends on SNS's `https` protocol (shared/report chatbotNotification). */
const chatbotCardSchema = z.object({
  version: z.string(),
  source: z.string(),
  id: z.string().optional(),
  content: z.object({
    textType: z.string(),
    title: z.string(),
    description: z.string(),
    nextSteps: z.array(z.string()).default([]),
    keywords: z.array(z.string()).default([]),
  }),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type ChatbotCard = z.infer<typeof chatbotCardSchema>;

/** One published SNS message, as each of its channels receives it. */
export interface DeliveredNotification {
  topicArn: string;
  subject: string;
  /** What an email subscription shows (SNS's `default`). */
  email: string;
  /** What AWS Chatbot posts to Slack (SNS's `https`), as the JSON it receives. */
  slack?: ChatbotCard;
}

/** Splits a published `MessageStructure: json` message into its channels. */
export function deliveredNotification(input: { TopicArn?: string; Subject?: string; Message?: string }) {
  const message = z
    .object({ default: z.string().default(""), https: z.string().optional() })
    .parse(JSON.parse(input.Message ?? "{}"));
  const slack = message.https === undefined ? undefined : chatbotCardSchema.parse(JSON.parse(message.https));
  const notification: DeliveredNotification = {
    topicArn: input.TopicArn ?? "",
    subject: input.Subject ?? "",
    email: message.default,
    ...(slack ? { slack } : {}),
  };
  return notification;
}

/**
 * Slack's mrkdwn as a terminal can show it: the marks Slack turns into bold, italics and code are dropped (their text
 * stays), and the entities Slack decodes are decoded. What a tag value looks like in the card is what is printed.
 */
export function mrkdwnAsShown(text: string): string {
  return text
    .replace(/`([^`\n]*)`/g, "$1")
    .replace(/(^|[\s(])\*([^*\n]+)\*(?=$|[\s).,;:!?])/g, "$1$2")
    .replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s).,;:!?])/g, "$1$2")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");
}

/** The email and the Slack card of one notification, in `width` columns, for `npm start`. */
export function notificationText(n: DeliveredNotification, width: number): string[] {
  const wrap = (line: string, indent = "") =>
    wrapText(line, width - indent.length).map((l, i) => (i === 0 ? l : `${indent}${l}`));
  // A subject of up to 99 characters (SNS's limit) does not fit after "Subject: " in 100 columns: it wraps too.
  const out = [
    "--- Email",
    ...wrap(`Subject: ${n.subject}`, "         "),
    "",
    ...n.email.split("\n").flatMap((l) => wrap(l, "    ")),
    "",
  ];
  if (n.slack) {
    const c = n.slack.content;
    out.push("--- Slack (AWS Chatbot custom notification)", ...wrap(mrkdwnAsShown(c.title)), "");
    out.push(...c.description.split("\n").flatMap((l) => wrap(mrkdwnAsShown(l), "  ")));
    if (c.nextSteps.length > 0) {
      out.push("", "Next steps");
      out.push(...c.nextSteps.flatMap((s) => wrap(`• ${mrkdwnAsShown(s)}`, "  ")));
    }
    out.push("");
  }
  return out;
}
