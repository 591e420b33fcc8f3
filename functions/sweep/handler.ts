import { ec2 } from "../../shared/aws/clients/ec2.js";
import { sfn } from "../../shared/aws/clients/sfn.js";
import { loadSweepConfig, type SweepConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { sweep } from "../../shared/steps/sweep.js";

/** Scheduled (daily by default): finds instances that still allow IMDSv1 and runs them through the state machine. */
export function createHandler(config: SweepConfig, now: () => Date = () => new Date()) {
  return lambdaHandler(async (scheduledEvent: unknown) => {
    const time = (scheduledEvent as { time?: unknown } | null)?.time;
    return sweep({ ec2, sfn, logger, now, config }, typeof time === "string" ? { time } : {});
  });
}

export const handler = onColdStart(() => createHandler(loadSweepConfig(process.env)));
