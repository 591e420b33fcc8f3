import { createHash } from "node:crypto";
import type { EventRef } from "./model.js";

/** Source and detail-type of the inputs the reconciliation sweep starts executions with. */
export const SWEEP_SOURCE = "imdsv2-guard.sweep";
export const SWEEP_DETAIL_TYPE = "IMDSv1 Reconciliation";
/** EC2's own notification of an instance state change: no trail needed, and no actor in it. */
export const STATE_CHANGE_DETAIL_TYPE = "EC2 Instance State-change Notification";
/** The actor of a launch known only from EC2's state-change notification, until (unless) its record arrives. */
export const ACTOR_UNKNOWN = "actor unknown: no CloudTrail record";

export interface RejectedTarget {
  /** The offending value, truncated and JSON-encoded so a hostile string cannot shape the report. */
  value: string;
  reason: string;
}

const MAX_ECHOED_LENGTH = 80;

/** Who did what, when, from any input, however malformed: the report needs it even when nothing else is readable. */
export function describeEvent(raw: unknown): EventRef {
  const envelope = asRecord(raw);
  const detail = asRecord(envelope?.detail);
  const identity = asRecord(detail?.userIdentity);
  const isSweep = envelope?.source === SWEEP_SOURCE;
  if (envelope?.source === "aws.ec2" && envelope["detail-type"] === STATE_CHANGE_DETAIL_TYPE) {
    return {
      eventId: text(envelope.id) ?? fingerprint(raw),
      // Short: it ends up in email subjects, which SNS caps at 100 characters.
      eventName: `${text(detail?.state)?.slice(0, 20) ?? "unknown"} (EC2 state-change)`,
      eventTime: text(envelope.time) ?? "unknown",
      actor: ACTOR_UNKNOWN,
      account: text(envelope.account) ?? "unknown",
      region: text(envelope.region) ?? "unknown",
      source: "state-change",
    };
  }
  return {
    eventId: text(detail?.eventID) ?? text(detail?.sweepId) ?? text(envelope?.id) ?? fingerprint(raw),
    eventName: isSweep ? "ReconciliationSweep" : (text(detail?.eventName) ?? "unknown"),
    eventTime: text(detail?.eventTime) ?? text(envelope?.time) ?? "unknown",
    actor: isSweep ? "imdsv2-guard reconciliation sweep" : describeActor(identity),
    account: text(envelope?.account) ?? text(detail?.recipientAccountId) ?? "unknown",
    region: text(envelope?.region) ?? text(detail?.awsRegion) ?? "unknown",
    source: isSweep ? "sweep" : "cloudtrail",
    ...launchTemplateOf(asRecord(detail?.requestParameters)),
  };
}

/** RunInstances names its launch template as `launchTemplate: {launchTemplateId | launchTemplateName, version}`. */
function launchTemplateOf(params: Record<string, unknown> | undefined): Pick<EventRef, "launchTemplate"> {
  const lt = asRecord(params?.launchTemplate);
  if (!lt) return {};
  const id = text(lt.launchTemplateId);
  const name = text(lt.launchTemplateName);
  const version = text(lt.version) ?? (typeof lt.version === "number" ? String(lt.version) : undefined);
  if (!id && !name) return {};
  return { launchTemplate: { ...(id ? { id } : {}), ...(name ? { name } : {}), ...(version ? { version } : {}) } };
}

/** The services that launch instances for someone else, by the name CloudTrail puts in `userIdentity.invokedBy`. */
export const LAUNCHING_SERVICES: Readonly<Record<string, string>> = {
  "autoscaling.amazonaws.com": "Auto Scaling",
  "ec2fleet.amazonaws.com": "EC2 Fleet",
  "spotfleet.amazonaws.com": "Spot Fleet",
  "spot.amazonaws.com": "Spot",
  "eks.amazonaws.com": "EKS",
  "eks-nodegroup.amazonaws.com": "EKS managed node groups",
  "elasticbeanstalk.amazonaws.com": "Elastic Beanstalk",
  "cloudformation.amazonaws.com": "CloudFormation",
};

/**
 * Who made the call, in words. A call an AWS service made (`invokedBy` names it) says so first, then on whose
 * behalf: a 2016-era Auto Scaling record carries `type: Root` with `invokedBy: autoscaling.amazonaws.com`, and must
 * not read as someone signing in as root to launch an instance.
 */
function describeActor(identity: Record<string, unknown> | undefined): string {
  const invokedBy = text(identity?.invokedBy);
  const arn = text(identity?.arn);
  const type = text(identity?.type);
  if (invokedBy?.endsWith(".amazonaws.com")) {
    const service = LAUNCHING_SERVICES[invokedBy];
    const named = service ? `${service} (${invokedBy})` : `AWS service ${invokedBy}`;
    const account = text(identity?.accountId);
    const principal =
      type === "Root"
        ? account
          ? `account ${account}`
          : "the account"
        : (arn ?? (account ? `account ${account}` : undefined));
    return principal ? `${named}, on behalf of ${principal}` : named;
  }
  if (arn) return arn;
  if (invokedBy) return `${type ?? "AWSService"}:${invokedBy}`;
  return type ?? "unknown";
}

/** A stable id for an event that has none, so duplicates of even a malformed event are recognised. */
function fingerprint(raw: unknown): string {
  let serialized: string;
  try {
    serialized = JSON.stringify(raw) ?? String(raw);
  } catch {
    serialized = String(raw);
  }
  return `unidentified-${createHash("sha256").update(serialized).digest("hex").slice(0, 32)}`;
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** Strings only, capped: identifiers from the event end up in notifications and log lines. */
export function text(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value.slice(0, 512) : undefined;
}

/**
 * A value as it may be shown to people: JSON-encoded (a newline or a control character stays visible as its escape)
 * and truncated. A string loses the JSON quotes, which read as part of the value in a report: `i-bad`, not `"i-bad"`.
 */
export function echo(value: unknown): string {
  let shown: string;
  try {
    shown =
      typeof value === "string"
        ? value === ""
          ? "(empty string)"
          : JSON.stringify(value).slice(1, -1)
        : (JSON.stringify(value) ?? "undefined");
  } catch {
    shown = "(unserializable)";
  }
  return shown.length > MAX_ECHOED_LENGTH ? `${shown.slice(0, MAX_ECHOED_LENGTH)}…` : shown;
}

/**
 * The LaunchTime a RunInstances record carries for each instance it launched (`responseElements.instancesSet.items[]
 * .launchTime`, epoch milliseconds), as DescribeInstances would give it: the claim's key without a read. StartInstances
 * records carry none (a start sets a new LaunchTime), so those instances are still described.
 */
export function recordedLaunchTimes(raw: unknown): Map<string, string> {
  const detail = asRecord(asRecord(raw)?.detail);
  const out = new Map<string, string>();
  if (detail?.eventName !== "RunInstances") return out;
  const items = asRecord(asRecord(detail.responseElements)?.instancesSet)?.items;
  for (const item of Array.isArray(items) ? items : []) {
    const id = asRecord(item)?.instanceId;
    const at = asRecord(item)?.launchTime;
    if (typeof id === "string" && typeof at === "number" && Number.isFinite(at))
      out.set(id, new Date(at).toISOString());
  }
  return out;
}
