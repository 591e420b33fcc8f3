import {
  ListAccountsCommand,
  type ListAccountsCommandOutput,
  ListParentsCommand,
  type OrganizationsClient,
} from "@aws-sdk/client-organizations";
import type { AccountMembership } from "../domain/confused-deputy.js";
import { awsErrorCode } from "./errors.js";

export interface OrganizationAccount {
  id: string;
  name?: string;
  status?: string;
}

/** Answers "is this account in the organization, under which OUs, and what is its name?" for the hub. */
export interface OrganizationDirectory {
  membership(account: string): Promise<AccountMembership>;
  accounts(): Promise<OrganizationAccount[]>;
}

/**
 * The organization as Organizations sees it, read through delegated administration or a delegation policy
 * (ListAccounts, ListParents), cached for `ttlMs` per container: a burst of events must not spend the Organizations
 * quota asking the same question. A failed read is `unavailable`, which the checks refuse on: failing closed.
 */
export function organizationsDirectory(
  client: OrganizationsClient,
  options: { now?: () => Date; ttlMs?: number } = {},
): OrganizationDirectory {
  const now = options.now ?? (() => new Date());
  const ttlMs = options.ttlMs ?? 15 * 60_000;
  let listed: { at: number; accounts: OrganizationAccount[] } | undefined;
  const parents = new Map<string, { at: number; ouIds: string[] }>();

  async function accounts(): Promise<OrganizationAccount[]> {
    if (listed && now().getTime() - listed.at < ttlMs) return listed.accounts;
    const all: OrganizationAccount[] = [];
    let token: string | undefined;
    do {
      const page: ListAccountsCommandOutput = await client.send(new ListAccountsCommand({ NextToken: token }));
      for (const a of page.Accounts ?? []) {
        if (a.Id)
          all.push({ id: a.Id, ...(a.Name ? { name: a.Name } : {}), ...(a.Status ? { status: a.Status } : {}) });
      }
      token = page.NextToken;
    } while (token);
    listed = { at: now().getTime(), accounts: all };
    return all;
  }

  /** The OUs above the account, nearest first, up to the root. */
  async function ouPath(account: string): Promise<string[]> {
    const cached = parents.get(account);
    if (cached && now().getTime() - cached.at < ttlMs) return cached.ouIds;
    const ouIds: string[] = [];
    let child = account;
    // An organization is at most five OUs deep; the bound keeps a misbehaving answer from looping.
    for (let depth = 0; depth < 8; depth++) {
      const out = await client.send(new ListParentsCommand({ ChildId: child }));
      const parent = out.Parents?.[0];
      if (!parent?.Id || parent.Type !== "ORGANIZATIONAL_UNIT") break;
      ouIds.push(parent.Id);
      child = parent.Id;
    }
    parents.set(account, { at: now().getTime(), ouIds });
    return ouIds;
  }

  return {
    accounts,
    async membership(account) {
      try {
        const found = (await accounts()).find((a) => a.id === account);
        if (!found || (found.status !== undefined && found.status !== "ACTIVE")) return { status: "not-member" };
        return { status: "member", ...(found.name ? { name: found.name } : {}), ouIds: await ouPath(account) };
      } catch (error) {
        return { status: "unavailable", reason: `Organizations: ${awsErrorCode(error) ?? "UnknownError"}` };
      }
    },
  };
}

/** A configured list of accounts (ORGANIZATION_ACCOUNTS), for a hub that may not call Organizations. No OUs known. */
export function configuredDirectory(list: readonly OrganizationAccount[]): OrganizationDirectory {
  return {
    accounts: async () => [...list],
    async membership(account) {
      const found = list.find((a) => a.id === account);
      return found
        ? { status: "member", ...(found.name ? { name: found.name } : {}), ouIds: [] }
        : { status: "not-member" };
    },
  };
}

/**
 * The hub's directory: the configured list when there is one (ORGANIZATION_ACCOUNTS), else Organizations itself.
 * ResolveTargets' confused-deputy checks and the organization sweep read the organization through this one door.
 */
export function directoryFor(
  organization: { accounts?: readonly OrganizationAccount[] },
  client: OrganizationsClient,
): OrganizationDirectory {
  return organization.accounts ? configuredDirectory(organization.accounts) : organizationsDirectory(client);
}
