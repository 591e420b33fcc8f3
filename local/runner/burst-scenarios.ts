import { bucketLowerBoundSeconds, EC2_REQUEST_BUCKETS } from "../sim/ec2-throttling.js";
import { parseScenario, type Scenario } from "./scenario.js";

const ACCOUNT = "111122223333";
const LAUNCHED_AT = Date.parse("2026-11-28T09:00:00Z");

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
      // As real records do: the LaunchTime of each instance (the simulated ones launch at the scenario's start).
      responseElements: {
        instancesSet: { items: instanceIds.map((instanceId) => ({ instanceId, launchTime: LAUNCHED_AT })) },
      },
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
 * The fastest any guard could enforce `n` instances in one account: one ModifyInstanceMetadataOptions each, on EC2's
 * bucket for that API (the table the simulator throttles by, local/sim/ec2-throttling.ts: 100 tokens, 5 a second),
 * so the n-th modify cannot happen before (n - 100) / 5 seconds.
 */
export function modifyLowerBoundSeconds(n: number): number {
  return bucketLowerBoundSeconds(EC2_REQUEST_BUCKETS.ModifyInstanceMetadataOptions, n);
}

/** The member accounts of the organization burst, each with the guard's spoke, in one region. */
export const BURST_ACCOUNTS = ["111100000000", "222200000000", "333300000000"] as const;

/**
 * One RunInstances event per member account, all delivered at the same moment, `n` instances split evenly over
 * the accounts: the organization-scale burst. Each account has its own EC2 token buckets, as in AWS.
 */
export function organizationBurstScenario(n: number, accounts: readonly string[] = BURST_ACCOUNTS): Scenario {
  const all = ids(n);
  const share = (i: number) => all.filter((_, k) => k % accounts.length === i);
  return parseScenario(
    {
      name: `organization-burst-${n}x${accounts.length}`,
      eventSpacingSeconds: 0,
      organization: {
        id: "o-a1b2c3d4e5",
        hubAccount: "999900000000",
        hubRegion: "eu-west-1",
        accounts: accounts.map((id, i) => ({ id, name: `member-${i + 1}`, regions: ["eu-west-1"], spoke: true })),
      },
      events: accounts.map((account, i) => {
        const event = runInstances(share(i), `burst-${account}`);
        const actor = `arn:aws:sts::${account}:assumed-role/Autoscaler/burst`;
        return {
          ...event,
          account,
          detail: {
            ...event.detail,
            recipientAccountId: account,
            awsRegion: "eu-west-1",
            userIdentity: { type: "AssumedRole", arn: actor },
          },
        };
      }),
      instances: accounts.flatMap((account, i) => share(i).map((id) => ({ id, account, region: "eu-west-1" }))),
    },
    "organization-burst",
  );
}
