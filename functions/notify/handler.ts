import { sns } from "../../shared/aws-clients.js";
import { loadNotifyConfig, type NotifyConfig } from "../../shared/config.js";
import { lambdaHandler, onColdStart } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { publish, publishReport } from "../../shared/notify.js";
import { notifyInputSchema, reportFromNotifyInput } from "../../shared/notify-input.js";
import { parseStepInput } from "../../shared/step-input.js";
import { rejectedCallsMessage, watchListOf } from "../../shared/watch-rejected.js";

/** Last step: one SNS message per event, whatever happened before. */
export function createHandler(config: NotifyConfig) {
  return lambdaHandler(async (input: unknown) => {
    const parsed = parseStepInput(notifyInputSchema, input, "Notify");
    if ("alert" in parsed) {
      logger.appendKeys({ eventId: parsed.event.eventId });
      const messageIds = await publish(rejectedCallsMessage(parsed), "alert", { sns, logger, config });
      return { verdict: "alert", messageIds };
    }
    const report = reportFromNotifyInput(parsed);
    logger.appendKeys({ eventId: report.event.eventId });
    const outcome = await publishReport(report, { sns, logger, config });
    // What the watch after enforcing looks at: the instances this execution switched to IMDSv2.
    return { ...outcome, counts: report.counts, watch: watchListOf(report.results) };
  });
}

export const handler = onColdStart(() => createHandler(loadNotifyConfig(process.env)));
