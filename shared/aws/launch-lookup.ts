import type { EC2Client, Filter } from "@aws-sdk/client-ec2";
import { describeReservationsWhere } from "./ec2-instances.js";

/** An instance of a launch as DescribeInstances lists it: where it was launched, and when (its claim's occurrence). */
export interface LaunchedInstance {
  instanceId: string;
  launchTime: string;
  reservationId?: string;
  state?: string;
}

/** Every instance matching `filters`, with its reservation (describeReservationsWhere) and its launch time. */
export async function describeLaunched(ec2: EC2Client, filters: Filter[]): Promise<LaunchedInstance[]> {
  return (await describeReservationsWhere(ec2, filters)).flatMap((reservation) =>
    (reservation.Instances ?? []).flatMap((i) =>
      i.InstanceId && i.LaunchTime
        ? [
            {
              instanceId: i.InstanceId,
              launchTime: i.LaunchTime.toISOString(),
              ...(reservation.ReservationId ? { reservationId: reservation.ReservationId } : {}),
              ...(i.State?.Name ? { state: i.State.Name } : {}),
            },
          ]
        : [],
    ),
  );
}

/** The states a just-launched or just-started instance can be in when its signal arrives. */
const LAUNCHING_STATES = ["pending", "running"];

/**
 * What a CloudTrail record that lost its instance list (`responseElements` absent, null, or truncated as
 * `{"omitted": true}`: "CloudTrail record contents", AWS CloudTrail User Guide) still says about its launch, from its
 * `requestParameters`, in the order the guard tries them.
 */
export interface LaunchLookup {
  call: "RunInstances" | "CreateFleet";
  /** The call's idempotency token: DescribeInstances filter `client-token` finds the instances it launched. */
  clientToken?: string;
  /** The launch window: the record's eventTime (the call completed then; its instances launched just before). */
  eventTime: string;
  imageId?: string;
  launchTemplateIds?: string[];
  /** The most instances the call could have launched (RunInstances `maxCount`, CreateFleet's total capacity). */
  maxCount?: number;
}

/**
 * The instances of a launch whose record lost its instance list: by its client token first (exact: EC2 keeps the
 * token on each instance, "DescribeInstances" filter `client-token`); else by its window (`launch-time` in the
 * minute of the call or the one before) and what it launched (image, launch template), which only narrows: the
 * claims then keep an instance another signal already took from being counted twice. Never more than `maxCount`.
 */
export async function findLaunch(ec2: EC2Client, lookup: LaunchLookup): Promise<FoundLaunch> {
  const states: Filter = { Name: "instance-state-name", Values: LAUNCHING_STATES };
  if (lookup.clientToken) {
    const byToken = await describeLaunched(ec2, [{ Name: "client-token", Values: [lookup.clientToken] }, states]);
    if (byToken.length > 0) return { by: "client-token", instances: capped(byToken, lookup.maxCount) };
  }
  const narrowing: Filter[] = [
    ...(lookup.imageId ? [{ Name: "image-id", Values: [lookup.imageId] }] : []),
    ...(lookup.launchTemplateIds?.length
      ? [{ Name: "tag:aws:ec2launchtemplate:id", Values: lookup.launchTemplateIds }]
      : []),
  ];
  // Without anything to narrow by, a window alone would take every launch of that minute: not a launch.
  const at = Date.parse(lookup.eventTime);
  if (narrowing.length === 0 || Number.isNaN(at)) return { by: "window", instances: [] };
  const minutes = [at - 60_000, at].map((t) => `${new Date(t).toISOString().slice(0, 16)}*`);
  const found = await describeLaunched(ec2, [{ Name: "launch-time", Values: minutes }, states, ...narrowing]);
  return {
    by: "window",
    instances: capped(
      found.filter((i) => Date.parse(i.launchTime) <= at),
      lookup.maxCount,
    ),
  };
}

/**
 * The instances found, and how: by the client token (exactly the call's), or by the window (the call's, as far as
 * its image, template and minute tell: close, not certain, so its actor is given to no other execution's report).
 */
export interface FoundLaunch {
  by: "client-token" | "window";
  instances: LaunchedInstance[];
}

function capped(found: LaunchedInstance[], maxCount: number | undefined): LaunchedInstance[] {
  const sorted = [...found].sort((a, b) => (a.instanceId < b.instanceId ? -1 : 1));
  return maxCount !== undefined && maxCount > 0 ? sorted.slice(0, maxCount) : sorted;
}

/**
 * The launch an instance a state-change notification names belongs to: its reservation (one RunInstances call) and
 * the LaunchTime it shares with the others launched or started with it. Undefined while EC2 does not show it yet.
 */
export async function launchOf(ec2: EC2Client, instanceId: string): Promise<LaunchedInstance | undefined> {
  const [found] = await describeLaunched(ec2, [{ Name: "instance-id", Values: [instanceId] }]);
  return found;
}

/** The other instances of that launch: the same reservation, launched (or started) at the same LaunchTime. */
export async function launchSiblings(ec2: EC2Client, launch: LaunchedInstance): Promise<LaunchedInstance[]> {
  if (!launch.reservationId) return [launch];
  const found = await describeLaunched(ec2, [
    { Name: "reservation-id", Values: [launch.reservationId] },
    { Name: "instance-state-name", Values: LAUNCHING_STATES },
  ]);
  const same = found.filter((i) => i.launchTime === launch.launchTime);
  return same.some((i) => i.instanceId === launch.instanceId) ? same : [launch, ...same];
}
