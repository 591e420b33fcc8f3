import { createHash } from "node:crypto";
import {
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  type SchedulerClient,
} from "@aws-sdk/client-scheduler";
import type { EventRef } from "../domain/model.js";
import type { WatchList } from "../domain/watch-list.js";
import { awsErrorCode, classifyAwsError } from "./errors.js";

/** What CheckRejected receives from the schedule: the same `{event, watch}` the state machine used to pass it. */
export interface WatchInput {
  event: EventRef;
  watch: WatchList;
}

export interface WatchBooking {
  scheduleName: string;
  /** When the schedule fires (UTC, whole seconds); for one booked earlier, when this attempt would have had it fire. */
  at: string;
  /** An earlier attempt of the same Notify had booked it already (CreateSchedule answered ConflictException). */
  alreadyBooked: boolean;
}

/** Where the schedule goes and what it invokes (NotifyConfig's `watch` fits: structural, as TopicRouting is). */
export interface WatchScheduleConfig {
  groupName: string;
  /** The role EventBridge Scheduler assumes to invoke the target. */
  roleArn: string;
  targetArn: string;
  deadLetterQueueArn: string;
}

export interface WatchScheduleDeps {
  scheduler: SchedulerClient;
  config: WatchScheduleConfig;
  now: () => Date;
}

/**
 * Scheduler's invocation of the target (Lambda's asynchronous Invoke) is retried for an hour at most; what still
 * fails goes to the dead-letter queue. Failures of CheckRejected itself are Lambda's to retry (twice, then its own
 * on-failure destination).
 */
const TARGET_RETRY_POLICY = { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 10 } as const;

/**
 * One name per event: the event's ledger key (or its id) hashed, because a name may hold only `[0-9a-zA-Z-_.]`, 64 at
 * most, and an event id or a sweep's key need not. The same event always gets the same name, so a retried Notify
 * finds its own schedule instead of booking a second watch.
 */
export function watchScheduleName(eventKey: string): string {
  return `imdsv2-guard-watch-${createHash("sha256").update(eventKey).digest("hex").slice(0, 40)}`;
}

/** Scheduler's one-off expression, `at(yyyy-mm-ddThh:mm:ss)` in the schedule's time zone (UTC here), whole seconds. */
export function atExpression(when: Date): string {
  return `at(${new Date(Math.ceil(when.getTime() / 1000) * 1000).toISOString().slice(0, 19)})`;
}

/**
 * Books the watch after enforcing: a one-off schedule that invokes CheckRejected with `{event, watch}` once the
 * window has passed, and deletes itself after. A ConflictException means this event's schedule exists (an earlier
 * attempt of the same Notify booked it): booked. Throttling and 5xx throw the retryable errors, so Notify is retried
 * before it published anything; anything else throws NonRetryableAwsError.
 *
 * @param eventKey the event's ledger key (`dedupe.key`), or its id when the ledger had none
 */
export async function bookWatch(
  input: WatchInput,
  eventKey: string,
  windowSeconds: number,
  deps: WatchScheduleDeps,
): Promise<WatchBooking> {
  const scheduleName = watchScheduleName(eventKey);
  const expression = atExpression(new Date(deps.now().getTime() + windowSeconds * 1000));
  const request: CreateScheduleCommandInput = {
    Name: scheduleName,
    GroupName: deps.config.groupName,
    Description: `imdsv2-guard: refused IMDSv1 calls after enforcing, event ${input.event.eventId}`.slice(0, 512),
    ScheduleExpression: expression,
    ScheduleExpressionTimezone: "UTC",
    FlexibleTimeWindow: { Mode: "OFF" },
    ActionAfterCompletion: "DELETE",
    Target: {
      Arn: deps.config.targetArn,
      RoleArn: deps.config.roleArn,
      Input: JSON.stringify(input),
      RetryPolicy: { ...TARGET_RETRY_POLICY },
      DeadLetterConfig: { Arn: deps.config.deadLetterQueueArn },
    },
  };
  const at = expression.slice(3, -1);
  try {
    await deps.scheduler.send(new CreateScheduleCommand(request));
    return { scheduleName, at, alreadyBooked: false };
  } catch (error) {
    if (awsErrorCode(error) === "ConflictException") return { scheduleName, at, alreadyBooked: true };
    throw classifyAwsError(error, "CreateSchedule", "for the watch after enforcing");
  }
}
