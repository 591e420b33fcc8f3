import { dynamoBatchLedger } from "../../shared/aws/batch-ledger.js";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { scheduler } from "../../shared/aws/clients/scheduler.js";
import { securityhubForTarget } from "../../shared/aws/clients/securityhub.js";
import { sns } from "../../shared/aws/clients/sns.js";
import { dynamoEvidenceStore } from "../../shared/aws/evidence-store.js";
import { dynamoResultStore, LEDGER_RETENTION_SECONDS, type ResultStore } from "../../shared/aws/result-store.js";
import { spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import type { BatchLedger } from "../../shared/domain/batch-slices.js";
import type { InstanceProgress } from "../../shared/domain/model.js";
import { accountDefaultAlertMessage } from "../../shared/report/account-default-alert.js";
import { fallbackMessage, notifyInputSchema, reportFromNotifyInput } from "../../shared/report/notify-input.js";
import {
  loadEvidenceConfig,
  loadLedgerTableName,
  loadNotifyConfig,
  loadOrganizationConfig,
  type NotifyConfig,
} from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { bookWatchAfterEnforcing, publish, publishReport, reportWithWatch } from "../../shared/steps/notify.js";
import { recordStandingTruth, type StandingTruthDeps, withStandingTruth } from "../../shared/steps/standing-truth.js";

/**
 * One SNS message per event, whatever happened before: the report (with the batches' stored results), the alert
 * about a weakened account default, or the last-resort message when the report itself could not be published.
 * Before the report goes out it books the watch after enforcing (a one-off schedule that runs CheckRejected).
 */
export function createHandler(
  config: NotifyConfig,
  store: ResultStore,
  now: () => Date = () => new Date(),
  batches?: BatchLedger,
  standingTruth?: Omit<StandingTruthDeps, "logger" | "now">,
) {
  return lambdaHandler(async (input: unknown) => {
    const parsed = parseStepInput(notifyInputSchema, input, "Notify");
    const deps = { sns, logger, config };
    if ("alert" in parsed) {
      logger.appendKeys({ eventId: parsed.event.eventId });
      return { verdict: "alert", messageIds: await publish(accountDefaultAlertMessage(parsed), "alert", deps) };
    }
    if ("notifyFailure" in parsed) {
      return { verdict: "alert", messageIds: await publish(fallbackMessage(parsed), "alert", deps) };
    }
    let stored: Awaited<ReturnType<ResultStore["load"]>> | undefined;
    let work: Map<number, InstanceProgress[]> | undefined;
    let readFailure: string | undefined;
    if ("batches" in parsed && parsed.batches.length > 0) {
      const key = parsed.dedupe?.key ?? parsed.event.eventId;
      // The instances are in the ledger (work#), the state holds pointers: the report is built from both. Each read
      // on its own: without the verdicts, the instances are still reported (as errors), and the reverse.
      const [results, lists] = await Promise.allSettled([store.load(key), batches?.loadWork(key)]);
      if (results.status === "fulfilled") stored = results.value;
      if (lists.status === "fulfilled") work = lists.value;
      const failures = [results, lists].flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
      if (failures.length > 0) {
        // Report what the Map returned inline rather than nothing; the instances without a result become errors.
        readFailure = failures.map((e) => (e instanceof Error ? e.message : String(e))).join("; ");
        logger.error("Could not read the stored verdicts", { error: readFailure });
      }
    }
    const ledger = store.tableName
      ? { tableName: store.tableName, keptForDays: LEDGER_RETENTION_SECONDS / 86_400 }
      : undefined;
    const built = reportFromNotifyInput(parsed, stored, readFailure, ledger, work);
    logger.appendKeys({ eventId: built.event.eventId });
    // Before the report goes out, so that a standing truth that could not be kept is said in the report itself.
    const truth =
      standingTruth && "settings" in parsed
        ? await recordStandingTruth(built, parsed.settings, { ...standingTruth, logger, now })
        : undefined;
    const report = truth ? withStandingTruth(built, truth) : built;
    const watched =
      "settings" in parsed
        ? await bookWatchAfterEnforcing(
            report,
            parsed.dedupe?.key ?? parsed.event.eventId,
            parsed.settings.watchRejectedSeconds,
            { scheduler, logger, config, now },
          )
        : undefined;
    const outcome = await publishReport(watched ? reportWithWatch(report, watched) : report, deps);
    return {
      ...outcome,
      counts: report.counts,
      // The watch's size, not its instances: this is the execution's last state output, and a launch's list of
      // instance ids would grow it toward Step Functions' 256 KiB (the schedules' inputs carry them).
      ...(watched ? { watch: { since: watched.watch.since, count: watched.watch.count } } : {}),
      ...(watched?.schedules[0] ? { watchSchedule: watched.schedules[0].scheduleName } : {}),
      ...(watched && watched.schedules.length > 1 ? { watchSchedules: watched.schedules.length } : {}),
      ...(watched?.notBooked ? { watchNotBooked: watched.notBooked } : {}),
      ...(truth ? { standingTruth: { recorded: truth.recorded, findings: truth.findings } } : {}),
    };
  });
}

/** The evidence store and Security Hub (through the member's spoke session in organization mode). */
function standingTruthFor(env: NodeJS.ProcessEnv): Omit<StandingTruthDeps, "logger" | "now"> | undefined {
  const evidence = loadEvidenceConfig(env);
  if (!evidence) return undefined;
  const securityHubFor = securityhubForTarget(spokeAccessFor(loadOrganizationConfig(env)));
  return {
    evidence: dynamoEvidenceStore(dynamodb, evidence.tableName, evidence.retentionDays),
    securityHubFor: (target) => securityHubFor(target),
  };
}

export const handler = onColdStart(() => {
  const config = loadNotifyConfig(process.env);
  const tableName = loadLedgerTableName(process.env);
  return createHandler(
    config,
    dynamoResultStore(dynamodb, tableName),
    undefined,
    dynamoBatchLedger(dynamodb, tableName),
    standingTruthFor(process.env),
  );
});
