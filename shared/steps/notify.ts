import type { Logger } from "@aws-lambda-powertools/logger";
import { PublishCommand, type SNSClient } from "@aws-sdk/client-sns";
import { classifyAwsError } from "../aws/errors.js";
import { type EventReport, type SnsMessage, snsMessage } from "../report/report.js";
import type { NotifyConfig } from "../runtime/config.js";

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
  // The alert topic first: if it fails, nothing was sent and the step may be retried. Slack's topic is best effort
  // after that, so a Slack failure never makes the step send the email again.
  const messageIds: string[] = [];
  try {
    const out = await deps.sns.send(new PublishCommand({ TopicArn: deps.config.topicArn, ...message }));
    messageIds.push(out.MessageId ?? "");
  } catch (error) {
    throw classifyAwsError(error, "Publish", "to the alert topic");
  }
  if (deps.config.slackTopicArn && deps.config.slackVerdicts.includes(verdict)) {
    try {
      const out = await deps.sns.send(new PublishCommand({ TopicArn: deps.config.slackTopicArn, ...message }));
      messageIds.push(out.MessageId ?? "");
    } catch (error) {
      deps.logger.error("Publish to the Slack topic failed; the alert topic has the message", {
        error: classifyAwsError(error, "Publish", "to the Slack topic").message,
      });
    }
  }
  return messageIds;
}
