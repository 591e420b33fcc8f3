import type { Logger } from "@aws-lambda-powertools/logger";
import { PublishCommand, type SNSClient } from "@aws-sdk/client-sns";
import { classifyAwsError } from "./aws-errors.js";
import type { NotifyConfig } from "./config.js";
import { type EventReport, type SnsMessage, snsMessage } from "./report.js";

export interface NotifyDeps {
  sns: SNSClient;
  logger: Logger;
  config: NotifyConfig;
}

export interface NotifyOutcome {
  verdict: EventReport["verdict"];
  messageIds: string[];
}

/**
 * Publishes the event's report. Slack gets its own topic, published to only when the verdict is one it wants:
 * AWS Chatbot subscribes itself to a topic, so a subscription filter policy cannot be put on it.
 */
export async function publishReport(report: EventReport, deps: NotifyDeps): Promise<NotifyOutcome> {
  const messageIds = await publish(snsMessage(report), report.verdict, deps);
  deps.logger.info("Published report", { eventId: report.event.eventId, verdict: report.verdict, messageIds });
  return { verdict: report.verdict, messageIds };
}

/**
 * Publishes one message to the alert topic, and to Slack's topic when `verdict` (an event's worst verdict, or
 * `alert`) is one Slack wants.
 */
export async function publish(message: SnsMessage, verdict: string, deps: NotifyDeps): Promise<string[]> {
  const topics = [deps.config.topicArn];
  if (deps.config.slackTopicArn && deps.config.slackVerdicts.includes(verdict)) {
    topics.push(deps.config.slackTopicArn);
  }
  const messageIds: string[] = [];
  for (const topicArn of topics) {
    try {
      const out = await deps.sns.send(new PublishCommand({ TopicArn: topicArn, ...message }));
      messageIds.push(out.MessageId ?? "");
    } catch (error) {
      throw classifyAwsError(error, `Publish to ${topicArn}`);
    }
  }
  return messageIds;
}
