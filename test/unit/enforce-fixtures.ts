import { CloudWatchServiceException } from "@aws-sdk/client-cloudwatch";
import { EC2ServiceException, type Instance, type InstanceStateName, type Tag } from "@aws-sdk/client-ec2";
import type { Batch, FlowSettings, InstanceProgress, Trigger } from "../../shared/model.js";

/** Shapes shared by the Enforce tests that need the safety gate and attribution (gate, attribution). */

export const STARTED_AT = "2026-11-28T10:00:00.000Z";
export const NOW = new Date("2026-11-28T10:00:30.000Z");

export const SETTINGS: FlowSettings = {
  mode: "enforce",
  exemptTagKey: "imdsv2-guard:exempt",
  exemptUntilTagKey: "imdsv2-guard:exempt-until",
  applyTimeoutSeconds: 300,
  managedTimeoutSeconds: 600,
  probeTimeoutSeconds: 300,
  onV1Usage: "hold",
  v1UsageLookbackHours: 24,
  watchRejectedSeconds: 900,
};

export const ID_A = "i-0a1b2c3d4e5f60001";
export const ID_B = "i-0a1b2c3d4e5f60002";
export const ID_C = "i-0a1b2c3d4e5f60003";

export function batchOf(
  instances: InstanceProgress[],
  trigger: Trigger,
  settings: Partial<FlowSettings> = {},
  eventId = "evt-gate",
): Batch {
  return { eventId, trigger, settings: { ...SETTINGS, ...settings }, startedAt: STARTED_AT, instances };
}

export function enforcing(instanceId: string, extra: Partial<InstanceProgress> = {}): InstanceProgress {
  return { instanceId, stage: "enforce", notes: [], ...extra };
}

export interface InstanceShape {
  state?: InstanceStateName;
  httpTokens?: "optional" | "required";
  imageId?: string;
  tags?: Tag[];
}

export function ec2Instance(instanceId: string, shape: InstanceShape = {}): Instance {
  return {
    InstanceId: instanceId,
    ...(shape.imageId ? { ImageId: shape.imageId } : {}),
    State: { Name: shape.state ?? "running" },
    MetadataOptions: {
      State: "applied",
      HttpTokens: shape.httpTokens ?? "optional",
      HttpPutResponseHopLimit: 2,
      HttpEndpoint: "enabled",
    },
    Tags: shape.tags ?? [{ Key: "Name", Value: "web" }],
  };
}

export function ec2Error(name: string, status: number): EC2ServiceException {
  return new EC2ServiceException({
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
    message: `${name} (simulated)`,
  });
}

export function cloudWatchError(name: string, status: number): CloudWatchServiceException {
  return new CloudWatchServiceException({
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
    message: `${name} (simulated)`,
  });
}

export function only(batch: Batch, instanceId: string): InstanceProgress {
  const found = batch.instances.find((i) => i.instanceId === instanceId);
  if (!found) throw new Error(`${instanceId} is not in the batch`);
  return found;
}
