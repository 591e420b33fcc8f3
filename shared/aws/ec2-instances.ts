import {
  DescribeInstancesCommand,
  type DescribeInstancesCommandOutput,
  type EC2Client,
  type Filter,
  type Instance,
  type Reservation,
} from "@aws-sdk/client-ec2";
import { classifyAwsError } from "./errors.js";

/**
 * Every reservation matching `filters`, following NextToken. EC2 answers by reservation ("DescribeInstances", Amazon
 * EC2 API Reference: `Reservations[].ReservationId`, `Reservations[].Instances`): the instances of one RunInstances
 * call share one. `onPage` gets the instances found so far (the audit's progress line). Filters (not `InstanceIds`)
 * throughout: with `InstanceIds`, one id EC2 does not know yet fails the whole call with InvalidInstanceID.NotFound;
 * with a filter it is simply absent and the rest go on.
 */
export async function describeReservationsWhere(
  ec2: EC2Client,
  filters: Filter[],
  onPage: (found: number) => void = () => undefined,
): Promise<Reservation[]> {
  const found: Reservation[] = [];
  let instances = 0;
  let nextToken: string | undefined;
  do {
    let page: DescribeInstancesCommandOutput;
    try {
      page = await ec2.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 1000, NextToken: nextToken }));
    } catch (error) {
      throw classifyAwsError(error, "DescribeInstances");
    }
    for (const reservation of page.Reservations ?? []) {
      found.push(reservation);
      instances += reservation.Instances?.length ?? 0;
    }
    onPage(instances);
    nextToken = page.NextToken;
  } while (nextToken);
  return found;
}

/** Every instance matching `filters` (describeReservationsWhere, without the reservations). */
export async function describeInstancesWhere(
  ec2: EC2Client,
  filters: Filter[],
  onPage: (found: number) => void = () => undefined,
): Promise<Instance[]> {
  return (await describeReservationsWhere(ec2, filters, onPage)).flatMap((r) => r.Instances ?? []);
}

/** The batch's instances by id, with one call per page of results. */
export async function describeInstancesById(
  ec2: EC2Client,
  instanceIds: readonly string[],
): Promise<Map<string, Instance>> {
  if (instanceIds.length === 0) return new Map();
  const instances = await describeInstancesWhere(ec2, [{ Name: "instance-id", Values: [...instanceIds] }]);
  return new Map(instances.filter((i) => i.InstanceId).map((i) => [i.InstanceId as string, i]));
}

/** Instances in these states will never run the probe again. */
export function isGone(instance: Instance): boolean {
  const state = instance.State?.Name;
  return state === "terminated" || state === "shutting-down";
}

/** Stopped instances keep their new metadata options but cannot run a command until someone starts them. */
export function isStopped(instance: Instance): boolean {
  const state = instance.State?.Name;
  return state === "stopped" || state === "stopping";
}

export function tagValue(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}
