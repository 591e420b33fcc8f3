import type { Logger } from "@aws-lambda-powertools/logger";
import { SendCommandCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { awsErrorCode, classifyAwsError, isWorthRetryingNextRound } from "../aws/errors.js";
import { type DocumentCheck, verifyProbeDocument } from "../aws/probe-documents.js";
import type { ProbeSendKey, ProbeSends } from "../aws/probe-sends.js";
import { conclude, deadlineAfter, isPast, withInstances } from "../domain/batch.js";
import type { Batch, InstanceProgress, Platform } from "../domain/model.js";
import { probeDocumentName } from "../probes/probe-document.js";

export interface SendProbeDeps {
  ssm: SSMClient;
  /** The send markers: a repeat of this step (Express runs it at least once) reuses the command it finds. */
  sends: ProbeSends;
  logger: Logger;
  now: () => Date;
  /**
   * The guard's probe documents in the target account are `<prefix>-linux` and `<prefix>-windows`: the stack's
   * (single-account) or the spoke's (organization mode). The only documents the guard ever sends, and the only ones
   * its roles may send: fixed scripts from this repository, with no parameter, so nothing from the event, the
   * instance or its tags reaches the instance.
   */
  documentPrefix: string;
}

/** SendCommand accepts at most 50 instance ids per call. */
const SEND_COMMAND_MAX_TARGETS = 50;

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
    if (group.length === 0) continue;
    // Before anything is sent: the document in this account must be the probe this build was made with.
    const documentName = probeDocumentName(deps.documentPrefix, platform);
    const check = await checkDocument(documentName, platform, deps);
    if (check.kind !== "send") {
      if (check.kind === "retry") {
        throttled = true;
        waitUntilDeadline(group, batch, now, updates, check.reason);
      } else {
        for (const p of group) updates.set(p.instanceId, conclude(p, batch, now, "error", check.reason));
      }
      continue;
    }
    // Instances of a chunk SSM refused as a whole are sent one by one, so one bad target cannot sink the rest.
    const chunks = [
      ...group.filter((i) => i.sendAlone).map((i) => [i]),
      ...chunked(
        group.filter((i) => !i.sendAlone),
        SEND_COMMAND_MAX_TARGETS,
      ),
    ];
    for (const chunk of chunks) {
      const sent = await sendChunk(chunk, platform, { documentName, version: check.version }, batch, deps, now);
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

/**
 * The document check's outcome for the step: `send` the verified version; `retry` next round (throttled, 5xx);
 * `refuse`: the document is missing, different or unreadable, so nothing is sent and the instances end `error`.
 */
async function checkDocument(
  documentName: string,
  platform: Platform,
  deps: SendProbeDeps,
): Promise<{ kind: "send"; version: string } | { kind: "retry" | "refuse"; reason: string }> {
  let check: DocumentCheck;
  try {
    check = await verifyProbeDocument(deps.ssm, documentName, platform);
  } catch (error) {
    if (isWorthRetryingNextRound(error)) {
      return {
        kind: "retry",
        reason: "GetDocument kept being refused (throttled or 5xx); the probe could not be sent.",
      };
    }
    const reason = classifyAwsError(error, "GetDocument", documentName).message;
    return { kind: "refuse", reason: `The probe was not sent: its document could not be read (${reason}).` };
  }
  if (check.matches) return { kind: "send", version: check.version };
  deps.logger.error("The probe document differs from the one this guard was built with; nothing sent", {
    documentName,
    version: check.version,
    expected: check.expectedDigest,
    found: check.foundDigest,
  });
  return {
    kind: "refuse",
    reason:
      `The probe was not sent: document ${documentName} (version ${check.version}) is not the probe this guard was ` +
      `built with (sha256 ${check.foundDigest.slice(0, 12)}, expected ${check.expectedDigest.slice(0, 12)}). The ` +
      "stack or spoke that created it is out of date, or someone altered it: redeploy it (docs/upgrade.md).",
  };
}

async function sendChunk(
  chunk: InstanceProgress[],
  platform: Platform,
  document: { documentName: string; version: string },
  batch: Batch,
  deps: SendProbeDeps,
  now: Date,
): Promise<{ updates: Map<string, InstanceProgress>; throttled: boolean }> {
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
        DocumentName: document.documentName,
        // The version just checked: a version's content never changes, so what runs is what was verified.
        DocumentVersion: document.version,
        InstanceIds: chunk.map((i) => i.instanceId),
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
