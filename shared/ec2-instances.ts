import {
  DescribeInstancesCommand,
  type DescribeInstancesCommandOutput,
  type EC2Client,
  type Instance,
} from "@aws-sdk/client-ec2";
import { classifyAwsError } from "./aws-errors.js";

/**
 * Describes instances by id with one call per page. It filters on `instance-id` rather than passing `InstanceIds`,
 * because with `InstanceIds` a single not-yet-visible instance fails the whole call with InvalidInstanceID.NotFound;
 * with a filter the missing one is simply absent and the rest of the batch goes on.
 */
export async function describeInstancesById(
  ec2: EC2Client,
  instanceIds: readonly string[],
): Promise<Map<string, Instance>> {
  const found = new Map<string, Instance>();
  if (instanceIds.length === 0) return found;
  let nextToken: string | undefined;
  do {
    let page: DescribeInstancesCommandOutput;
    try {
      page = await ec2.send(
        new DescribeInstancesCommand({
          Filters: [{ Name: "instance-id", Values: [...instanceIds] }],
          NextToken: nextToken,
        }),
      );
    } catch (error) {
      throw classifyAwsError(error, "DescribeInstances");
    }
    for (const reservation of page.Reservations ?? []) {
      for (const instance of reservation.Instances ?? []) {
        if (instance.InstanceId) found.set(instance.InstanceId, instance);
      }
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return found;
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
