import { readFileSync } from "node:fs";
import { ListAccountsCommand, ListParentsCommand, OrganizationsClient } from "@aws-sdk/client-organizations";
import type { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import * as z from "zod";
import { createHandler } from "../../functions/resolve-targets/handler.js";
import { createOrganizationHandler } from "../../functions/resolve-targets/organization-handler.js";
import { roleSessionName, spokeCredentialCache } from "../../shared/aws/spoke-credentials.js";
import type { AccountMembership } from "../../shared/domain/confused-deputy.js";
import { NonRetryableSpokeUnreachableError, RetryableThrottlingError } from "../../shared/domain/errors.js";
import { buildReport, subjectLine } from "../../shared/report/report.js";
import {
  DEFAULT_FLOW_SETTINGS,
  loadNotifyConfig,
  loadOrganizationConfig,
  type ResolveTargetsConfig,
} from "../../shared/runtime/config.js";
import { batchStepInAccount } from "../../shared/runtime/lambda-handler.js";
import { publishReport } from "../../shared/steps/notify.js";
import { resolveTargets } from "../../shared/steps/resolve-targets.js";
import { batchFactory, enforcing, eventRef, fakeContext, inSlice, silentLogger } from "./support.js";

const NOW = new Date("2026-11-28T15:00:00.000Z");
const ORG = "o-a1b2c3d4e5";
const MEMBER: AccountMembership = { status: "member", name: "payments-prod", ouIds: ["ou-ab12-11111111"] };

function orgConfig(allow: { accounts?: string[]; ous?: string[] } = {}): ResolveTargetsConfig {
  return {
    settings: DEFAULT_FLOW_SETTINGS,
    guardRoleArnPrefix: "arn:aws:sts::999900000000:assumed-role/imdsv2-guard-hub-enforce/",
    batchSize: 50,
    organization: {
      id: ORG,
      spokeRoleName: "imdsv2-guard-spoke",
      allowedAccounts: allow.accounts ?? [],
      allowedOus: allow.ous ?? [],
    },
  };
}

const eventSchema = z.looseObject({ detail: z.looseObject({}) });
/** The RunInstances fixture (account 123456789012, us-east-1), fresh for each test. */
function runInstances() {
  const path = new URL("../fixtures/events/run-instances.json", import.meta.url);
  return eventSchema.parse(JSON.parse(readFileSync(path, "utf8")));
}

describe("roleSessionName", () => {
  it("names the event within STS's 64 characters of [\\w+=,.@-]", () => {
    for (const id of [
      "5e8f7c6d-1a2b-3c4d-9e8f-7a6b5c4d3e21",
      `sweep-2026-11-28T06:00:00Z-1`,
      "x".repeat(300),
      "a b/c:d",
    ]) {
      const name = roleSessionName(id);
      expect(name.length).toBeLessThanOrEqual(64);
      expect(name).toMatch(/^[\w+=,.@-]{2,64}$/);
      expect(name.startsWith("imdsv2-guard-")).toBe(true);
    }
    expect(roleSessionName("5e8f7c6d-1a2b-3c4d-9e8f-7a6b5c4d3e21")).toBe(
      "imdsv2-guard-5e8f7c6d-1a2b-3c4d-9e8f-7a6b5c4d3e21",
    );
  });
});

describe("spokeCredentialCache", () => {
  const sts = mockClient(STSClient);
  afterEach(() => sts.reset());
  const target = { account: "111100000000", region: "us-east-1", eventId: "evt-1" };

  function issue(expiresAt: Date, key = "ASIAFIRST") {
    return {
      Credentials: { AccessKeyId: key, SecretAccessKey: "s", SessionToken: "t", Expiration: expiresAt },
    };
  }

  it("assumes the spoke role in the event's account with the event's session name, and reuses it", async () => {
    // Prepare
    sts.on(AssumeRoleCommand).resolves(issue(new Date(NOW.getTime() + 3_600_000)));
    const cache = spokeCredentialCache({ roleName: "imdsv2-guard-spoke", now: () => NOW });

    // Act
    const first = await cache.credentialsFor(target);
    const again = await cache.credentialsFor(target);

    // Assess
    expect(first.accessKeyId).toBe("ASIAFIRST");
    expect(again).toBe(first);
    const calls = sts.commandCalls(AssumeRoleCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toMatchObject({
      RoleArn: "arn:aws:iam::111100000000:role/imdsv2-guard-spoke",
      RoleSessionName: "imdsv2-guard-evt-1",
    });
  });

  it("asks the regional STS endpoint of the event's region (global-endpoint tokens fail in opt-in regions)", async () => {
    // Prepare
    const regions: string[] = [];
    const endpoints: string[] = [];
    sts.on(AssumeRoleCommand).callsFake(async (_input, getClient) => {
      const client = getClient();
      const region = await client.config.region();
      regions.push(region);
      const endpoint = await client.config.endpointProvider({ Region: region, UseGlobalEndpoint: false });
      endpoints.push(endpoint.url.hostname);
      return issue(new Date(NOW.getTime() + 3_600_000));
    });
    const cache = spokeCredentialCache({ roleName: "imdsv2-guard-spoke", now: () => NOW });

    // Act
    await cache.credentialsFor({ ...target, region: "ap-south-2" });

    // Assess
    expect(regions).toEqual(["ap-south-2"]);
    expect(endpoints).toEqual(["sts.ap-south-2.amazonaws.com"]);
  });

  it("assumes again shortly before the session expires", async () => {
    // Prepare
    let now = NOW;
    sts
      .on(AssumeRoleCommand)
      .resolvesOnce(issue(new Date(NOW.getTime() + 3_600_000), "ASIAFIRST"))
      .resolves(issue(new Date(NOW.getTime() + 7_200_000), "ASIASECOND"));
    const cache = spokeCredentialCache({ roleName: "imdsv2-guard-spoke", now: () => now, refreshBeforeSeconds: 300 });

    // Act
    const first = await cache.credentialsFor(target);
    now = new Date(NOW.getTime() + 3_600_000 - 301_000);
    const stillFirst = await cache.credentialsFor(target);
    now = new Date(NOW.getTime() + 3_600_000 - 299_000);
    const second = await cache.credentialsFor(target);

    // Assess
    expect([first.accessKeyId, stillFirst.accessKeyId, second.accessKeyId]).toEqual([
      "ASIAFIRST",
      "ASIAFIRST",
      "ASIASECOND",
    ]);
  });

  it("keeps one session per account, region and event", async () => {
    // Prepare
    sts.on(AssumeRoleCommand).resolves(issue(new Date(NOW.getTime() + 3_600_000)));
    const cache = spokeCredentialCache({ roleName: "imdsv2-guard-spoke", now: () => NOW });

    // Act
    await cache.credentialsFor(target);
    await cache.credentialsFor({ ...target, account: "222200000000" });
    await cache.credentialsFor({ ...target, region: "eu-west-1" });
    await cache.credentialsFor({ ...target, eventId: "evt-2" });

    // Assess
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(4);
  });

  it("turns AccessDenied into the unreachable-spoke error that names the account, region and code", async () => {
    // Prepare
    sts
      .on(AssumeRoleCommand)
      .rejects(
        Object.assign(new Error("not authorized"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } }),
      );
    const cache = spokeCredentialCache({ roleName: "imdsv2-guard-spoke", now: () => NOW });

    // Act
    const error = await cache.credentialsFor(target).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(NonRetryableSpokeUnreachableError);
    expect((error as Error).message).toBe("cannot assume the spoke role in 111100000000/us-east-1: AccessDenied");
  });

  it("lets throttling be retried by the state machine", async () => {
    // Prepare
    sts
      .on(AssumeRoleCommand)
      .rejects(Object.assign(new Error("Rate exceeded"), { name: "Throttling", $metadata: { httpStatusCode: 400 } }));
    const cache = spokeCredentialCache({ roleName: "imdsv2-guard-spoke", now: () => NOW });

    // Act
    const error = await cache.credentialsFor(target).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RetryableThrottlingError);
  });
});

describe("batchStepInAccount: a spoke that cannot be assumed is a verdict", () => {
  it("ends every unfinished instance `error` with the reason, without running the step", async () => {
    // Prepare
    const makeBatch = batchFactory();
    const batch = {
      ...makeBatch([enforcing("i-0a1b2c3d4e5f60001"), enforcing("i-0a1b2c3d4e5f60002")]),
      account: "222200000000",
      region: "eu-west-1",
    };
    let ran = false;
    const handler = batchStepInAccount(
      "Enforce",
      async (target) => {
        throw new NonRetryableSpokeUnreachableError(
          `cannot assume the spoke role in ${target?.account}/${target?.region}: AccessDenied`,
        );
      },
      async (b) => {
        ran = true;
        return b;
      },
      () => NOW,
    );

    // Act
    const out = await handler(batch, fakeContext("Enforce"));

    // Assess
    expect(ran).toBe(false);
    expect(inSlice(out).counts?.done).toBe(2);
    expect(inSlice(out).instances.map((i) => [i.result?.verdict, i.result?.reason])).toEqual([
      ["error", "cannot assume the spoke role in 222200000000/eu-west-1: AccessDenied"],
      ["error", "cannot assume the spoke role in 222200000000/eu-west-1: AccessDenied"],
    ]);
  });
});

describe("resolveTargets in organization mode: confused-deputy checks", () => {
  it("acts in the envelope's account and region, names the account, and namespaces the ledger key", () => {
    // Act
    const resolved = resolveTargets(runInstances(), orgConfig(), NOW, MEMBER);

    // Assess
    expect(resolved.refused).toBeUndefined();
    expect(resolved.targetCount).toBe(3);
    expect(resolved.event).toMatchObject({
      account: "123456789012",
      region: "us-east-1",
      accountName: "payments-prod",
    });
    expect(resolved.dedupe.key).toBe(`123456789012#us-east-1#${resolved.event.eventId}`);
  });

  it("keeps the single-account ledger key when no organization is configured", () => {
    const { organization: _org, ...single } = orgConfig();
    const resolved = resolveTargets(runInstances(), single, NOW);
    expect(resolved.dedupe.key).toBe(resolved.event.eventId);
    expect(resolved.event.accountName).toBeUndefined();
  });

  it.each([
    [
      "detail.recipientAccountId",
      (e: ReturnType<typeof runInstances>) => Object.assign(e.detail, { recipientAccountId: "222200000000" }),
    ],
    ["detail.awsRegion", (e: ReturnType<typeof runInstances>) => Object.assign(e.detail, { awsRegion: "eu-west-1" })],
  ])(
    "refuses an event whose %s disagrees with the envelope: every instance `error`, nothing to act on",
    (field, reshape) => {
      // Prepare
      const event = runInstances();
      reshape(event);

      // Act
      const resolved = resolveTargets(event, orgConfig(), NOW, MEMBER);

      // Assess
      expect(resolved.refused).toContain(field);
      expect(resolved.batches).toEqual([]);
      expect(resolved.targetCount).toBe(0);
      expect(resolved.notify).toBe(true);
      expect(resolved.rejected.map((r) => r.value)).toEqual([
        "i-0a1b2c3d4e5f60001",
        "i-0a1b2c3d4e5f60002",
        "i-0a1b2c3d4e5f60003",
      ]);
      for (const r of resolved.rejected) expect(r.reason).toContain("nothing was done in account 123456789012");
    },
  );

  it("refuses an account outside the organization, and one it cannot confirm (fails closed)", () => {
    const outside = resolveTargets(runInstances(), orgConfig(), NOW, { status: "not-member" });
    expect(outside.refused).toBe(`account 123456789012 is not in organization ${ORG}`);
    expect(outside.batches).toEqual([]);
    const unknown = resolveTargets(runInstances(), orgConfig(), NOW, {
      status: "unavailable",
      reason: "Organizations: AccessDeniedException",
    });
    expect(unknown.refused).toContain("cannot confirm");
    expect(unknown.batches).toEqual([]);
  });

  it("refuses an account outside the allow-list, and accepts one listed or under a listed OU", () => {
    expect(resolveTargets(runInstances(), orgConfig({ accounts: ["222200000000"] }), NOW, MEMBER).refused).toBe(
      "account 123456789012 is outside the guard's allow-list of accounts and OUs",
    );
    expect(
      resolveTargets(runInstances(), orgConfig({ accounts: ["123456789012"] }), NOW, MEMBER).refused,
    ).toBeUndefined();
    expect(
      resolveTargets(runInstances(), orgConfig({ ous: ["ou-ab12-11111111"] }), NOW, MEMBER).refused,
    ).toBeUndefined();
    expect(resolveTargets(runInstances(), orgConfig({ ous: ["ou-ab12-22222222"] }), NOW, MEMBER).targetCount).toBe(0);
  });

  it("ignores the guard's own calls through the spoke role of the event's account (loop guard per account)", () => {
    // Prepare
    const own = runInstances();
    Object.assign(own.detail, {
      userIdentity: {
        type: "AssumedRole",
        arn: "arn:aws:sts::123456789012:assumed-role/imdsv2-guard-spoke/imdsv2-guard-evt",
      },
    });
    const otherAccount = runInstances();
    Object.assign(otherAccount.detail, {
      userIdentity: {
        type: "AssumedRole",
        arn: "arn:aws:sts::222200000000:assumed-role/imdsv2-guard-spoke/imdsv2-guard-evt",
      },
    });

    // Act
    const ignored = resolveTargets(own, orgConfig(), NOW, MEMBER);
    const notOurs = resolveTargets(otherAccount, orgConfig(), NOW, MEMBER);

    // Assess
    expect(ignored.notify).toBe(false);
    expect(ignored.batches).toEqual([]);
    expect(notOurs.targetCount).toBe(3);
  });
});

describe("loadOrganizationConfig", () => {
  it("is single-account mode when ORGANIZATION_ID is empty or unset", () => {
    expect(loadOrganizationConfig({})).toBeUndefined();
    expect(loadOrganizationConfig({ ORGANIZATION_ID: "" })).toBeUndefined();
  });

  it("reads the hub's settings and names a wrong one", () => {
    expect(
      loadOrganizationConfig({
        ORGANIZATION_ID: ORG,
        ALLOWED_OU_IDS: "ou-ab12-11111111",
        ORGANIZATION_ACCOUNTS: "111100000000=payments-prod,222200000000",
      }),
    ).toEqual({
      id: ORG,
      spokeRoleName: "imdsv2-guard-spoke",
      allowedAccounts: [],
      allowedOus: ["ou-ab12-11111111"],
      accounts: [{ id: "111100000000", name: "payments-prod" }, { id: "222200000000" }],
    });
    expect(() => loadOrganizationConfig({ ORGANIZATION_ID: ORG, ALLOWED_ACCOUNT_IDS: "12345" })).toThrow(
      /ALLOWED_ACCOUNT_IDS/,
    );
  });
});

describe("Slack routing per account", () => {
  const PAYMENTS_SLACK = "arn:aws:sns:eu-west-1:999900000000:imdsv2-guard-slack-payments";
  const DEFAULT_SLACK = "arn:aws:sns:eu-west-1:999900000000:imdsv2-guard-slack";

  it("reads SLACK_ROUTES as account=topic entries, naming a wrong one", () => {
    const config = loadNotifyConfig({
      TOPIC_ARN: "arn:aws:sns:eu-west-1:999900000000:alerts",
      SLACK_TOPIC_ARN: DEFAULT_SLACK,
      SLACK_ROUTES: `111122223333=${PAYMENTS_SLACK}`,
    });
    expect(config.slackTopicByAccount).toEqual({ "111122223333": PAYMENTS_SLACK });
    expect(() =>
      loadNotifyConfig({ TOPIC_ARN: "arn:aws:sns:eu-west-1:999900000000:alerts", SLACK_ROUTES: "payments=#ops" }),
    ).toThrow(/SLACK_ROUTES/);
  });

  it("sends a routed account's report to its own Slack topic and the others to the default one", async () => {
    // Prepare
    const sent: (string | undefined)[] = [];
    const sns = {
      send: async (command: PublishCommand) => {
        sent.push(command.input.TopicArn);
        return { MessageId: "m" };
      },
    };
    const deps = {
      sns: sns as unknown as SNSClient,
      logger: silentLogger("notify"),
      config: {
        topicArn: "arn:aws:sns:eu-west-1:999900000000:alerts",
        slackTopicArn: DEFAULT_SLACK,
        slackVerdicts: ["error"],
        slackTopicByAccount: { "111122223333": PAYMENTS_SLACK },
      },
    };
    const reportIn = (account: string) =>
      buildReport({
        event: eventRef({ account, region: "eu-west-1" }),
        mode: "enforce",
        results: [],
        rejected: [{ value: "i-0a1b2c3d4e5f60001", reason: "x" }],
      });

    // Act
    await publishReport(reportIn("111122223333"), deps);
    await publishReport(reportIn("444455556666"), deps);

    // Assess
    expect(sent).toEqual([deps.config.topicArn, PAYMENTS_SLACK, deps.config.topicArn, DEFAULT_SLACK]);
  });
});

describe("the subject in organization mode", () => {
  it("names the account by its name and keeps the region inside SNS's 100 characters", () => {
    const report = buildReport({
      event: eventRef({
        eventName: "ModifyInstanceMetadataOptions",
        account: "111122223333",
        accountName: "payments-prod",
        region: "ap-southeast-2",
      }),
      mode: "enforce",
      results: [],
      rejected: [{ value: "i-0a1b2c3d4e5f60001", reason: "x" }],
    });
    const subject = subjectLine(report);
    expect(subject).toBe(
      "[imdsv2-guard] ERROR: 1 of 1 instance(s) - ModifyInstanceMetadataOp in payments-prod/ap-southeast-2",
    );
    expect(subject.length).toBe(99);
  });
});

describe("resolve-targets' two entries", () => {
  const organizations = mockClient(OrganizationsClient);
  afterEach(() => organizations.reset());

  it("the hub's entry asks Organizations about the event's account", async () => {
    // Prepare
    organizations.on(ListAccountsCommand).resolves({ Accounts: [{ Id: "123456789012", Name: "payments-prod" }] });
    organizations.on(ListParentsCommand).resolves({ Parents: [{ Id: "r-ab12", Type: "ROOT" }] });
    const handler = createOrganizationHandler(orgConfig(), () => NOW);

    // Act
    const resolved = await handler(runInstances(), fakeContext("resolve-targets"));

    // Assess
    expect(resolved.refused).toBeUndefined();
    expect(resolved.targetCount).toBeGreaterThan(0);
    expect(organizations.commandCalls(ListAccountsCommand)).toHaveLength(1);
  });

  it("the single-account entry, deployed on a hub by mistake, refuses every account instead of guessing", async () => {
    // Prepare: no configured account list, and this entry has no Organizations client
    const handler = createHandler(orgConfig(), () => NOW);

    // Act
    const resolved = await handler(runInstances(), fakeContext("resolve-targets"));

    // Assess
    expect(resolved.refused).toContain("cannot confirm");
    expect(resolved.batches).toEqual([]);
    expect(organizations.calls()).toHaveLength(0);
  });
});
