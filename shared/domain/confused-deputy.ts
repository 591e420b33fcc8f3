import { echo, text } from "./event.js";

/**
 * Organization mode's checks before the hub acts in a member account. The account and region the guard acts in come
 * from the event envelope and nowhere else: EventBridge sets them to the source's, while `detail` is whatever the
 * sender put there. An event that fails a check is refused: no AWS call is made in its account.
 */

/** Where a step acts: the event envelope's account and region, and the event it acts for (its session name). */
export interface SpokeTarget {
  account: string;
  region: string;
  eventId: string;
}

/** What the hub knows about an account: a member (with its name and the OUs above it), not a member, or unknown. */
export type AccountMembership =
  | { status: "member"; name?: string; ouIds: string[] }
  | { status: "not-member" }
  | { status: "unavailable"; reason: string };

export interface OrganizationPolicy {
  id: string;
  allowedAccounts: readonly string[];
  allowedOus: readonly string[];
}

const ACCOUNT_ID = /^\d{12}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/**
 * Why the envelope cannot be trusted as the place to act, or undefined. A CloudTrail record names its own
 * recipient account and region; one that disagrees with the envelope was not delivered by the account it names.
 */
export function envelopeRefusal(
  envelope: Record<string, unknown>,
  detail: Record<string, unknown>,
): string | undefined {
  const account = text(envelope.account);
  const region = text(envelope.region);
  if (!account || !ACCOUNT_ID.test(account))
    return `the envelope's account ${echo(envelope.account)} is not an account id`;
  if (!region || !REGION.test(region)) return `the envelope's region ${echo(envelope.region)} is not a region`;
  if (detail.recipientAccountId !== undefined && detail.recipientAccountId !== account) {
    return `detail.recipientAccountId ${echo(detail.recipientAccountId)} differs from the envelope's account ${account}`;
  }
  if (detail.awsRegion !== undefined && detail.awsRegion !== region) {
    return `detail.awsRegion ${echo(detail.awsRegion)} differs from the envelope's region ${region}`;
  }
  return undefined;
}

/** Why the account is not one the hub may act in, or undefined. Fails closed when membership is unknown. */
export function membershipRefusal(
  account: string,
  membership: AccountMembership,
  policy: OrganizationPolicy,
): string | undefined {
  if (membership.status === "unavailable") {
    return `cannot confirm that account ${account} is in organization ${policy.id}: ${membership.reason}`;
  }
  if (membership.status === "not-member") return `account ${account} is not in organization ${policy.id}`;
  const restricted = policy.allowedAccounts.length > 0 || policy.allowedOus.length > 0;
  if (!restricted) return undefined;
  if (policy.allowedAccounts.includes(account)) return undefined;
  if (membership.ouIds.some((ou) => policy.allowedOus.includes(ou))) return undefined;
  return `account ${account} is outside the guard's allow-list of accounts and OUs`;
}

/** The guard's own sessions in a member account: calls made through the spoke role must not trigger it again. */
export function spokeSessionPrefix(account: string, spokeRoleName: string, partition = "aws"): string {
  return `arn:${partition}:sts::${account}:assumed-role/${spokeRoleName}/`;
}

/**
 * The ledger key of an event in organization mode. CloudTrail's eventID is unique per account only, so the key
 * carries the account and region it came from.
 */
export function namespacedLedgerKey(account: string, region: string, eventId: string): string {
  return `${account}#${region}#${eventId}`;
}
