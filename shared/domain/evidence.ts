import * as z from "zod";
import type { EventRef, InstanceResult, Trigger, Verdict } from "./model.js";
import { probeReadingSchema, triggerSchema, verdictSchema } from "./model.js";

/**
 * The standing truth of one instance: what the guard last concluded about it, when it last proved it from inside, by
 * what readings and what probe document, and which event (and actor) led there. One record per account, region and
 * instance, updated at every verdict, so an auditor can ask "which instances are proven, since when, by what?"
 * without reading a week of emails.
 */

/** One verdict in the record's history: the newest last, at most EVIDENCE_HISTORY_LENGTH of them. */
export const evidenceVerdictSchema = z.object({
  verdict: verdictSchema,
  at: z.string(),
  trigger: triggerSchema.optional(),
  eventId: z.string(),
  reason: z.string().max(300),
});
export type EvidenceVerdict = z.infer<typeof evidenceVerdictSchema>;

export const evidenceRecordSchema = z.object({
  account: z.string(),
  region: z.string(),
  instanceId: z.string(),
  verdict: verdictSchema,
  reason: z.string(),
  /** When the guard first recorded this instance: the Security Hub finding's CreatedAt. */
  firstSeenAt: z.string(),
  /** When the current verdict was reached. */
  verdictAt: z.string(),
  /** When the probe last ran on the instance and its readings were judged (pass or fail); unset: never proven. */
  lastProofAt: z.string().optional(),
  /** The readings of that last proof, per endpoint (IPv4 and IPv6) and path (listing, credentials, token). */
  reading: probeReadingSchema.optional(),
  /** SHA-256 of the probe document that produced `reading`, when SendProbe knows it (issue "Least power"). */
  probeDocumentHash: z.string().optional(),
  /** The event that led to the current verdict, and who made the call. */
  event: z.object({
    eventId: z.string(),
    eventName: z.string(),
    actor: z.string(),
    trigger: triggerSchema.optional(),
  }),
  /** Every verdict recorded for this instance (the flow ran for it this many times). */
  attempts: z.number().int().min(1),
  history: z.array(evidenceVerdictSchema),
  /** Set when the instance was found terminated: the record stays, closed, for the retention period. */
  closedAt: z.string().optional(),
});
export type EvidenceRecord = z.infer<typeof evidenceRecordSchema>;

export const EVIDENCE_HISTORY_LENGTH = 20;
/** A proof older than this is proven again by the sweep (REPROVE_AFTER_DAYS). */
export const DEFAULT_REPROVE_AFTER_DAYS = 30;
/** A closed record (terminated instance) stays this long (EVIDENCE_RETENTION_DAYS). */
export const DEFAULT_EVIDENCE_RETENTION_DAYS = 90;

/** What the verdict was reached from: the event's identity and who made the call, and the probe document used. */
export interface EvidenceContext {
  event: Pick<EventRef, "eventId" | "eventName" | "actor">;
  trigger?: Trigger;
  now: Date;
  probeDocumentHash?: string;
}

/**
 * Skipped because the instance is gone: it was terminated (or shutting down) before or while the guard looked. Its
 * record is closed, not deleted, so the evidence outlives the instance by the retention period.
 */
export function instanceGone(result: Pick<InstanceResult, "verdict" | "reason">): boolean {
  return result.verdict === "skipped" && /\bterminated\b|\bshutting-down\b/.test(result.reason);
}

/**
 * The record after one more verdict. A verdict without a probe reading keeps the last proof: an `unverified` after a
 * `pass` says the guard could not look again, not that the proof was wrong, and an auditor sees both.
 */
export function nextEvidence(
  previous: EvidenceRecord | undefined,
  result: InstanceResult & { account: string; region: string },
  context: EvidenceContext,
): EvidenceRecord {
  const at = context.now.toISOString();
  const proven = result.reading !== undefined && (result.verdict === "pass" || result.verdict === "fail");
  const entry: EvidenceVerdict = {
    verdict: result.verdict,
    at,
    ...(context.trigger ? { trigger: context.trigger } : {}),
    eventId: context.event.eventId,
    reason: result.reason.slice(0, 300),
  };
  const lastProof = proven
    ? {
        lastProofAt: at,
        reading: result.reading,
        ...(context.probeDocumentHash ? { probeDocumentHash: context.probeDocumentHash } : {}),
      }
    : {
        ...(previous?.lastProofAt ? { lastProofAt: previous.lastProofAt } : {}),
        ...(previous?.reading ? { reading: previous.reading } : {}),
        ...(previous?.probeDocumentHash ? { probeDocumentHash: previous.probeDocumentHash } : {}),
      };
  const closedAt = instanceGone(result) ? (previous?.closedAt ?? at) : undefined;
  return {
    account: result.account,
    region: result.region,
    instanceId: result.instanceId,
    verdict: result.verdict,
    reason: result.reason,
    firstSeenAt: previous?.firstSeenAt ?? at,
    verdictAt: at,
    ...lastProof,
    event: {
      eventId: context.event.eventId,
      eventName: context.event.eventName,
      actor: context.event.actor,
      ...(context.trigger ? { trigger: context.trigger } : {}),
    },
    attempts: (previous?.attempts ?? 0) + 1,
    history: [...(previous?.history ?? []), entry].slice(-EVIDENCE_HISTORY_LENGTH),
    ...(closedAt ? { closedAt } : {}),
  };
}

/** The record of an instance the sweep found terminated: closed now, with its last verdict kept as it was. */
export function closeEvidence(record: EvidenceRecord, now: Date): EvidenceRecord {
  return record.closedAt ? record : { ...record, closedAt: now.toISOString() };
}

/**
 * Should the sweep prove this instance again? Every doubt is: a verdict other than `pass` (an `exempt` one is left
 * to the sweep's exemption check), and a pass whose proof is older than `reproveAfterDays`. Closed records never.
 */
export function needsReproof(record: EvidenceRecord, now: Date, reproveAfterDays: number): boolean {
  if (record.closedAt) return false;
  if (record.verdict !== "pass") return true;
  const proofAt = Date.parse(record.lastProofAt ?? record.verdictAt);
  return Number.isNaN(proofAt) || now.getTime() - proofAt >= reproveAfterDays * 86_400_000;
}

/** Age of the proof in whole days, or undefined when the instance was never proven from inside. */
export function proofAgeDays(record: EvidenceRecord, now: Date): number | undefined {
  if (!record.lastProofAt) return undefined;
  return Math.floor((now.getTime() - Date.parse(record.lastProofAt)) / 86_400_000);
}

/** The verdicts an auditor reads as "proven good" versus the rest, for summaries. */
export function standingVerdicts(records: readonly EvidenceRecord[]): Record<Verdict, number> {
  const counts = Object.fromEntries(verdictSchema.options.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const r of records) if (!r.closedAt) counts[r.verdict]++;
  return counts;
}
