import { PublishCommand, type PublishCommandInput, type SNSClient } from "@aws-sdk/client-sns";
import { classifyAwsError } from "./errors.js";

/** Where the guard's messages go: the alert topic, and Slack's topic for the verdicts Slack wants. */
export interface TopicRouting {
  topicArn: string;
  slackTopicArn?: string;
  slackVerdicts: string[];
  /** Slack topic by account id (organization mode); an account not listed uses slackTopicArn. */
  slackTopicByAccount?: Record<string, string>;
}

export interface PublishDeps {
  sns: SNSClient;
  /** Structural, so this adapter does not depend on the runtime's logger (Powertools' Logger fits). */
  logger: { error(message: string, ...extra: Record<string, unknown>[]): void };
  config: TopicRouting;
}

export interface PublishOptions {
  /** False for a message Slack must not get even when it wants the verdict: a split report's later parts. */
  slack?: boolean;
}

/**
 * Publishes one message to the alert topic, and to Slack's topic when `verdict` (an event's worst verdict, or
 * `alert`) is one Slack wants, unless `options.slack` is false.
 */
export async function publish(
  message: Omit<PublishCommandInput, "TopicArn">,
  verdict: string,
  deps: PublishDeps,
  options: PublishOptions = {},
): Promise<string[]> {
  // The alert topic first: if it fails, nothing was sent and the step may be retried. Slack's topic is best effort
  // after that, so a Slack failure never makes the step send the email again.
  const messageIds: string[] = [];
  try {
    const out = await deps.sns.send(new PublishCommand({ TopicArn: deps.config.topicArn, ...message }));
    messageIds.push(out.MessageId ?? "");
  } catch (error) {
    throw classifyAwsError(error, "Publish", "to the alert topic");
  }
  const slackTopicArn = slackTopicFor(message, deps.config);
  if (slackTopicArn && options.slack !== false && deps.config.slackVerdicts.includes(verdict)) {
    try {
      const out = await deps.sns.send(new PublishCommand({ TopicArn: slackTopicArn, ...message }));
      messageIds.push(out.MessageId ?? "");
    } catch (error) {
      deps.logger.error("Publish to the Slack topic failed; the alert topic has the message", {
        error: classifyAwsError(error, "Publish", "to the Slack topic").message,
      });
    }
  }
  return messageIds;
}

/** The Slack topic for a message: its account's own (organization mode's routes), or the default one. */
function slackTopicFor(message: Omit<PublishCommandInput, "TopicArn">, config: TopicRouting): string | undefined {
  const account = message.MessageAttributes?.account?.StringValue;
  return (account !== undefined ? config.slackTopicByAccount?.[account] : undefined) ?? config.slackTopicArn;
}
