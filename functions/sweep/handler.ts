import { ec2 } from "../../shared/clients/ec2.js";
import { sfn } from "../../shared/clients/sfn.js";
import { loadSweepConfig } from "../../shared/config.js";
import { lambdaHandler, onColdStart } from "../../shared/lambda-handler.js";
import { logger } from "../../shared/logger.js";
import { type SweepConfig, sweep } from "../../shared/sweep.js";

/** Scheduled (daily by default): finds instances that still allow IMDSv1 and runs them through the state machine. */
export function createHandler(config: SweepConfig, now: () => Date = () => new Date()) {
  return lambdaHandler(async (scheduledEvent: unknown) => {
    const time = (scheduledEvent as { time?: unknown } | null)?.time;
    return sweep({ ec2, sfn, logger, now, config }, typeof time === "string" ? { time } : {});
  });
}

export const handler = onColdStart(() => createHandler(loadSweepConfig(process.env)));
