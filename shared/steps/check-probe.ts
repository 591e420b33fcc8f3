import type { Logger } from "@aws-lambda-powertools/logger";
import {
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { awsErrorCode, classifyAwsError, isWorthRetryingNextRound } from "../aws/errors.js";
import { conclude, isPast, withInstances } from "../domain/batch.js";
import type { Batch, InstanceProgress } from "../domain/model.js";
import { judgeProbe, parseProbeOutput } from "../domain/probe-verdict.js";

export interface CheckProbeDeps {
  ssm: SSMClient;
  logger: Logger;
  now: () => Date;
}

// Not yet terminal ("Understanding command statuses"): Cancelling ends Cancelled, which is terminal.
const STILL_RUNNING = new Set(["Pending", "InProgress", "Delayed", "Cancelling"]);

/**
 * One poll of the probe's result per instance in `await-probe`. InvocationDoesNotExist right after SendCommand is
 * normal (the invocation is created asynchronously); a throttled poll stops this round and tries again next round.
 */
export async function checkProbeBatch(batch: Batch, deps: CheckProbeDeps): Promise<Batch> {
  const now = deps.now();
  let throttled = false;
  const next: InstanceProgress[] = [];
  for (const progress of batch.instances) {
    if (progress.stage !== "await-probe" || !progress.commandId) {
      next.push(progress);
      continue;
    }
    if (throttled) {
      next.push(unlessPastDeadline(progress, batch, now));
      continue;
    }
    let invocation: GetCommandInvocationCommandOutput;
    try {
      invocation = await deps.ssm.send(
        new GetCommandInvocationCommand({ CommandId: progress.commandId, InstanceId: progress.instanceId }),
      );
    } catch (error) {
      if (isWorthRetryingNextRound(error)) {
        throttled = true;
        next.push(unlessPastDeadline(progress, batch, now));
      } else if (awsErrorCode(error) === "InvocationDoesNotExist") {
        next.push(unlessPastDeadline(progress, batch, now));
      } else {
        const reason = classifyAwsError(error, "GetCommandInvocation").message;
        next.push(conclude(progress, batch, now, "unverified", `The probe's result could not be read: ${reason}`));
      }
      continue;
    }
    next.push(judgeInvocation(progress, invocation, batch, now));
  }
  return withInstances(batch, next, throttled && "drain");
}

function judgeInvocation(
  progress: InstanceProgress,
  invocation: GetCommandInvocationCommandOutput,
  batch: Batch,
  now: Date,
): InstanceProgress {
  const status = invocation.Status ?? "Unknown";
  if (STILL_RUNNING.has(status)) return unlessPastDeadline(progress, batch, now);
  if (status !== "Success") {
    const detail =
      invocation.StatusDetails && invocation.StatusDetails !== status ? ` (${invocation.StatusDetails})` : "";
    return conclude(
      progress,
      batch,
      now,
      "unverified",
      `The probe did not complete: Run Command status ${status}${detail}.`,
    );
  }
  const reading = parseProbeOutput(invocation.StandardOutputContent ?? "");
  if (!reading) {
    return conclude(
      progress,
      batch,
      now,
      "unverified",
      "The probe ran but printed no result line the guard understands.",
    );
  }
  const judgement = judgeProbe(reading);
  const reason =
    judgement.verdict === "fail" && progress.appliedAt
      ? `${judgement.reason} EC2 reports HttpTokens=required and applied, so something on the instance answers metadata requests itself (a local metadata proxy?).`
      : judgement.reason;
  return conclude(progress, batch, now, judgement.verdict, reason, {
    warnings: judgement.warnings,
    reading,
  });
}

function unlessPastDeadline(progress: InstanceProgress, batch: Batch, now: Date): InstanceProgress {
  if (!isPast(progress.stageDeadline, now)) return progress;
  return conclude(
    progress,
    batch,
    now,
    "unverified",
    `The probe gave no result within ${batch.settings.probeTimeoutSeconds} s.`,
  );
}
