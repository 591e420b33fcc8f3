import {
  ListAccountsCommand,
  type ListAccountsCommandInput,
  ListParentsCommand,
  type ListParentsCommandInput,
  OrganizationsClient,
} from "@aws-sdk/client-organizations";
import { AssumeRoleCommand, type AssumeRoleCommandInput, STSClient } from "@aws-sdk/client-sts";
import { mockClient } from "aws-sdk-client-mock";
import type { Scenario, ScenarioInstance, ScenarioOrganization } from "../runner/scenario.js";
import { installSimClients, SimAccount, type SimApi, type SimCaller, type SimFaults } from "./sim-account.js";
import { SPOKE_PROBE_DOCUMENT_PREFIX } from "./ssm-documents.js";

/** The access key the hub's own functions hold (their Lambda role); any client without spoke credentials has it. */
export const HUB_ACCESS_KEY_ID = "AKIASIMHUB0000000000";
/** The spoke role's name in every member account, as infra/spoke/spoke-account.yml creates it. */
export const SIM_SPOKE_ROLE_NAME = "imdsv2-guard-spoke";

/** One AssumeRole call as the member account's CloudTrail would record it. */
export interface SimAssumeRoleCall {
  at: number;
  /** The region of the STS endpoint the call went to. */
  stsRegion: string;
  roleArn: string;
  sessionName: string;
  outcome: "issued" | "AccessDenied" | "RegionDisabledException";
}

function awsError(name: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: httpStatusCode >= 500 ? "server" : "client",
    $metadata: { httpStatusCode },
  });
}

/**
 * A simulated AWS Organization: a hub account (the guard's ledger, topic and state machine) and member accounts,
 * each a SimAccount per region, with its own instances, IMDS defaults and EC2/SSM token buckets. Every call goes to
 * the account whose credentials the calling client holds, in the client's region, so a client holding account A's
 * session cannot see account B's instances (`InvalidInstanceID.NotFound`, as in AWS). STS AssumeRole honours the
 * spoke role's trust: only the hub may assume it, and only where the spoke is deployed. Organizations ListAccounts
 * and ListParents answer from the scenario.
 */
export class SimOrganization {
  readonly hub: SimAccount;
  readonly assumeRoleCalls: SimAssumeRoleCall[] = [];
  private readonly members = new Map<string, SimAccount>();
  /** Access keys the simulated STS issued, by the account whose spoke session they are. */
  private readonly sessions = new Map<string, string>();
  private readonly mocks: { restore(): void }[] = [];
  private savedEnv: Record<string, string | undefined> = {};
  private keySeq = 0;

  constructor(
    readonly spec: ScenarioOrganization,
    instances: readonly ScenarioInstance[],
    private readonly faults: SimFaults = {},
    private readonly world: Partial<Pick<Scenario, "account" | "images">> = {},
  ) {
    this.hub = new SimAccount([], faults, world);
    this.hub.identity = { account: spec.hubAccount, region: spec.hubRegion };
    const first = spec.accounts[0];
    for (const instance of instances) {
      const account = instance.account ?? first?.id ?? "";
      const region = instance.region ?? spec.accounts.find((a) => a.id === account)?.regions[0] ?? spec.hubRegion;
      this.member(account, region).addInstance(instance);
    }
  }

  /** The simulated account `account` in `region` (created empty on first use: every account has every region). */
  member(account: string, region: string): SimAccount {
    if (account === this.spec.hubAccount && region === this.spec.hubRegion) return this.hub;
    const key = `${account}#${region}`;
    let sim = this.members.get(key);
    if (!sim) {
      const defaults = this.spec.accounts.find((a) => a.id === account)?.defaults;
      sim = new SimAccount([], this.faults, defaults ? { ...this.world, account: defaults } : this.world);
      // The spoke's region template (infra/spoke/spoke-region.yml) created the guard's probe documents here.
      sim.deployProbeDocuments(SPOKE_PROBE_DOCUMENT_PREFIX);
      sim.identity = { account, region };
      this.members.set(key, sim);
    }
    return sim;
  }

  /** Every member account × region simulated so far, for the bench and the tests. */
  memberAccounts(): { account: string; region: string; sim: SimAccount }[] {
    return [...this.members.entries()].map(([key, sim]) => {
      const [account = "", region = ""] = key.split("#");
      return { account, region, sim };
    });
  }

  /** Calls across the organization, by API. */
  get calls(): Record<SimApi, number> {
    const total = { ...this.hub.calls };
    for (const { sim } of this.memberAccounts()) {
      for (const api of Object.keys(total) as SimApi[]) total[api] += sim.calls[api];
    }
    return total;
  }

  get realWorkInFlight(): number {
    return this.memberAccounts().reduce((n, m) => n + m.sim.realWorkInFlight, this.hub.realWorkInFlight);
  }

  /** Applies someone else's recorded call in the account and region the event's envelope names. */
  applyRecordedCall(event: unknown): void {
    const envelope = event as { account?: unknown; region?: unknown } | null;
    if (typeof envelope?.account !== "string" || typeof envelope.region !== "string") return;
    if (!this.spec.accounts.some((a) => a.id === envelope.account)) return;
    this.member(envelope.account, envelope.region).applyRecordedCall(event);
  }

  /**
   * Intercepts every client. The hub's own clients resolve their credentials through the default chain, so the
   * environment is given the hub's static keys for the duration, and the EC2 instance metadata service (the chain's
   * last resort, at 169.254.169.254) is switched off: no client can reach for real credentials.
   */
  install(): void {
    const env = {
      AWS_ACCESS_KEY_ID: HUB_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: "simulated-hub-secret",
      AWS_SESSION_TOKEN: undefined,
      AWS_REGION: this.spec.hubRegion,
      AWS_EC2_METADATA_DISABLED: "true",
    };
    for (const [name, value] of Object.entries(env)) {
      this.savedEnv[name] = process.env[name];
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    this.mocks.push(...installSimClients((service, caller) => this.route(service, caller)));
    const sts = mockClient(STSClient);
    sts.on(AssumeRoleCommand).callsFake((input: AssumeRoleCommandInput, getClient: () => unknown) => {
      const client = getClient() as SimCaller;
      return this.assumeRole(input, () => client);
    });
    const organizations = mockClient(OrganizationsClient);
    organizations.on(ListAccountsCommand).callsFake((input: ListAccountsCommandInput, getClient: () => unknown) => {
      const client = getClient() as SimCaller;
      return this.listAccounts(input, () => client);
    });
    organizations.on(ListParentsCommand).callsFake((input: ListParentsCommandInput) => this.listParents(input));
    this.mocks.push(sts, organizations);
  }

  restore(): void {
    for (const m of this.mocks) m.restore();
    this.mocks.length = 0;
    for (const [name, value] of Object.entries(this.savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    this.savedEnv = {};
  }

  /** The account a client acts as: the hub for its own keys, a member for a spoke session STS issued. */
  private async callerAccount(caller: () => SimCaller): Promise<string> {
    const { accessKeyId } = await caller().config.credentials();
    if (accessKeyId === HUB_ACCESS_KEY_ID) return this.spec.hubAccount;
    const account = this.sessions.get(accessKeyId);
    if (account === undefined) {
      throw awsError("UnrecognizedClientException", "The security token included in the request is invalid.");
    }
    return account;
  }

  private async route(service: string, caller: () => SimCaller): Promise<SimAccount> {
    // The ledger, the topic and the state machine are the hub's, in its region.
    if (service === "sns" || service === "dynamodb" || service === "sfn" || service === "scheduler") return this.hub;
    const account = await this.callerAccount(caller);
    return this.member(account, await caller().config.region());
  }

  private async assumeRole(input: AssumeRoleCommandInput, caller: () => SimCaller) {
    const callerAccount = await this.callerAccount(caller);
    const stsRegion = await caller().config.region();
    const roleArn = input.RoleArn ?? "";
    const sessionName = input.RoleSessionName ?? "";
    if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) {
      throw awsError(
        "ValidationError",
        "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint",
      );
    }
    const match = /^arn:aws:iam::(\d{12}):role\/(.+)$/.exec(roleArn);
    const target = match?.[1];
    const spoke = this.spec.accounts.find((a) => a.id === target);
    // The spoke role's trust: the hub account's principal, and only where the spoke stack is deployed.
    const trusted =
      callerAccount === this.spec.hubAccount && spoke?.spoke === true && match?.[2] === SIM_SPOKE_ROLE_NAME;
    const at = Date.now();
    if (!trusted || target === undefined || !spoke) {
      this.assumeRoleCalls.push({ at, stsRegion, roleArn, sessionName, outcome: "AccessDenied" });
      throw awsError(
        "AccessDenied",
        `User: arn:aws:sts::${callerAccount}:assumed-role/imdsv2-guard-hub/function is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
        403,
      );
    }
    // STS issues no credentials for an account in a region it has not enabled (an opt-in region).
    if (spoke.disabledRegions?.includes(stsRegion)) {
      this.assumeRoleCalls.push({ at, stsRegion, roleArn, sessionName, outcome: "RegionDisabledException" });
      throw awsError(
        "RegionDisabledException",
        `STS is not activated in this region for account:${target}. Your account administrator can activate STS in this region using the IAM Console.`,
        403,
      );
    }
    this.keySeq++;
    const accessKeyId = `ASIASIM${String(this.keySeq).padStart(13, "0")}`;
    this.sessions.set(accessKeyId, target);
    this.assumeRoleCalls.push({ at, stsRegion, roleArn, sessionName, outcome: "issued" });
    return {
      Credentials: {
        AccessKeyId: accessKeyId,
        SecretAccessKey: `simulated-secret-${this.keySeq}`,
        SessionToken: `simulated-session-${this.keySeq}`,
        Expiration: new Date(at + (input.DurationSeconds ?? 3600) * 1000),
      },
      AssumedRoleUser: { Arn: `arn:aws:sts::${target}:assumed-role/${SIM_SPOKE_ROLE_NAME}/${sessionName}` },
    };
  }

  private async listAccounts(input: ListAccountsCommandInput, caller: () => SimCaller) {
    // The hub reads the organization through delegated administration; a member's session may not.
    if ((await this.callerAccount(caller)) !== this.spec.hubAccount) {
      throw awsError("AccessDeniedException", "You don't have permissions to access this resource.");
    }
    const all = [
      { Id: this.spec.hubAccount, Name: "security-tooling", Status: "ACTIVE" as const },
      ...this.spec.accounts.map((a) => ({ Id: a.id, Name: a.name, Status: "ACTIVE" as const })),
    ];
    // Pages of two, so the directory must follow NextToken as it would in a large organization.
    const start = input.NextToken ? Number(input.NextToken) : 0;
    const next = start + 2 < all.length ? String(start + 2) : undefined;
    return { Accounts: all.slice(start, start + 2), ...(next ? { NextToken: next } : {}) };
  }

  private async listParents(input: ListParentsCommandInput) {
    if (!/^\d{12}$/.test(input.ChildId ?? "")) throw awsError("ChildNotFoundException", "child not found");
    return { Parents: [{ Id: "r-sim0", Type: "ROOT" as const }] };
  }
}
