import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import type { ScenarioOrganization } from "../../local/runner/scenario.js";
import { allResults, instanceIds, runInstancesEvent, scenario } from "./helpers.js";

const PAYMENTS = "111122223333";
const HUB = "999900000000";
const ORG: ScenarioOrganization = {
  id: "o-a1b2c3d4e5",
  hubAccount: HUB,
  hubRegion: "eu-west-1",
  accounts: [
    {
      id: PAYMENTS,
      name: "payments-prod",
      regions: ["eu-west-1"],
      spoke: true,
      defaults: { httpTokens: "required", httpTokensEnforced: false, managedBy: "account" },
    },
  ],
  allowedAccounts: [],
};

/** `event` as the spoke rule forwards it from `account` (eu-west-1). */
function from<T extends { detail: Record<string, unknown> }>(account: string, event: T): T {
  const actor = `arn:aws:sts::${account}:assumed-role/PlatformAdmin/jo.platform`;
  return {
    ...event,
    account,
    region: "eu-west-1",
    detail: {
      ...event.detail,
      awsRegion: "eu-west-1",
      recipientAccountId: account,
      userIdentity: { type: "AssumedRole", arn: actor, accountId: account },
    },
  };
}

/** Someone set the region's IMDS default to HttpTokens=optional (the fixture, as CloudTrail records it). */
function weakeningCall(account: string) {
  const event = JSON.parse(
    readFileSync(new URL("../fixtures/events/modify-instance-metadata-defaults.json", import.meta.url), "utf8"),
  ) as { detail: Record<string, unknown> };
  event.detail.requestParameters = { ModifyInstanceMetadataDefaultsRequest: { HttpTokens: "optional" } };
  return from(account, event);
}

describe("the probe is the guard's own document, checked before every send", () => {
  it("sends nothing to an account whose probe document was altered, and says why (single account)", async () => {
    // Prepare: after the deploy someone added a version to the guard's documents.
    const ids = instanceIds(2);
    const s = scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) });

    // Act
    const run = await runFlow(s, { faults: { alteredProbeDocuments: true } });

    // Assess: enforced (that needs no document), but never probed: `error` with the reason, no command sent.
    expect(run.sim.calls.SendCommand).toBe(0);
    expect(run.sim.calls.GetDocument).toBeGreaterThan(0);
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(2);
    const results = allResults(run);
    expect(results.map((r) => r.verdict)).toEqual(["error", "error"]);
    for (const r of results) {
      expect(r.reason).toContain("imdsv2-guard-local-probe-linux");
      expect(r.reason).toMatch(/out of date, or someone altered it/);
    }
  });

  it("probes with the spoke's own document in organization mode, and nothing when it was altered", async () => {
    // Prepare
    const [id = ""] = instanceIds(1);
    const s = scenario({
      organization: ORG,
      instances: [{ id, account: PAYMENTS, region: "eu-west-1" }],
      events: [from(PAYMENTS, runInstancesEvent([id]))],
    });

    // Act
    const intact = await runFlow(s);
    const altered = await runFlow(s, { faults: { alteredProbeDocuments: true } });

    // Assess
    expect(allResults(intact).map((r) => r.verdict)).toEqual(["pass"]);
    expect(intact.org?.member(PAYMENTS, "eu-west-1").calls.SendCommand).toBe(1);
    expect(intact.org?.hub.calls.SendCommand).toBe(0);
    const [result] = allResults(altered);
    expect(result?.verdict).toBe("error");
    expect(result?.reason).toContain("imdsv2-guard-probe-linux");
    expect(altered.org?.member(PAYMENTS, "eu-west-1").calls.SendCommand).toBe(0);
  });
});

describe("organization mode: a member's weakened IMDS default", () => {
  it("reads and reports the member's default, not the hub's", async () => {
    // Prepare: the hub's own default is required and stays so; the member's becomes optional.
    const s = scenario({
      organization: ORG,
      instances: [],
      events: [weakeningCall(PAYMENTS)],
      account: { httpTokens: "required" },
    });

    // Act
    const run = await runFlow(s);

    // Assess
    const member = run.org?.member(PAYMENTS, "eu-west-1");
    expect(member?.calls.GetInstanceMetadataDefaults).toBeGreaterThan(0);
    expect(run.org?.hub.calls.GetInstanceMetadataDefaults).toBe(0);
    expect(member?.calls.ModifyInstanceMetadataDefaults).toBe(0);
    expect(member?.account.httpTokens).toBe("optional");
    expect(run.accountDefaultAlerts).toHaveLength(1);
    expect(run.accountDefaultAlerts[0]?.outcome).toMatchObject({
      observed: { httpTokens: "optional" },
      restored: false,
    });
  });

  it("sets the member's default back through its spoke role with enforceAccountDefault, and never the hub's", async () => {
    // Prepare
    const s = scenario({
      organization: ORG,
      instances: [],
      events: [weakeningCall(PAYMENTS)],
      account: { httpTokens: "optional" },
    });

    // Act
    const run = await runFlow(s, { enforceAccountDefault: true });

    // Assess
    const member = run.org?.member(PAYMENTS, "eu-west-1");
    expect(member?.calls.ModifyInstanceMetadataDefaults).toBe(1);
    expect(member?.account.httpTokens).toBe("required");
    expect(run.org?.hub.calls.ModifyInstanceMetadataDefaults).toBe(0);
    expect(run.org?.hub.account.httpTokens).toBe("optional");
    expect(run.org?.assumeRoleCalls.some((c) => c.roleArn === `arn:aws:iam::${PAYMENTS}:role/imdsv2-guard-spoke`)).toBe(
      true,
    );
  });
});
