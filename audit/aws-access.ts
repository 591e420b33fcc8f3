import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EC2Client } from "@aws-sdk/client-ec2";
import { SFNClient } from "@aws-sdk/client-sfn";
import { type AuditClients, listEnabledRegions } from "./audit.js";

/** What the command needs from an AWS account, real or simulated. */
export interface AwsAccess {
  /** Fails fast, without a network call, when there is nothing to sign requests with. */
  checkCredentials(): Promise<void>;
  /** The region the SDK is configured for (AWS_REGION, the profile); throws "Region is missing" otherwise. */
  defaultRegion(): Promise<string>;
  /** The regions `--regions all` means. */
  enabledRegions(): Promise<string[]>;
  clientsFor(region: string): AuditClients;
  /** A state machine to use when --start is given none; undefined: discover it with ListStateMachines. */
  defaultStateMachineArn(region: string): string | undefined;
  close(): void;
}

/**
 * One set of clients per region, with the SDK's default credential chain. Unlike the Lambdas (whose state machine
 * owns retrying), a person waits on this command: the SDK retries throttling and network errors a few times with
 * backoff, and a connection that does not open within 5 s counts as unreachable rather than hanging the audit.
 */
const CLIENT_SETTINGS = {
  maxAttempts: 3,
  retryMode: "standard",
  requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
} as const;

/** Regional calls made before a region is known (DescribeRegions) go here when none is configured. */
const FALLBACK_REGION = "us-east-1";

export function sdkAccess(): AwsAccess {
  const clients = new Map<string, AuditClients>();
  const probe = new EC2Client(CLIENT_SETTINGS);
  const clientsFor = (region: string): AuditClients => {
    let set = clients.get(region);
    if (!set) {
      set = {
        ec2: new EC2Client({ ...CLIENT_SETTINGS, region }),
        cloudwatch: new CloudWatchClient({ ...CLIENT_SETTINGS, region }),
        sfn: new SFNClient({ ...CLIENT_SETTINGS, region }),
        now: () => new Date(),
      };
      clients.set(region, set);
    }
    return set;
  };
  return {
    checkCredentials: async () => {
      await probe.config.credentials();
    },
    defaultRegion: () => probe.config.region(),
    enabledRegions: async () => {
      const region = await probe.config.region().catch(() => FALLBACK_REGION);
      return listEnabledRegions(clientsFor(region).ec2);
    },
    clientsFor,
    defaultStateMachineArn: () => undefined,
    close: () => {
      probe.destroy();
      for (const set of clients.values()) {
        set.ec2.destroy();
        set.cloudwatch.destroy();
        set.sfn.destroy();
      }
    },
  };
}
