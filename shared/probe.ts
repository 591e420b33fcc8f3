import type { Logger } from "@aws-lambda-powertools/logger";
import {
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { awsErrorCode, classifyAwsError, isWorthRetryingNextRound } from "./aws-errors.js";
import { conclude, deadlineAfter, isPast, withInstances } from "./batch.js";
import { type Batch, type InstanceProgress, type Platform, type ProbeReading, probeReadingSchema } from "./model.js";
import probeLinux from "./probes/probe-linux.sh";
import probeWindows from "./probes/probe-windows.ps1";
import { judgeProbe } from "./verdict.js";

export interface ProbeDeps {
  ssm: SSMClient;
  logger: Logger;
  now: () => Date;
}

/**
 * The only commands the guard ever sends: fixed scripts from this repository, with nothing from the event, the
 * instance or its tags spliced in. The documents are AWS-owned, which is what the prober's IAM policy pins.
 */
export const PROBE_DOCUMENTS: Record<Platform, { documentName: string; script: string }> = {
  linux: { documentName: "AWS-RunShellScript", script: probeLinux },
  windows: { documentName: "AWS-RunPowerShellScript", script: probeWindows },
};

/** SendCommand accepts at most 50 instance ids per call. */
const SEND_COMMAND_MAX_TARGETS = 50;
/** The probe's own requests time out after 3 s each; this only stops a hung shell. */
const PROBE_EXECUTION_TIMEOUT_SECONDS = 60;

/**
 * Sends the probe to the batch's instances in `send-probe`: one SendCommand per platform for up to 50 instances.
 * A throttled send leaves its instances in `send-probe` for the next round; AWS ran nothing, so sending again is safe.
 */
export async function sendProbeBatch(batch: Batch, deps: ProbeDeps): Promise<Batch> {
  const now = deps.now();
  const updates = new Map<string, InstanceProgress>();
  let throttled = false;
  for (const platform of ["linux", "windows"] as const) {
    const group = batch.instances.filter((i) => i.stage === "send-probe" && i.platform === platform);
    // Instances of a chunk SSM refused as a whole are sent one by one, so one bad target cannot sink the rest.
    const chunks = [
      ...group.filter((i) => i.sendAlone).map((i) => [i]),
      ...chunked(
        group.filter((i) => !i.sendAlone),
        SEND_COMMAND_MAX_TARGETS,
      ),
    ];
    for (const chunk of chunks) {
      const sent = await sendChunk(chunk, platform, batch, deps, now);
      throttled ||= sent.throttled;
      for (const [id, progress] of sent.updates) updates.set(id, progress);
    }
  }
  return withInstances(
    batch,
    batch.instances.map((i) => updates.get(i.instanceId) ?? i),
    throttled && "drain",
  );
}

async function sendChunk(
  chunk: InstanceProgress[],
  platform: Platform,
  batch: Batch,
  deps: ProbeDeps,
  now: Date,
): Promise<{ updates: Map<string, InstanceProgress>; throttled: boolean }> {
  const { documentName, script } = PROBE_DOCUMENTS[platform];
  const out = new Map<string, InstanceProgress>();
  try {
    const sent = await deps.ssm.send(
      new SendCommandCommand({
        DocumentName: documentName,
        InstanceIds: chunk.map((i) => i.instanceId),
        Parameters: { commands: [script], executionTimeout: [String(PROBE_EXECUTION_TIMEOUT_SECONDS)] },
        Comment: "imdsv2-guard: prove IMDSv1 is refused",
        TimeoutSeconds: Math.max(30, batch.settings.probeTimeoutSeconds),
      }),
    );
    const commandId = sent.Command?.CommandId;
    if (!commandId) throw new Error("SendCommand returned no CommandId");
    deps.logger.info("Sent probe", { eventId: batch.eventId, commandId, instanceIds: chunk.map((i) => i.instanceId) });
    for (const progress of chunk) {
      out.set(progress.instanceId, {
        ...progress,
        commandId,
        stage: "await-probe",
        stageDeadline: deadlineAfter(now, batch.settings.probeTimeoutSeconds),
      });
    }
  } catch (error) {
    if (isWorthRetryingNextRound(error)) {
      for (const progress of chunk) {
        out.set(
          progress.instanceId,
          isPast(progress.stageDeadline, now)
            ? conclude(
                progress,
                batch,
                now,
                "unverified",
                "SendCommand kept being refused (throttled or 5xx); the probe could not be sent.",
              )
            : progress,
        );
      }
      return { updates: out, throttled: true };
    }
    const reason = classifyAwsError(error, "SendCommand").message;
    // SendCommand refuses the whole call when one target is not ready (e.g. it went offline a moment ago).
    if (awsErrorCode(error) === "InvalidInstanceId" && chunk.length > 1) {
      for (const progress of chunk) out.set(progress.instanceId, { ...progress, sendAlone: true });
      return { updates: out, throttled: false };
    }
    for (const progress of chunk) {
      out.set(
        progress.instanceId,
        conclude(progress, batch, now, "unverified", `The probe could not be sent: ${reason}`),
      );
    }
  }
  return { updates: out, throttled: false };
}

function chunked<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

const STILL_RUNNING = new Set(["Pending", "InProgress", "Delayed"]);

/**
 * One poll of the probe's result per instance in `await-probe`. InvocationDoesNotExist right after SendCommand is
 * normal (the invocation is created asynchronously); a throttled poll stops this round and tries again next round.
 */
export async function checkProbeBatch(batch: Batch, deps: ProbeDeps): Promise<Batch> {
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

/**
 * The probe prints one line of JSON; anything else on stdout (a login banner, a profile script's echo) is ignored.
 * The last line that parses as a reading wins.
 */
export function parseProbeOutput(stdout: string): ProbeReading | undefined {
  const lines = stdout.split(/\r?\n/).reverse();
  for (const line of lines) {
    const trimmed = line.trim();
    if (!trimmed.startsWith("{")) continue;
    try {
      const parsed = probeReadingSchema.safeParse(JSON.parse(trimmed));
      if (parsed.success) return parsed.data;
    } catch {
      // not JSON: keep looking
    }
  }
  return undefined;
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
