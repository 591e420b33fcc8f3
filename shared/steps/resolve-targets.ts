import { LEDGER_RETENTION_SECONDS } from "../aws/result-store.js";
import { type AccountPosture, accountPostureSchema } from "../domain/account-posture.js";
import { asRecord, describeEvent, echo, type RejectedTarget, SWEEP_SOURCE } from "../domain/event.js";
import {
  type EventRef,
  type FlowSettings,
  INSTANCE_ID_PATTERN,
  type InstanceProgress,
  type Trigger,
} from "../domain/model.js";
import type { ResolveTargetsConfig } from "../runtime/config.js";

export interface ResolvedTargets {
  event: EventRef;
  trigger: Trigger;
  /** Set by a sweep request (which read it); otherwise the AssessAccount step reads it. */
  accountPosture?: AccountPosture;
  /** The sweep's view of the fleet, for its notification. */
  fleet?: { allowingImdsV1: number; exempt: number };
  settings: FlowSettings;
  startedAt: string;
  batches: InstanceProgress[][];
  rejected: RejectedTarget[];
  /** Why the event needs no work (a failed call, the guard's own call). Such events are not notified. */
  ignored?: string;
  /** What is wrong with the event itself; such events end in an `error` notification. */
  problem?: string;
  /** The ledger entry that makes a redelivered event a no-op (see ClaimEvent in the ASL). */
  dedupe: { key: string; expiresAt: string };
  /** Routed on by the state machine: false only for ignored events. */
  notify: boolean;
  targetCount: number;
}

/**
 * Turns an EventBridge delivery (a CloudTrail record, or a sweep request) into batches of instances to check.
 * Never throws on bad input: a malformed event or instance id is reported as data, because a remediator that crashes
 * on input an attacker can shape (tag values, request parameters) is one they can switch off.
 */
export function resolveTargets(raw: unknown, config: ResolveTargetsConfig, now: Date): ResolvedTargets {
  const startedAt = now.toISOString();
  const envelope = asRecord(raw);
  const detail = asRecord(envelope?.detail);
  const event = describeEvent(raw);
  const dedupe = {
    key: event.eventId,
    expiresAt: String(Math.floor(now.getTime() / 1000) + LEDGER_RETENTION_SECONDS),
  };
  const trigger: Trigger =
    envelope?.source === SWEEP_SOURCE ? "sweep" : detail?.eventName === "RunInstances" ? "launch" : "regression";
  const base = {
    event,
    trigger,
    settings: config.settings,
    startedAt,
    dedupe,
    batches: [],
    rejected: [],
    targetCount: 0,
  };

  if (!envelope || !detail) {
    return { ...base, notify: true, problem: "Event is not an EventBridge event with a `detail` object." };
  }

  if (envelope.source === SWEEP_SOURCE) {
    const ids = detail.instanceIds;
    if (!Array.isArray(ids)) {
      return { ...base, notify: true, problem: "Sweep request has no `detail.instanceIds` array." };
    }
    const posture = accountPostureSchema.safeParse(detail.accountPosture);
    const fleet = asRecord(detail.fleet);
    const sweepBase = {
      ...base,
      ...(posture.success ? { accountPosture: posture.data } : {}),
      ...(fleet && typeof fleet.allowingImdsV1 === "number" && typeof fleet.exempt === "number"
        ? { fleet: { allowingImdsV1: fleet.allowingImdsV1, exempt: fleet.exempt } }
        : {}),
    };
    // A sweep that found nothing to do still reports: the account's posture is news too.
    if (ids.length === 0) return { ...sweepBase, notify: true };
    // The sweep sends only instances EC2 reported with HttpTokens=optional.
    return withTargets(sweepBase, ids, config, () => "optional");
  }

  if (envelope.source !== "aws.ec2" || envelope["detail-type"] !== "AWS API Call via CloudTrail") {
    return {
      ...base,
      notify: true,
      problem: `Unsupported event: source ${echo(envelope.source)}, detail-type ${echo(envelope["detail-type"])}.`,
    };
  }
  if (detail.errorCode !== undefined && detail.errorCode !== null) {
    return { ...base, notify: false, ignored: `The call failed with ${echo(detail.errorCode)}; nothing changed.` };
  }
  if (event.actor.startsWith(config.guardRoleArnPrefix)) {
    return { ...base, notify: false, ignored: "The call was made by the guard itself." };
  }

  switch (detail.eventName) {
    case "RunInstances": {
      const items = asRecord(asRecord(detail.responseElements)?.instancesSet)?.items;
      if (!Array.isArray(items)) {
        return { ...base, notify: true, problem: "RunInstances event has no `responseElements.instancesSet.items`." };
      }
      // Each item records the instance's metadata options as EC2 launched it, before the guard could act.
      const recorded = new Map<unknown, unknown>(
        items.map((item) => [asRecord(item)?.instanceId, asRecord(asRecord(item)?.metadataOptions)?.httpTokens]),
      );
      return withTargets(
        base,
        items.map((item) => asRecord(item)?.instanceId),
        config,
        (id) => recorded.get(id),
      );
    }
    case "ModifyInstanceMetadataOptions": {
      const id = modifiedInstanceId(asRecord(detail.requestParameters));
      if (id === undefined) {
        return {
          ...base,
          notify: true,
          problem: "ModifyInstanceMetadataOptions event names no instance in `requestParameters`.",
        };
      }
      return withTargets(base, [id], config, () => modifiedHttpTokens(asRecord(detail.requestParameters)));
    }
    default:
      return { ...base, notify: true, problem: `Unsupported eventName ${echo(detail.eventName)}.` };
  }
}

/**
 * CloudTrail nests this request as `ModifyInstanceMetadataOptionsRequest.InstanceId`; older records and hand-written
 * test events use a flat `instanceId` or `InstanceId`. Accept all three.
 */
function modifiedInstanceId(params: Record<string, unknown> | undefined): unknown {
  if (!params) return undefined;
  const nested = asRecord(params.ModifyInstanceMetadataOptionsRequest);
  return nested?.InstanceId ?? nested?.instanceId ?? params.InstanceId ?? params.instanceId;
}

/** The HttpTokens value the call set, when it set one. */
function modifiedHttpTokens(params: Record<string, unknown> | undefined): unknown {
  if (!params) return undefined;
  const nested = asRecord(params.ModifyInstanceMetadataOptionsRequest);
  return nested?.HttpTokens ?? nested?.httpTokens ?? params.HttpTokens ?? params.httpTokens;
}

const HTTP_TOKENS_VALUES = new Set(["optional", "required"]);

function withTargets(
  base: Omit<ResolvedTargets, "notify">,
  candidates: unknown[],
  config: ResolveTargetsConfig,
  recordedHttpTokens: (instanceId: string) => unknown = () => undefined,
): ResolvedTargets {
  const seen = new Set<string>();
  const valid: string[] = [];
  const rejected: RejectedTarget[] = [];
  for (const candidate of candidates) {
    if (typeof candidate !== "string" || !INSTANCE_ID_PATTERN.test(candidate)) {
      rejected.push({ value: echo(candidate), reason: "not an instance id (expected ^i-[0-9a-f]{8,17}$)" });
      continue;
    }
    if (seen.has(candidate)) continue;
    seen.add(candidate);
    valid.push(candidate);
  }
  const batches: InstanceProgress[][] = [];
  for (let i = 0; i < valid.length; i += config.batchSize) {
    batches.push(
      valid.slice(i, i + config.batchSize).map((instanceId): InstanceProgress => {
        const recorded = recordedHttpTokens(instanceId);
        // Only EC2's two values are kept: anything else in an event is not a fact the guard can decide from.
        return typeof recorded === "string" && HTTP_TOKENS_VALUES.has(recorded)
          ? { instanceId, stage: "enforce", notes: [], recordedHttpTokens: recorded }
          : { instanceId, stage: "enforce", notes: [] };
      }),
    );
  }
  const problem = valid.length === 0 && rejected.length === 0 ? "The event names no instances." : undefined;
  return {
    ...base,
    batches,
    rejected,
    targetCount: valid.length,
    notify: true,
    ...(problem ? { problem } : {}),
  };
}
