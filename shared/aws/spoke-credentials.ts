import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import type { SpokeTarget } from "../domain/confused-deputy.js";
import { NonRetryableSpokeUnreachableError } from "../domain/errors.js";
import { clientConfig } from "./clients/client-config.js";
import { awsErrorCode, classifyAwsError, isWorthRetryingNextRound } from "./errors.js";

/** A spoke session's credentials, as SDK clients take them (static, with their expiry). */
export interface SpokeCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export type { SpokeTarget };

/** Credentials for a target account and region; throws NonRetryableSpokeUnreachableError when the role cannot be assumed. */
export interface SpokeAccess {
  credentialsFor(target: SpokeTarget): Promise<SpokeCredentials>;
}

/** STS's RoleSessionName: 2 to 64 characters of [\w+=,.@-]. */
const SESSION_NAME_MAX = 64;
const SESSION_NAME_PREFIX = "imdsv2-guard-";

/**
 * The RoleSessionName of the guard's session for an event: the spoke's CloudTrail then shows, on every call the
 * guard made, which event it acted for. Characters STS refuses become `-`; the id is cut to fit 64 characters.
 */
export function roleSessionName(eventId: string): string {
  const safe = eventId.replace(/[^\w+=,.@-]/g, "-");
  return `${SESSION_NAME_PREFIX}${safe}`.slice(0, SESSION_NAME_MAX);
}

export interface SpokeCredentialCacheOptions {
  /** The spoke role's name, the same in every account (infra/spoke/spoke-account.yml). */
  roleName: string;
  partition?: string;
  /** One STS client per region: the regional endpoint, because v1 tokens of the global one fail in opt-in regions. */
  stsFor?: (region: string) => STSClient;
  now?: () => Date;
  /** Assume again this long before the session expires, so no call runs on credentials about to lapse. */
  refreshBeforeSeconds?: number;
  /** The hub's function roles hold Lambda session credentials, so this is role chaining: at most one hour. */
  durationSeconds?: number;
  maxEntries?: number;
}

/**
 * Assumes the spoke role in the event's account through the STS endpoint of the event's region, and keeps the
 * credentials per account, region and event until shortly before they expire: the polls of one execution reuse one
 * session, and every event has its own session name. Errors are classified: throttling and 5xx are retryable (the
 * state machine backs off); anything else (AccessDenied: no spoke, or an SCP denying the region) is
 * NonRetryableSpokeUnreachableError, which the steps turn into an `error` verdict.
 */
export function spokeCredentialCache(options: SpokeCredentialCacheOptions): SpokeAccess {
  const partition = options.partition ?? "aws";
  const now = options.now ?? (() => new Date());
  const refreshMs = (options.refreshBeforeSeconds ?? 300) * 1000;
  const maxEntries = options.maxEntries ?? 256;
  const stsClients = new Map<string, STSClient>();
  const stsFor =
    options.stsFor ??
    ((region: string) => {
      let client = stsClients.get(region);
      if (!client) {
        client = new STSClient({ ...clientConfig, region, useGlobalEndpoint: false });
        stsClients.set(region, client);
      }
      return client;
    });
  const cache = new Map<string, SpokeCredentials>();

  return {
    async credentialsFor(target) {
      const key = `${target.account}#${target.region}#${target.eventId}`;
      const cached = cache.get(key);
      if (cached && cached.expiration.getTime() - refreshMs > now().getTime()) return cached;
      cache.delete(key);
      const roleArn = `arn:${partition}:iam::${target.account}:role/${options.roleName}`;
      let credentials: SpokeCredentials;
      try {
        const out = await stsFor(target.region).send(
          new AssumeRoleCommand({
            RoleArn: roleArn,
            RoleSessionName: roleSessionName(target.eventId),
            DurationSeconds: options.durationSeconds ?? 3600,
          }),
        );
        const c = out.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
          throw Object.assign(new Error("AssumeRole returned no credentials"), { name: "InvalidResponse" });
        }
        credentials = {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          sessionToken: c.SessionToken,
          expiration: new Date(c.Expiration),
        };
      } catch (error) {
        if (isWorthRetryingNextRound(error)) throw classifyAwsError(error, `AssumeRole ${roleArn}`);
        throw new NonRetryableSpokeUnreachableError(
          `cannot assume the spoke role in ${target.account}/${target.region}: ${awsErrorCode(error) ?? "UnknownError"}`,
          { cause: error },
        );
      }
      // Oldest first out: a Map iterates in insertion order.
      while (cache.size >= maxEntries) {
        const oldest = cache.keys().next().value;
        if (oldest === undefined) break;
        cache.delete(oldest);
      }
      cache.set(key, credentials);
      return credentials;
    },
  };
}

/**
 * The SDK clients a step uses, built for a target. `single` are the module-level clients of single-account mode;
 * with spoke access, each target gets clients holding the spoke session's credentials, in the target's region.
 */
export function clientsForTarget<C>(
  single: C,
  access: SpokeAccess | undefined,
  build: (config: { region: string; credentials: SpokeCredentials }) => C,
  maxEntries = 64,
): (target: SpokeTarget | undefined) => Promise<C> {
  const built = new Map<string, { credentials: SpokeCredentials; clients: C }>();
  return async (target) => {
    if (!access) return single;
    if (!target) {
      throw new NonRetryableSpokeUnreachableError("organization mode, but the step was given no account and region");
    }
    const credentials = await access.credentialsFor(target);
    const key = `${target.account}#${target.region}#${target.eventId}`;
    const existing = built.get(key);
    if (existing && existing.credentials === credentials) return existing.clients;
    while (built.size >= maxEntries) {
      const oldest = built.keys().next().value;
      if (oldest === undefined) break;
      built.delete(oldest);
    }
    const clients = build({ region: target.region, credentials });
    built.set(key, { credentials, clients });
    return clients;
  };
}

/**
 * One `make()` per account and region (single-account mode: one in all): for per-container caches whose answers
 * differ by account and region, such as an AMI's ImdsSupport or the account's IMDS defaults.
 */
export function perAccountRegion<T>(make: () => T, maxEntries = 256): (target: SpokeTarget | undefined) => T {
  const made = new Map<string, T>();
  return (target) => {
    const key = target ? `${target.account}#${target.region}` : "";
    let value = made.get(key);
    if (value === undefined) {
      if (made.size >= maxEntries) made.clear();
      value = make();
      made.set(key, value);
    }
    return value;
  };
}

/** Organization mode's spoke access for a function's container, or undefined in single-account mode. */
export function spokeAccessFor(organization: { spokeRoleName: string } | undefined): SpokeAccess | undefined {
  return organization ? spokeCredentialCache({ roleName: organization.spokeRoleName }) : undefined;
}
