import type { LaunchLookup } from "../aws/launch-lookup.js";
import type { OrganizationDirectory } from "../aws/organization-directory.js";
import { LEDGER_RETENTION_SECONDS } from "../aws/result-store.js";
import { type AccountDefaultChange, weakenedDefaults } from "../domain/account-default-change.js";
import { type AccountPosture, accountPostureSchema } from "../domain/account-posture.js";
import {
  type AccountMembership,
  envelopeRefusal,
  membershipRefusal,
  namespacedLedgerKey,
  spokeSessionPrefix,
} from "../domain/confused-deputy.js";
import {
  asRecord,
  describeEvent,
  echo,
  LAUNCHING_SERVICES,
  type RejectedTarget,
  STATE_CHANGE_DETAIL_TYPE,
  SWEEP_SOURCE,
  text,
} from "../domain/event.js";
import {
  type EventRef,
  type FlowSettings,
  INSTANCE_ID_PATTERN,
  type InstanceProgress,
  type Trigger,
} from "../domain/model.js";
import { DEFAULT_ATTRIBUTION_TIMEOUT_SECONDS, type ResolveTargetsConfig } from "../runtime/config.js";

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
  /**
   * Organization mode: why the hub refused to act in the event's account (confused-deputy checks). Its instances
   * are in `rejected` with this reason, and no call is made in that account.
   */
  refused?: string;
  /**
   * The event's ledger key: where its batches store their results, and (hashed) the name of its execution, which
   * makes a redelivered event a no-op (Step Functions refuses a second execution of the same name).
   */
  dedupe: { key: string; expiresAt: string };
  /** A ModifyInstanceMetadataDefaults call that weakened the region's defaults: alerted, and set back if configured. */
  accountDefaultChange?: AccountDefaultChange;
  /**
   * State-change path: the report waits until `deadline` for the CloudTrail record's attribution, and never longer
   * than `seconds` after the verdicts (the wait's own timeout, which Step Functions needs as a number).
   */
  awaitAttribution?: { deadline: string; seconds: number };
  /**
   * A launch record that lost its instance list (`responseElements` absent, null, or `{"omitted": true}`): what it
   * still says about its launch. The intake (AdmitEvent) finds the instances from it with DescribeInstances and
   * replaces `problem` with the work; an execution started without the intake reports the problem.
   */
  lookup?: LaunchLookup;
  /** Routed on by the state machine: false only for ignored events. */
  notify: boolean;
  targetCount: number;
}

/**
 * Turns an EventBridge delivery (a CloudTrail record, or a sweep request) into batches of instances to check.
 * Never throws on bad input: a malformed event or instance id is reported as data, because a remediator that crashes
 * on input an attacker can shape (tag values, request parameters) is one they can switch off.
 */
export function resolveTargets(
  raw: unknown,
  config: ResolveTargetsConfig,
  now: Date,
  membership?: AccountMembership,
): ResolvedTargets {
  const resolved = resolveEvent(raw, config, now);
  return config.organization ? checkedForOrganization(resolved, raw, config, membership) : resolved;
}

/**
 * resolveTargets after asking the organization directory about the envelope's account (organization mode), so the
 * confused-deputy checks can refuse it. The one path from a raw event to work, for ResolveTargets and the intake.
 */
export async function resolveDelivery(
  raw: unknown,
  config: ResolveTargetsConfig,
  now: Date,
  directory: OrganizationDirectory | undefined,
): Promise<ResolvedTargets> {
  const account = text(asRecord(raw)?.account);
  const membership: AccountMembership | undefined = !config.organization
    ? undefined
    : !account
      ? { status: "not-member" }
      : directory
        ? await directory.membership(account)
        : // Failing closed: a hub deployed without a directory cannot tell a member account from any other.
          { status: "unavailable", reason: "this build reads no organization directory" };
  return resolveTargets(raw, config, now, membership);
}

/**
 * Organization mode: namespaces the ledger key, names the account, excludes the spoke role's own sessions, and
 * refuses an event whose envelope or account fails the confused-deputy checks (shared/domain/confused-deputy.ts).
 */
function checkedForOrganization(
  resolved: ResolvedTargets,
  raw: unknown,
  config: ResolveTargetsConfig,
  membership: AccountMembership = { status: "unavailable", reason: "the organization was not consulted" },
): ResolvedTargets {
  const org = config.organization;
  const envelope = asRecord(raw);
  const detail = asRecord(envelope?.detail);
  if (!org || !envelope || !detail) return resolved;
  const { account, region, eventId } = resolved.event;
  const keyed: ResolvedTargets = {
    ...resolved,
    event: {
      ...resolved.event,
      ...(membership.status === "member" && membership.name ? { accountName: membership.name } : {}),
    },
    dedupe: { ...resolved.dedupe, key: namespacedLedgerKey(account, region, eventId) },
  };
  const refusal = envelopeRefusal(envelope, detail) ?? membershipRefusal(account, membership, org);
  if (refusal) return refuse(keyed, refusal);
  if (resolved.trigger !== "sweep" && resolved.event.actor.startsWith(spokeSessionPrefix(account, org.spokeRoleName))) {
    return {
      ...keyed,
      batches: [],
      rejected: [],
      targetCount: 0,
      notify: false,
      ignored: "The call was made by the guard itself (its spoke role in this account).",
    };
  }
  return keyed;
}

/** The event's instances leave as `error` with the reason; nothing reaches the Map, so no call is made there. */
function refuse(resolved: ResolvedTargets, reason: string): ResolvedTargets {
  const why = `event refused, nothing was done in account ${resolved.event.account}: ${reason}`;
  const { ignored: _ignored, ...rest } = resolved;
  return {
    ...rest,
    batches: [],
    targetCount: 0,
    rejected: [...resolved.batches.flat().map((p) => ({ value: p.instanceId, reason: why })), ...resolved.rejected],
    notify: true,
    refused: reason,
    ...(resolved.batches.length === 0 && resolved.rejected.length === 0 ? { problem: `Refused: ${reason}.` } : {}),
  };
}

function resolveEvent(raw: unknown, config: ResolveTargetsConfig, now: Date): ResolvedTargets {
  const startedAt = now.toISOString();
  const envelope = asRecord(raw);
  const detail = asRecord(envelope?.detail);
  const event = describeEvent(raw);
  const dedupe = {
    key: event.eventId,
    expiresAt: String(Math.floor(now.getTime() / 1000) + LEDGER_RETENTION_SECONDS),
  };
  const base = {
    event,
    trigger: triggerOf(envelope, detail),
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
  // Before any other check: a failed call changed nothing, whatever else is odd about its record.
  if (detail.errorCode !== undefined && detail.errorCode !== null) {
    return { ...base, notify: false, ignored: `The call failed with ${echo(detail.errorCode)}; nothing changed.` };
  }

  if (envelope.source === SWEEP_SOURCE) return sweepTargets(base, detail, config);

  if (envelope.source === "aws.ec2" && envelope["detail-type"] === STATE_CHANGE_DETAIL_TYPE) {
    return stateChangeTargets(base, envelope, detail, config, now);
  }
  if (envelope.source !== "aws.ec2" || envelope["detail-type"] !== "AWS API Call via CloudTrail") {
    return {
      ...base,
      notify: true,
      problem: `Unsupported event: source ${echo(envelope.source)}, detail-type ${echo(envelope["detail-type"])}.`,
    };
  }
  const identityArn = text(asRecord(detail.userIdentity)?.arn) ?? "";
  if (identityArn.startsWith(config.guardRoleArnPrefix) || event.actor.startsWith(config.guardRoleArnPrefix)) {
    return { ...base, notify: false, ignored: "The call was made by the guard itself." };
  }

  switch (detail.eventName) {
    case "RunInstances":
      return runInstancesTargets(base, detail, config);
    case "StartInstances":
      return startInstancesTargets(base, detail, config);
    case "CreateFleet":
      return createFleetTargets(base, detail, config);
    case "ModifyInstanceMetadataDefaults":
      return accountDefaultTargets(base, detail);
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

type TargetsBase = Omit<ResolvedTargets, "notify">;

/** What the instances of an event need: a launch has no IMDSv1 history to protect; everything else may have one. */
function triggerOf(
  envelope: Record<string, unknown> | undefined,
  detail: Record<string, unknown> | undefined,
): Trigger {
  if (envelope?.source === SWEEP_SOURCE) return "sweep";
  if (envelope?.["detail-type"] === STATE_CHANGE_DETAIL_TYPE) return "state-change";
  switch (detail?.eventName) {
    case "RunInstances":
    case "CreateFleet":
      return "launch";
    case "StartInstances":
      return "start";
    case "ModifyInstanceMetadataDefaults":
      return "account-default";
    default:
      return "regression";
  }
}

function sweepTargets(
  base: TargetsBase,
  detail: Record<string, unknown>,
  config: ResolveTargetsConfig,
): ResolvedTargets {
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
  // The sweep sends instances EC2 reported with HttpTokens=optional, and re-proofs with what it read of theirs.
  const recorded = asRecord(detail.recordedHttpTokens) ?? {};
  return withTargets(sweepBase, ids, config, (id) => (typeof recorded[id] === "string" ? recorded[id] : "optional"));
}

/**
 * EC2's trail-free signal: an instance entered `pending`, at a launch or a start (the event does not say which, so
 * the safety gate applies, which a new instance passes: it has no IMDSv1 history). The report waits for the
 * CloudTrail record (actor, launch template) until `attributionTimeoutSeconds` after the event, then goes out without
 * it. The ledger key does not rely on the envelope id surviving forwarding: account, region, instance, state, time.
 */
function stateChangeTargets(
  base: TargetsBase,
  envelope: Record<string, unknown>,
  detail: Record<string, unknown>,
  config: ResolveTargetsConfig,
  now: Date,
): ResolvedTargets {
  if (typeof detail.state !== "string" || detail["instance-id"] === undefined) {
    return {
      ...base,
      notify: true,
      problem: "State-change notification without `detail.state` and `detail.instance-id`: the instance is unknown.",
    };
  }
  if (detail.state !== "pending") {
    return { ...base, notify: false, ignored: `State ${echo(detail.state)} needs nothing; only pending does.` };
  }
  const id = detail["instance-id"];
  const time = text(envelope.time);
  const at = time && !Number.isNaN(Date.parse(time)) ? Date.parse(time) : now.getTime();
  const waitSeconds = config.attributionTimeoutSeconds ?? DEFAULT_ATTRIBUTION_TIMEOUT_SECONDS;
  const deadline = new Date(at + waitSeconds * 1000);
  const keyed = {
    ...base,
    dedupe: {
      ...base.dedupe,
      key: `state#${base.event.account}#${base.event.region}#${typeof id === "string" ? id : echo(id)}#pending#${time ?? "unknown"}`,
    },
    awaitAttribution: { deadline: deadline.toISOString(), seconds: Math.max(1, Math.ceil(waitSeconds)) },
  };
  return withTargets(keyed, [id], config);
}

/** `responseElements.instancesSet.items[].instanceId`: where RunInstances and StartInstances list their instances. */
function instancesSetIds(detail: Record<string, unknown>): unknown[] | undefined {
  const items = asRecord(asRecord(detail.responseElements)?.instancesSet)?.items;
  return Array.isArray(items) ? items.map((item) => asRecord(item)?.instanceId) : undefined;
}

/** The service that made the call for someone, as the report names it ("EC2 Fleet"), if a service did. */
function invokingService(detail: Record<string, unknown>): string | undefined {
  const invokedBy = text(asRecord(detail.userIdentity)?.invokedBy);
  if (!invokedBy?.endsWith(".amazonaws.com")) return undefined;
  return LAUNCHING_SERVICES[invokedBy] ?? invokedBy;
}

/**
 * A launch. EC2 Fleet's own RunInstances records (invokedBy ec2fleet.amazonaws.com, as Karpenter's launches show)
 * have been seen without `responseElements`: such a record is reported as unreadable, never dropped, and says where
 * the instances are checked instead.
 */
function runInstancesTargets(
  base: TargetsBase,
  detail: Record<string, unknown>,
  config: ResolveTargetsConfig,
): ResolvedTargets {
  const items = asRecord(asRecord(detail.responseElements)?.instancesSet)?.items;
  if (Array.isArray(items)) {
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
  const service = invokingService(detail);
  return {
    ...base,
    notify: true,
    lookup: runInstancesLookup(detail),
    problem: `RunInstances record${service ? ` (made by ${service})` : ""} has no \`responseElements.instancesSet.items\`${truncation(detail)}, and DescribeInstances found no instance by its client token, launch window or image: the guard cannot tell which instances it launched. ${
      service === "EC2 Fleet"
        ? "If it belongs to an instant CreateFleet, that record's report covers them; otherwise the"
        : "The"
    } state-change trigger (if deployed) or the next sweep checks them.`,
  };
}

/** How the record lost its instance list: CloudTrail's truncation of an oversized field, or no response at all. */
function truncation(detail: Record<string, unknown>): string {
  return asRecord(detail.responseElements)?.omitted === true ? " (CloudTrail truncated it: `omitted: true`)" : "";
}

/** What a RunInstances record without its response still says about the launch (its `requestParameters`). */
function runInstancesLookup(detail: Record<string, unknown>): LaunchLookup {
  const params = asRecord(detail.requestParameters);
  const item = asRecord(listOf(asRecord(params?.instancesSet)?.items)[0]);
  const template = text(asRecord(params?.launchTemplate)?.launchTemplateId);
  const maxCount = Number(item?.maxCount);
  const clientToken = text(params?.clientToken);
  const imageId = text(item?.imageId) ?? text(params?.imageId);
  return {
    call: "RunInstances",
    eventTime: text(detail.eventTime) ?? "",
    ...(clientToken ? { clientToken } : {}),
    ...(imageId ? { imageId } : {}),
    ...(template ? { launchTemplateIds: [template] } : {}),
    ...(Number.isInteger(maxCount) && maxCount > 0 ? { maxCount } : {}),
  };
}

/** A stopped instance started again: it is an existing instance, with IMDSv1 history, so the safety gate applies. */
function startInstancesTargets(
  base: TargetsBase,
  detail: Record<string, unknown>,
  config: ResolveTargetsConfig,
): ResolvedTargets {
  const ids = instancesSetIds(detail);
  if (ids) return withTargets(base, ids, config);
  // A truncated response: the request names the same instances (`requestParameters.instancesSet.items[].instanceId`).
  const requested = listOf(asRecord(asRecord(detail.requestParameters)?.instancesSet)?.items).map(
    (item) => asRecord(item)?.instanceId,
  );
  if (requested.length > 0) return withTargets(base, requested, config);
  return {
    ...base,
    notify: true,
    problem: "StartInstances record has no `responseElements.instancesSet.items`: the started instances are unknown.",
  };
}

/**
 * EC2 Fleet. Only an `instant` fleet launches in the call and lists its instances in the record, as
 * `responseElements.CreateFleetResponse.fleetInstanceSet.item[].instanceIds.item[]` (CloudTrail's rendering of the
 * XML response: a single item may be an object rather than an array, and an id a string). `request` and `maintain`
 * fleets launch later; each of those launches is checked from its own record or state-change.
 */
function createFleetTargets(
  base: TargetsBase,
  detail: Record<string, unknown>,
  config: ResolveTargetsConfig,
): ResolvedTargets {
  const params = asRecord(detail.requestParameters);
  const request = asRecord(params?.CreateFleetRequest) ?? params;
  const type = text(request?.Type) ?? text(request?.type) ?? "maintain";
  if (type !== "instant") {
    return {
      ...base,
      notify: false,
      ignored: `CreateFleet of type ${echo(type)} launches its instances later; each launch is checked when it happens.`,
    };
  }
  const response = asRecord(asRecord(detail.responseElements)?.CreateFleetResponse);
  const sets = listOf(asRecord(response?.fleetInstanceSet)?.item);
  const ids = sets.flatMap((set) => listOf(asRecord(asRecord(set)?.instanceIds)?.item));
  if (ids.length > 0) return withTargets(base, ids, config);
  if (response && listOf(asRecord(response.errorSet)?.item).length > 0) {
    return { ...base, notify: false, ignored: "The instant fleet launched no instance (see its errorSet)." };
  }
  const templates = listOf(request?.LaunchTemplateConfigs)
    .map((c) => text(asRecord(asRecord(c)?.LaunchTemplateSpecification)?.LaunchTemplateId))
    .filter((id): id is string => id !== undefined);
  const capacity = Number(asRecord(request?.TargetCapacitySpecification)?.TotalTargetCapacity);
  const clientToken = text(request?.ClientToken);
  return {
    ...base,
    notify: true,
    lookup: {
      call: "CreateFleet",
      eventTime: text(detail.eventTime) ?? "",
      ...(clientToken ? { clientToken } : {}),
      ...(templates.length > 0 ? { launchTemplateIds: templates } : {}),
      ...(Number.isInteger(capacity) && capacity > 0 ? { maxCount: capacity } : {}),
    },
    problem: `Instant CreateFleet record lists no instance in \`responseElements.CreateFleetResponse.fleetInstanceSet\`${truncation(detail)}, and DescribeInstances found none by its launch window and launch template: the guard cannot tell which instances it launched; the state-change trigger (if deployed) or the next sweep checks them.`,
  };
}

/**
 * The region's IMDS defaults changed. A call that leaves them at HttpTokens=required (or only changes the hop limit)
 * needs nothing; one that weakens them has no instance to check and goes to the account-default alert instead.
 */
function accountDefaultTargets(base: TargetsBase, detail: Record<string, unknown>): ResolvedTargets {
  const params = asRecord(detail.requestParameters);
  const request = asRecord(params?.ModifyInstanceMetadataDefaultsRequest) ?? params;
  const httpTokens = text(request?.HttpTokens) ?? text(request?.httpTokens);
  const httpTokensEnforced = text(request?.HttpTokensEnforced) ?? text(request?.httpTokensEnforced);
  const weakened = weakenedDefaults(httpTokens, httpTokensEnforced);
  if (weakened.length === 0) {
    return { ...base, notify: false, ignored: "The call leaves the account default requiring IMDSv2." };
  }
  return {
    ...base,
    notify: true,
    accountDefaultChange: {
      ...(httpTokens ? { httpTokens } : {}),
      ...(httpTokensEnforced ? { httpTokensEnforced } : {}),
      weakened,
    },
  };
}

/** CloudTrail renders an XML list of one as the item itself: a list either way. */
function listOf(value: unknown): unknown[] {
  if (value === undefined || value === null || value === "") return [];
  return Array.isArray(value) ? value : [value];
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

/**
 * The intake found the instances of a record's launch (`lookup`): the record's targets, as if it had listed them.
 * The problem it would otherwise report goes.
 */
export function withFoundTargets(resolved: ResolvedTargets, instanceIds: string[], batchSize: number): ResolvedTargets {
  const { problem: _problem, lookup: _lookup, ...base } = resolved;
  return withTargets(base, instanceIds, { batchSize });
}

function withTargets(
  base: Omit<ResolvedTargets, "notify">,
  candidates: unknown[],
  config: Pick<ResolveTargetsConfig, "batchSize">,
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
