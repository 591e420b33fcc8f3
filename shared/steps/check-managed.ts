import type { Logger } from "@aws-lambda-powertools/logger";
import type { EC2Client } from "@aws-sdk/client-ec2";
import { DescribeInstanceInformationCommand, type InstanceInformation, type SSMClient } from "@aws-sdk/client-ssm";
import { describeInstancesById, isGone, isStopped } from "../aws/ec2-instances.js";
import { classifyAwsError } from "../aws/errors.js";
import { conclude, deadlineAfter, isPast, readOrDrain, withInstances } from "../domain/batch.js";
import type { Batch, InstanceProgress, Platform } from "../domain/model.js";

export interface CheckManagedDeps {
  ec2: EC2Client;
  ssm: SSMClient;
  logger: Logger;
  now: () => Date;
}

/**
 * One poll of "can SSM run a command on it?" for the batch's instances in `await-managed`. A fresh instance takes a
 * minute or two to register its SSM Agent; an instance without the agent or an instance profile never does, and ends
 * `unverified` at the deadline with that reason, rather than `pass` on the API's word. EC2 is asked only about the
 * instances SSM does not show online (were they stopped or terminated?), which spares EC2's shared read bucket.
 */
export async function checkManagedBatch(batch: Batch, deps: CheckManagedDeps): Promise<Batch> {
  const now = deps.now();
  const waiting = batch.instances.filter((i) => i.stage === "await-managed").map((i) => i.instanceId);
  const outcome = await readOrDrain(
    batch,
    "await-managed",
    (p) => notManagedInTime(p, batch, now, undefined),
    async () => {
      const registered = await describeRegistrations(deps.ssm, waiting);
      const offline = waiting.filter((id) => registered.get(id)?.PingStatus !== "Online");
      return { registered, described: await describeInstancesById(deps.ec2, offline) };
    },
  );
  if ("drained" in outcome) return outcome.drained;
  const { registered, described } = outcome.read;
  const next = batch.instances.map((progress): InstanceProgress => {
    if (progress.stage !== "await-managed") return progress;
    const registration = registered.get(progress.instanceId);
    if (registration?.PingStatus === "Online") {
      const platform = platformOf(registration);
      if (!platform) {
        return conclude(
          progress,
          batch,
          now,
          "unverified",
          `No probe for platform ${registration.PlatformType ?? "unknown"}.`,
        );
      }
      return {
        ...progress,
        platform,
        stage: "send-probe",
        stageDeadline: deadlineAfter(now, batch.settings.probeTimeoutSeconds),
      };
    }
    const instance = described.get(progress.instanceId);
    if (!instance || isGone(instance)) {
      return conclude(progress, batch, now, "skipped", "Instance was terminated before it could be probed.");
    }
    if (isStopped(instance)) {
      return conclude(
        progress,
        batch,
        now,
        "unverified",
        `Instance is ${instance.State?.Name}; it cannot run the probe.`,
      );
    }
    return notManagedInTime(progress, batch, now, registration);
  });
  return withInstances(batch, next);
}

/** Still waiting for the agent, unless the deadline has passed. */
function notManagedInTime(
  progress: InstanceProgress,
  batch: Batch,
  now: Date,
  registration: InstanceInformation | undefined,
): InstanceProgress {
  if (!isPast(progress.stageDeadline, now)) return progress;
  const seen = registration ? `its SSM ping status is ${registration.PingStatus}` : "it never registered with SSM";
  return conclude(
    progress,
    batch,
    now,
    "unverified",
    `The SSM Agent was not online within ${batch.settings.managedTimeoutSeconds} s (${seen}); the instance needs the agent and an instance profile with AmazonSSMManagedInstanceCore.`,
  );
}

async function describeRegistrations(ssm: SSMClient, instanceIds: string[]): Promise<Map<string, InstanceInformation>> {
  const found = new Map<string, InstanceInformation>();
  if (instanceIds.length === 0) return found;
  let nextToken: string | undefined;
  do {
    try {
      const page = await ssm.send(
        new DescribeInstanceInformationCommand({
          Filters: [{ Key: "InstanceIds", Values: instanceIds }],
          NextToken: nextToken,
        }),
      );
      for (const info of page.InstanceInformationList ?? []) {
        if (info.InstanceId) found.set(info.InstanceId, info);
      }
      nextToken = page.NextToken;
    } catch (error) {
      throw classifyAwsError(error, "DescribeInstanceInformation");
    }
  } while (nextToken);
  return found;
}

function platformOf(info: InstanceInformation): Platform | undefined {
  if (info.PlatformType === "Linux") return "linux";
  if (info.PlatformType === "Windows") return "windows";
  return undefined;
}
