import type { Logger } from "@aws-lambda-powertools/logger";
import type { SNSClient } from "@aws-sdk/client-sns";
import { publish } from "../aws/publish.js";
import { type EventReport, snsMessage } from "../report/report.js";
import type { NotifyConfig } from "../runtime/config.js";

export { publish };

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
