import { sns } from "../../shared/aws-clients.js";
import { loadNotifyConfig, type NotifyConfig } from "../../shared/config.js";
import { lambdaHandler, onColdStart } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { publishReport } from "../../shared/notify.js";
import { notifyInputSchema, reportFromNotifyInput } from "../../shared/notify-input.js";
import { parseStepInput } from "../../shared/step-input.js";

/** Last step: one SNS message per event, whatever happened before. */
export function createHandler(config: NotifyConfig) {
  return lambdaHandler(async (input: unknown) => {
    const report = reportFromNotifyInput(parseStepInput(notifyInputSchema, input, "Notify"));
    logger.appendKeys({ eventId: report.event.eventId });
    const outcome = await publishReport(report, { sns, logger, config });
    return { ...outcome, counts: report.counts };
  });
}

export const handler = onColdStart(() => createHandler(loadNotifyConfig(process.env)));
