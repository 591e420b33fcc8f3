import { parseScenario, type Scenario } from "./scenario.js";

const ACCOUNT = "111122223333";

function runInstances(instanceIds: string[], eventId: string) {
  return {
    version: "0",
    id: `delivery-${eventId}`,
    "detail-type": "AWS API Call via CloudTrail",
    source: "aws.ec2",
    account: ACCOUNT,
    region: "eu-west-1",
    time: "2026-11-28T09:00:00Z",
    detail: {
      eventName: "RunInstances",
      eventSource: "ec2.amazonaws.com",
      eventID: eventId,
      eventTime: "2026-11-28T09:00:00Z",
      userIdentity: { type: "AssumedRole", arn: `arn:aws:sts::${ACCOUNT}:assumed-role/Autoscaler/burst` },
      responseElements: { instancesSet: { items: instanceIds.map((instanceId) => ({ instanceId })) } },
    },
  };
}

function ids(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `i-0b${i.toString(16).padStart(15, "0")}`);
}

/** One RunInstances event that launches `n` instances at once. */
export function burstScenario(n: number): Scenario {
  const all = ids(n);
  return parseScenario(
    { name: `burst-${n}`, events: [runInstances(all, "burst")], instances: all.map((id) => ({ id })) },
    "burst",
  );
}

/** `n` single-instance RunInstances events delivered at the same moment. */
export function stormScenario(n: number): Scenario {
  const all = ids(n);
  return parseScenario(
    {
      name: `storm-${n}`,
      eventSpacingSeconds: 0,
      events: all.map((id, i) => runInstances([id], `storm-${i}`)),
      instances: all.map((id) => ({ id })),
    },
    "storm",
  );
}

/**
 * The fastest any guard could enforce `n` instances: EC2's ModifyInstanceMetadataOptions bucket holds 100 tokens and
 * refills 5 per second, so the n-th modify cannot happen before (n - 100) / 5 seconds.
 */
export function modifyLowerBoundSeconds(n: number): number {
  return Math.max(0, n - 100) / 5;
}
