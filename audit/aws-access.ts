import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EC2Client } from "@aws-sdk/client-ec2";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { SFNClient } from "@aws-sdk/client-sfn";
import { STSClient } from "@aws-sdk/client-sts";
import { type OrganizationAccount, organizationsDirectory } from "../shared/aws/organization-directory.js";
import { type SpokeCredentials, spokeCredentialCache } from "../shared/aws/spoke-credentials.js";
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
  /** `--accounts all`: the organization's accounts (Organizations ListAccounts, every page). */
  listAccounts?(): Promise<OrganizationAccount[]>;
  /**
   * `--accounts`: clients in another account, holding a session of `roleName` there that the caller's credentials
   * assumed through the region's STS endpoint. Throws NonRetryableSpokeUnreachableError when it cannot be assumed.
   */
  clientsInAccount?(account: string, roleName: string, region: string): Promise<AuditClients>;
  close(): void;
}

/**
 * The two `--accounts` capabilities, with the guard's own code: the hub's directory reads ListAccounts, and the
 * hub's spoke credential cache assumes the role (regional STS, renewed before expiry). The session is named
 * `imdsv2-guard-audit-<time>`, so the member's CloudTrail shows that the audit looked.
 */
export function organizationAccess(
  settings: {
    maxAttempts?: number;
    retryMode?: string;
    requestHandler?: { connectionTimeout?: number; requestTimeout?: number };
    credentials?: { accessKeyId: string; secretAccessKey: string };
  },
  now: () => Date = () => new Date(),
): Required<Pick<AwsAccess, "listAccounts" | "clientsInAccount">> & { close(): void } {
  const destroyable: { destroy(): void }[] = [];
  const track = <T extends { destroy(): void }>(client: T): T => {
    destroyable.push(client);
    return client;
  };
  const sessionId = `audit-${now().toISOString().slice(0, 16).replace(/[-:]/g, "")}`;
  const caches = new Map<string, ReturnType<typeof spokeCredentialCache>>();
  const stsClients = new Map<string, STSClient>();
  const stsFor = (region: string) => {
    let client = stsClients.get(region);
    if (!client) {
      client = track(new STSClient({ ...settings, region, useGlobalEndpoint: false }));
      stsClients.set(region, client);
    }
    return client;
  };
  const cacheFor = (roleName: string) => {
    let cache = caches.get(roleName);
    if (!cache) {
      cache = spokeCredentialCache({ roleName, stsFor, now });
      caches.set(roleName, cache);
    }
    return cache;
  };
  const clientsWith = (region: string, credentials: SpokeCredentials): AuditClients => {
    const config = { ...settings, region, credentials };
    return {
      ec2: track(new EC2Client(config)),
      cloudwatch: track(new CloudWatchClient(config)),
      sfn: track(new SFNClient(config)),
      now,
    };
  };
  return {
    // Organizations is served from us-east-1 in the aws partition, whatever region the audit covers.
    listAccounts: () =>
      organizationsDirectory(track(new OrganizationsClient({ ...settings, region: "us-east-1" }))).accounts(),
    clientsInAccount: async (account, roleName, region) =>
      clientsWith(region, await cacheFor(roleName).credentialsFor({ account, region, eventId: sessionId })),
    close: () => {
      for (const c of destroyable) c.destroy();
    },
  };
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
  const organization = organizationAccess(CLIENT_SETTINGS);
  return {
    listAccounts: organization.listAccounts,
    clientsInAccount: organization.clientsInAccount,
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
      organization.close();
      for (const set of clients.values()) {
        set.ec2.destroy();
        set.cloudwatch.destroy();
        set.sfn.destroy();
      }
    },
  };
}
