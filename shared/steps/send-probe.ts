import type { Logger } from "@aws-lambda-powertools/logger";
import { SendCommandCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { awsErrorCode, classifyAwsError, isWorthRetryingNextRound } from "../aws/errors.js";
import type { ProbeSendKey, ProbeSends } from "../aws/probe-sends.js";
import { conclude, deadlineAfter, isPast, withInstances } from "../domain/batch.js";
import type { Batch, InstanceProgress, Platform } from "../domain/model.js";
import probeLinux from "../probes/probe-linux.sh";
import probeWindows from "../probes/probe-windows.ps1";

export interface SendProbeDeps {
  ssm: SSMClient;
  /** The send markers: a repeat of this step (Express runs it at least once) reuses the command it finds. */
  sends: ProbeSends;
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
export async function sendProbeBatch(batch: Batch, deps: SendProbeDeps): Promise<Batch> {
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
  deps: SendProbeDeps,
  now: Date,
): Promise<{ updates: Map<string, InstanceProgress>; throttled: boolean }> {
  const { documentName, script } = PROBE_DOCUMENTS[platform];
  const out = new Map<string, InstanceProgress>();
  const key: ProbeSendKey = {
    ledgerKey: batch.ledgerKey ?? batch.eventId,
    batchIndex: batch.batchIndex,
    platform,
    instanceIds: chunk.map((i) => i.instanceId),
  };
  const claim = await claimSend(deps, key);
  if (!claim.claimed) {
    if (claim.commandId) {
      deps.logger.info("Probe already sent by an earlier run of this step", { commandId: claim.commandId });
      for (const progress of chunk) out.set(progress.instanceId, sentTo(progress, claim.commandId, batch, now));
      return { updates: out, throttled: false };
    }
    // Claimed by a run that recorded no command: still sending, or it stopped after SendCommand. Sending again
    // could run the probe twice; waiting until the deadline says so instead.
    waitUntilDeadline(
      chunk,
      batch,
      now,
      out,
      "Another run of SendProbe claimed this probe but recorded no command: it may have run; its result is unknown.",
    );
    return { updates: out, throttled: false };
  }
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
    await recordSent(deps, key, commandId);
    for (const progress of chunk) out.set(progress.instanceId, sentTo(progress, commandId, batch, now));
  } catch (error) {
    // AWS ran nothing (or refused it): the next round, or a lone send, may claim this chunk again.
    await deps.sends.release(key).catch((e: unknown) => {
      deps.logger.warn("Could not release the probe's send marker", { error: String(e) });
    });
    if (isWorthRetryingNextRound(error)) {
      waitUntilDeadline(
        chunk,
        batch,
        now,
        out,
        "SendCommand kept being refused (throttled or 5xx); the probe could not be sent.",
      );
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

/**
 * The marker's claim. A ledger that cannot be written does not stop the probe: a send that is possibly repeated (only
 * if Express also runs this step twice) beats a verdict lost, as everywhere the guard meets its ledger down.
 */
async function claimSend(deps: SendProbeDeps, key: ProbeSendKey): ReturnType<ProbeSends["claim"]> {
  try {
    return await deps.sends.claim(key);
  } catch (error) {
    deps.logger.warn("Could not claim the probe's send marker; sending unguarded", { error: String(error) });
    return { claimed: true };
  }
}

/** Leaves each instance of the chunk for the next round, or, past its stage's deadline, ends it `unverified`. */
function waitUntilDeadline(
  chunk: readonly InstanceProgress[],
  batch: Batch,
  now: Date,
  out: Map<string, InstanceProgress>,
  reason: string,
): void {
  for (const progress of chunk) {
    out.set(
      progress.instanceId,
      isPast(progress.stageDeadline, now) ? conclude(progress, batch, now, "unverified", reason) : progress,
    );
  }
}

function sentTo(progress: InstanceProgress, commandId: string, batch: Batch, now: Date): InstanceProgress {
  return {
    ...progress,
    commandId,
    stage: "await-probe",
    stageDeadline: deadlineAfter(now, batch.settings.probeTimeoutSeconds),
  };
}

/**
 * The command went out; if its marker cannot say so, the batch still has the CommandId and goes on. Only a repeat of
 * this step would then find the marker without one, and end its instances unverified at the deadline.
 */
async function recordSent(deps: SendProbeDeps, key: ProbeSendKey, commandId: string): Promise<void> {
  try {
    await deps.sends.sent(key, commandId);
  } catch (error) {
    deps.logger.warn("Could not record the probe's CommandId on its marker", { commandId, error: String(error) });
  }
}

function chunked<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}
