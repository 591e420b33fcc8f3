import type { Logger } from "@aws-lambda-powertools/logger";
import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { EC2Client } from "@aws-sdk/client-ec2";
import * as z from "zod";
import { readAccountPosture } from "../aws/account-defaults.js";
import { sumImdsMetric } from "../aws/imds-metrics.js";
import type { AccountPosture } from "../domain/account-posture.js";
import { eventRefSchema } from "../domain/model.js";
import { watchListSchema } from "../domain/watch-list.js";
import type { RejectedCalls } from "../report/rejected-calls.js";

export const checkRejectedInputSchema = z.object({ event: eventRefSchema, watch: watchListSchema });
export type CheckRejectedInput = z.infer<typeof checkRejectedInputSchema>;

export interface CheckRejectedDeps {
  cloudwatch: CloudWatchClient;
  ec2: EC2Client;
  logger: Logger;
  now: () => Date;
}

/**
 * After the watch window (a Wait state, not a sleeping Lambda): did software on the enforced instances keep calling
 * IMDSv1 and get refused (MetadataNoTokenRejected)? That is software the change broke, and people need to know now,
 * with the way back.
 */
export async function checkRejectedCalls(input: CheckRejectedInput, deps: CheckRejectedDeps): Promise<RejectedCalls> {
  const now = deps.now();
  const start = new Date(input.watch.since);
  const sums = await sumImdsMetric(deps.cloudwatch, "MetadataNoTokenRejected", input.watch.instanceIds, start, now);
  const instances = [...sums]
    .filter(([, calls]) => calls > 0)
    .map(([instanceId, rejectedCalls]) => ({ instanceId, rejectedCalls }));
  let posture: AccountPosture | undefined;
  if (instances.length > 0) posture = await readAccountPosture(deps.ec2);
  deps.logger.info("Checked rejected IMDSv1 calls", { eventId: input.event.eventId, broken: instances.length });
  return {
    count: instances.length,
    instances,
    windowStart: start.toISOString(),
    windowEnd: now.toISOString(),
    rollbackPossible: !posture?.httpTokensEnforced,
  };
}
