import type { Logger } from "@aws-lambda-powertools/logger";
import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { SNSClient } from "@aws-sdk/client-sns";
import * as z from "zod";
import { readAccountPosture } from "../aws/account-defaults.js";
import { sumImdsMetric } from "../aws/imds-metrics.js";
import { publish, type TopicRouting } from "../aws/publish.js";
import type { AccountPosture } from "../domain/account-posture.js";
import { eventRefSchema } from "../domain/model.js";
import { watchListSchema } from "../domain/watch-list.js";
import { type RejectedCalls, rejectedCallsMessage } from "../report/rejected-calls.js";

export const checkRejectedInputSchema = z.object({ event: eventRefSchema, watch: watchListSchema });
export type CheckRejectedInput = z.infer<typeof checkRejectedInputSchema>;

export interface CheckRejectedDeps {
  cloudwatch: CloudWatchClient;
  ec2: EC2Client;
  logger: Logger;
  now: () => Date;
}

/**
 * After the watch window (a one-off schedule, not a sleeping Lambda): did software on the enforced instances keep calling
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

export interface WatchDeps extends CheckRejectedDeps {
  sns: SNSClient;
  config: TopicRouting;
}

/**
 * The watch after enforcing, as the schedule Notify booked runs it: reads the refused calls and, when there are
 * any, publishes the alert itself. Lambda invokes it asynchronously, at least once, and retries it after a crash, so
 * a repeat may publish the alert twice: a duplicate alert beats a lost one, and a read-only check has nothing else
 * to repeat. What still fails after Lambda's retries lands in the function's on-failure destination (an alarmed
 * queue), in place of the failed execution the watch used to end in.
 */
export async function watchAfterEnforcing(
  input: CheckRejectedInput,
  deps: WatchDeps,
): Promise<RejectedCalls & { messageIds: string[] }> {
  const rejected = await checkRejectedCalls(input, deps);
  if (rejected.count === 0) return { ...rejected, messageIds: [] };
  const messageIds = await publish(rejectedCallsMessage({ event: input.event, rejected }), "alert", deps);
  deps.logger.info("Published the rejected-calls alert", { eventId: input.event.eventId, messageIds });
  return { ...rejected, messageIds };
}
