import type { Logger } from "@aws-lambda-powertools/logger";
import type { SchedulerClient } from "@aws-sdk/client-scheduler";
import type { SNSClient } from "@aws-sdk/client-sns";
import { publish } from "../aws/publish.js";
import { bookWatch, type WatchBooking } from "../aws/watch-schedule.js";
import { RetryableServiceError, RetryableThrottlingError } from "../domain/errors.js";
import { splitWatchList, type WatchList, watchListOf } from "../domain/watch-list.js";
import { watchNotBookedNotice } from "../report/rejected-calls.js";
import { type EventReport, snsMessages, withNotice } from "../report/report.js";
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
 * Publishes the event's report: one message, or each part of a report too large for one, in order, to the alert
 * topic. Slack gets its own topic, published to only when the verdict is one it wants (AWS Chatbot subscribes itself
 * to a topic, so a subscription filter policy cannot be put on it), and only part 1: the summary, once.
 *
 * A part that fails throws, and the retried Notify publishes every part again, the ones that went out included: SNS
 * delivers at least once anyway, and a consumer keeps one copy per event id and `part.index` (mergeReportParts).
 */
export async function publishReport(report: EventReport, deps: NotifyDeps): Promise<NotifyOutcome> {
  const messageIds: string[] = [];
  const messages = snsMessages(report);
  for (const [i, message] of messages.entries()) {
    messageIds.push(...(await publish(message, report.verdict, deps, { slack: i === 0 })));
  }
  deps.logger.info("Published report", {
    eventId: report.event.eventId,
    verdict: report.verdict,
    messageIds,
    ...(messages.length > 1 ? { parts: messages.length } : {}),
  });
  return { verdict: report.verdict, messageIds };
}

export interface WatchOutcome {
  /** The instances this execution switched to IMDSv2: what the watch covers. */
  watch: WatchList;
  /** The booked schedules (by this attempt or an earlier one), one per WATCH_LIST_MAX_INSTANCES instances. */
  schedules: WatchBooking[];
  /** Why some (or all) of the watch could not be booked: the report says so, since nobody will be alerted. */
  notBooked?: string;
  /** The instances of the schedules that could not be booked. */
  unwatched?: WatchList;
}

export interface BookWatchDeps {
  scheduler: SchedulerClient;
  logger: Logger;
  config: NotifyConfig;
  now: () => Date;
}

/**
 * Books the watch after enforcing for a report, before the report is published: a Notify retried after a failed
 * publish then finds its schedules booked, and a retryable booking failure (thrown) retries Notify before anything
 * went out. Any other failure is returned, not thrown: the report must still go out, saying what is not watched.
 * A launch of more than WATCH_LIST_MAX_INSTANCES switched instances gets one schedule per that many (Scheduler's
 * input limit); the first keeps the event's own schedule name, the others add their number to it.
 *
 * @param eventKey the event's ledger key, or its id: the same schedules per event
 */
export async function bookWatchAfterEnforcing(
  report: EventReport,
  eventKey: string,
  windowSeconds: number,
  deps: BookWatchDeps,
): Promise<WatchOutcome> {
  const watch = watchListOf(report.results);
  if (watch.count === 0 || windowSeconds <= 0) return { watch, schedules: [] };
  const watchConfig = deps.config.watch;
  if (!watchConfig) {
    const notBooked =
      "the watch schedule is not configured (WATCH_SCHEDULE_GROUP and the other WATCH_ variables are unset)";
    deps.logger.error("Could not book the watch after enforcing", { eventId: report.event.eventId, error: notBooked });
    return { watch, schedules: [], notBooked, unwatched: watch };
  }
  const schedules: WatchBooking[] = [];
  const failures: { list: WatchList; reason: string }[] = [];
  for (const [i, list] of splitWatchList(watch).entries()) {
    try {
      const schedule = await bookWatch(
        { event: report.event, watch: list },
        i === 0 ? eventKey : `${eventKey}#watch-${i + 1}`,
        windowSeconds,
        { scheduler: deps.scheduler, config: watchConfig, now: deps.now },
      );
      deps.logger.info("Booked the watch after enforcing", { eventId: report.event.eventId, ...schedule });
      schedules.push(schedule);
    } catch (error) {
      if (error instanceof RetryableThrottlingError || error instanceof RetryableServiceError) throw error;
      failures.push({ list, reason: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    }
  }
  if (failures.length === 0) return { watch, schedules };
  const notBooked = [...new Set(failures.map((f) => f.reason))].join("; ");
  const unwatchedIds = failures.flatMap((f) => f.list.instanceIds);
  deps.logger.error("Could not book the watch after enforcing", { eventId: report.event.eventId, error: notBooked });
  return {
    watch,
    schedules,
    notBooked,
    unwatched: { instanceIds: unwatchedIds, since: watch.since, count: unwatchedIds.length },
  };
}

/** The report as it goes out: with a sentence saying the watch is missing, when it could not be booked. */
export function reportWithWatch(report: EventReport, outcome: WatchOutcome): EventReport {
  return outcome.notBooked
    ? withNotice(report, watchNotBookedNotice(outcome.unwatched ?? outcome.watch, outcome.notBooked))
    : report;
}
