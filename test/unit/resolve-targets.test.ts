import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import type { FlowSettings } from "../../shared/domain/model.js";
import { DEFAULT_FLOW_SETTINGS, type ResolveTargetsConfig } from "../../shared/runtime/config.js";
import { resolveTargets } from "../../shared/steps/resolve-targets.js";

const NOW = new Date("2026-11-28T15:00:00.000Z");
const SEVEN_DAYS_SECONDS = 7 * 24 * 3600;
const GUARD_PREFIX = "arn:aws:sts::123456789012:assumed-role/imdsv2-guard-dev-us-east-1-enforce/";

const SETTINGS: FlowSettings = DEFAULT_FLOW_SETTINGS;

function config(batchSize = 50): ResolveTargetsConfig {
  return { settings: SETTINGS, guardRoleArnPrefix: GUARD_PREFIX, batchSize };
}

const fixtureSchema = z.looseObject({ detail: z.record(z.string(), z.unknown()) });
type FixtureEvent = z.infer<typeof fixtureSchema>;

/** A fresh copy of a fixture under test/fixtures/events, so each test may reshape it. */
function fixture(name: string): FixtureEvent {
  const path = new URL(`../fixtures/events/${name}`, import.meta.url);
  return fixtureSchema.parse(JSON.parse(readFileSync(path, "utf8")));
}

const stringField = z.string();
function detailString(event: FixtureEvent, key: string): string {
  return stringField.parse(event.detail[key]);
}

/** The RunInstances fixture with its instance items replaced. */
function runInstancesWith(items: unknown[]): FixtureEvent {
  const event = fixture("run-instances.json");
  event.detail.responseElements = { instancesSet: { items } };
  return event;
}

function idsOf(batches: { instanceId: string }[][]): string[] {
  return batches.flat().map((i) => i.instanceId);
}

function instanceIds(count: number): string[] {
  return Array.from({ length: count }, (_, n) => `i-0a1b2c3d4e5f${n.toString(16).padStart(5, "0")}`);
}

describe("resolveTargets: RunInstances", () => {
  it("keeps no recorded HttpTokens when an item has none, or a value EC2 does not use", () => {
    const event = fixture("run-instances.json");
    const items = (event.detail as { responseElements: { instancesSet: { items: Record<string, unknown>[] } } })
      .responseElements.instancesSet.items;
    items.forEach((item, n) => {
      if (n === 0) delete item.metadataOptions;
      else item.metadataOptions = { httpTokens: n === 1 ? "$(reboot)" : "required" };
    });
    const [batch = []] = resolveTargets(event, config(), NOW).batches;
    expect(batch.map((i) => i.recordedHttpTokens)).toEqual([undefined, undefined, "required"]);
  });

  it("records the HttpTokens a ModifyInstanceMetadataOptions call set", () => {
    const [batch = []] = resolveTargets(fixture("modify-instance-metadata-options.json"), config(), NOW).batches;
    expect(batch.map((i) => i.recordedHttpTokens)).toEqual(["optional"]);
  });

  it("targets every instance of the call in one batch, each waiting in the enforce stage, with HttpTokens as launched", () => {
    // Prepare
    const event = fixture("run-instances.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess: each item of the real record carries metadataOptions.httpTokens, the fact a retried Enforce decides from.
    const enforcing = (instanceId: string) => ({
      instanceId,
      stage: "enforce",
      notes: [],
      recordedHttpTokens: "optional",
    });
    expect(resolved.batches).toEqual([
      [enforcing("i-0a1b2c3d4e5f60001"), enforcing("i-0a1b2c3d4e5f60002"), enforcing("i-0a1b2c3d4e5f60003")],
    ]);
    expect(resolved.targetCount).toBe(3);
    expect(resolved.notify).toBe(true);
    expect(resolved.rejected).toEqual([]);
    expect(resolved.problem).toBeUndefined();
    expect(resolved.ignored).toBeUndefined();
    expect(resolved.settings).toEqual(SETTINGS);
    expect(resolved.startedAt).toBe(NOW.toISOString());
  });

  it("splits the instances into batches of batchSize, keeping their order", () => {
    // Prepare
    const event = fixture("run-instances.json");

    // Act
    const resolved = resolveTargets(event, config(2), NOW);

    // Assess
    expect(resolved.batches.map((b) => b.map((i) => i.instanceId))).toEqual([
      ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002"],
      ["i-0a1b2c3d4e5f60003"],
    ]);
  });

  it("never makes a batch larger than 50, so one SendCommand covers it", () => {
    // Prepare
    const ids = instanceIds(120);
    const event = runInstancesWith(ids.map((instanceId) => ({ instanceId })));

    // Act
    const resolved = resolveTargets(event, config(50), NOW);

    // Assess
    expect(resolved.batches.map((b) => b.length)).toEqual([50, 50, 20]);
    expect(idsOf(resolved.batches)).toEqual(ids);
    expect(resolved.targetCount).toBe(120);
  });

  it("removes duplicate instance ids", () => {
    // Prepare
    const [a, b, c] = ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002", "i-0a1b2c3d4e5f60003"];
    const event = runInstancesWith([a, b, a, c, b].map((instanceId) => ({ instanceId })));

    // Act
    const resolved = resolveTargets(event, config(2), NOW);

    // Assess
    expect(idsOf(resolved.batches)).toEqual([a, b, c]);
    expect(resolved.targetCount).toBe(3);
    expect(resolved.rejected).toEqual([]);
  });

  it("reports an event without responseElements as a problem, with no targets", () => {
    // Prepare
    const event = fixture("run-instances.json");
    event.detail.responseElements = null;

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.problem).toContain("responseElements.instancesSet.items");
    expect(resolved.notify).toBe(true);
    expect(resolved.batches).toEqual([]);
    expect(resolved.targetCount).toBe(0);
  });

  it("rejects items that are not objects without dropping the valid ones", () => {
    // Prepare
    const event = runInstancesWith(["i-0a1b2c3d4e5f60009", 42, null, [], { instanceId: "i-0a1b2c3d4e5f60002" }]);

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(idsOf(resolved.batches)).toEqual(["i-0a1b2c3d4e5f60002"]);
    expect(resolved.rejected).toHaveLength(4);
    expect(resolved.problem).toBeUndefined();
  });

  it("reports a call that launched nothing as a problem", () => {
    // Prepare
    const event = runInstancesWith([]);

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.problem).toBe("The event names no instances.");
    expect(resolved.notify).toBe(true);
  });
});

describe("resolveTargets: ModifyInstanceMetadataOptions", () => {
  it("reads the instance from CloudTrail's nested PascalCase request", () => {
    // Prepare
    const event = fixture("modify-instance-metadata-options.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(idsOf(resolved.batches)).toEqual(["i-0f9e8d7c6b5a40321"]);
    expect(resolved.notify).toBe(true);
    expect(resolved.problem).toBeUndefined();
  });

  it.each([
    { form: "flat InstanceId", requestParameters: { InstanceId: "i-0f9e8d7c6b5a40321", HttpTokens: "optional" } },
    {
      form: "flat camelCase instanceId",
      requestParameters: { instanceId: "i-0f9e8d7c6b5a40321", httpTokens: "optional" },
    },
    {
      form: "nested camelCase instanceId",
      requestParameters: { ModifyInstanceMetadataOptionsRequest: { instanceId: "i-0f9e8d7c6b5a40321" } },
    },
  ])("reads the instance from a $form request", ({ requestParameters }) => {
    // Prepare
    const event = fixture("modify-instance-metadata-options.json");
    event.detail.requestParameters = requestParameters;

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(idsOf(resolved.batches)).toEqual(["i-0f9e8d7c6b5a40321"]);
  });

  it.each([
    { requestParameters: null },
    { requestParameters: {} },
    { requestParameters: { ModifyInstanceMetadataOptionsRequest: { HttpTokens: "optional" } } },
    { requestParameters: "i-0f9e8d7c6b5a40321" },
  ])("reports a request naming no instance as a problem ($requestParameters)", ({ requestParameters }) => {
    // Prepare
    const event = fixture("modify-instance-metadata-options.json");
    event.detail.requestParameters = requestParameters;

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.problem).toContain("names no instance");
    expect(resolved.notify).toBe(true);
    expect(resolved.batches).toEqual([]);
  });
});

describe("resolveTargets: whose call it was", () => {
  it("ignores a failed call without notifying: nothing changed", () => {
    // Prepare
    const event = fixture("modify-instance-metadata-options-failed.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.notify).toBe(false);
    expect(resolved.ignored).toContain("with Client.UnauthorizedOperation;");
    expect(resolved.batches).toEqual([]);
    expect(resolved.targetCount).toBe(0);
    expect(resolved.problem).toBeUndefined();
  });

  it("ignores a failed call before any other check, even with an unexpected source", () => {
    // Prepare
    const event = fixture("modify-instance-metadata-options-failed.json");
    event.source = "custom.not-ec2";

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.notify).toBe(false);
    expect(resolved.problem).toBeUndefined();
    expect(resolved.ignored).toContain("failed");
  });

  it("ignores a failed RunInstances too", () => {
    // Prepare
    const event = fixture("run-instances.json");
    event.detail.errorCode = "Client.InstanceLimitExceeded";
    event.detail.responseElements = null;

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.notify).toBe(false);
    expect(resolved.ignored).toContain("Client.InstanceLimitExceeded");
    expect(resolved.batches).toEqual([]);
  });

  it("ignores the guard's own calls, so it never triggers itself", () => {
    // Prepare
    const event = fixture("modify-instance-metadata-options-by-guard.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.actor.startsWith(GUARD_PREFIX)).toBe(true);
    expect(resolved.notify).toBe(false);
    expect(resolved.ignored).toBe("The call was made by the guard itself.");
    expect(resolved.batches).toEqual([]);
  });

  it("does not ignore a role whose name merely extends the guard's", () => {
    // Prepare
    const event = fixture("modify-instance-metadata-options.json");
    event.detail.userIdentity = {
      type: "AssumedRole",
      arn: "arn:aws:sts::123456789012:assumed-role/imdsv2-guard-dev-us-east-1-enforce-copy/attacker",
    };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.ignored).toBeUndefined();
    expect(idsOf(resolved.batches)).toEqual(["i-0f9e8d7c6b5a40321"]);
  });

  it.each([
    { name: "run-instances-by-iam-user.json", actor: "arn:aws:iam::123456789012:user/legacy-ci" },
    { name: "modify-instance-metadata-options-by-root.json", actor: "arn:aws:iam::123456789012:root" },
  ])("keeps calls by people ($name)", ({ name, actor }) => {
    // Prepare
    const event = fixture(name);

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.actor).toBe(actor);
    expect(resolved.notify).toBe(true);
    expect(resolved.ignored).toBeUndefined();
    expect(resolved.targetCount).toBe(1);
  });

  it("names an AWS service acting without an ARN by what invoked it", () => {
    // Prepare
    const event = fixture("parse-run-instances-by-aws-service.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.actor).toBe("Auto Scaling (autoscaling.amazonaws.com)");
    expect(idsOf(resolved.batches)).toEqual(["i-0d1e2f3a4b5c60011", "i-0d1e2f3a4b5c60012"]);
    expect(resolved.notify).toBe(true);
  });

  it.each([
    { userIdentity: { type: "AWSService" }, actor: "AWSService" },
    { userIdentity: { invokedBy: "ec2.amazonaws.com" }, actor: "AWS service ec2.amazonaws.com" },
    { userIdentity: { invokedBy: "AWS Internal" }, actor: "AWSService:AWS Internal" },
    { userIdentity: undefined, actor: "unknown" },
  ])("falls back to $actor when the identity has no ARN", ({ userIdentity, actor }) => {
    // Prepare
    const event = fixture("parse-run-instances-by-aws-service.json");
    event.detail.userIdentity = userIdentity;

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.actor).toBe(actor);
    expect(resolved.targetCount).toBe(2);
  });
});

describe("resolveTargets: who launched it, when a service did", () => {
  it("reads a 2016-era Root record invoked by Auto Scaling as Auto Scaling's launch, never as a root launch", () => {
    // Prepare
    const event = fixture("run-instances-root-invoked-by-autoscaling-2016.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.actor).toBe("Auto Scaling (autoscaling.amazonaws.com), on behalf of account 123456789012");
    expect(resolved.event.actor).not.toContain(":root");
    expect(resolved.trigger).toBe("launch");
    expect(idsOf(resolved.batches)).toEqual(["i-0a1b2c3d"]);
  });

  it("names EC2 Fleet and the role it launched for (Karpenter)", () => {
    // Prepare
    const event = fixture("run-instances-by-ec2fleet-without-response.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.actor).toBe(
      "EC2 Fleet (ec2fleet.amazonaws.com), on behalf of arn:aws:sts::123456789012:assumed-role/KarpenterControllerRole-prod/1764348000000000000",
    );
  });

  it("reports a matched launch record it cannot read ids from, instead of dropping it", () => {
    // Prepare
    const event = fixture("run-instances-by-ec2fleet-without-response.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.notify).toBe(true);
    expect(resolved.targetCount).toBe(0);
    expect(resolved.problem).toContain("made by EC2 Fleet");
    expect(resolved.problem).toContain("instant CreateFleet");
    // What the intake looks the launch up by: no client token in EC2 Fleet's own record, so its window and template.
    expect(resolved.lookup).toEqual({
      call: "RunInstances",
      eventTime: "2026-11-28T16:40:04Z",
      launchTemplateIds: ["lt-0b1c2d3e4f5a60718"],
      maxCount: 1,
    });
  });

  it("a record CloudTrail truncated (omitted: true) keeps what its request says, for the intake to look it up", () => {
    const event = fixture("run-instances-truncated.json");

    const resolved = resolveTargets(event, config(), NOW);

    expect(resolved.targetCount).toBe(0);
    expect(resolved.notify).toBe(true);
    expect(resolved.problem).toContain("CloudTrail truncated it: `omitted: true`");
    expect(resolved.lookup).toEqual({
      call: "RunInstances",
      eventTime: "2026-11-28T09:42:11Z",
      clientToken: "7c1e5a2b-3d4f-4e6a-9b8c-0d1e2f3a4b5c",
      imageId: "ami-0a1b2c3d4e5f60718",
      launchTemplateIds: ["lt-0c1d2e3f4a5b60718"],
      maxCount: 60,
    });
    // The actor and launch template still come from the record.
    expect(resolved.event.launchTemplate).toEqual({ id: "lt-0c1d2e3f4a5b60718", version: "4" });
    expect(resolved.event.actor).toContain("jane.doe@example.com");
  });

  it("an instant CreateFleet record without its response keeps its token, templates and capacity", () => {
    const event = fixture("create-fleet-instant.json");
    event.detail.responseElements = { omitted: true };
    (event.detail.requestParameters as { CreateFleetRequest: Record<string, unknown> }).CreateFleetRequest.ClientToken =
      "fleet-token-1";

    const resolved = resolveTargets(event, config(), NOW);

    expect(resolved.lookup).toMatchObject({
      call: "CreateFleet",
      clientToken: "fleet-token-1",
      launchTemplateIds: ["lt-0b1c2d3e4f5a60718"],
      maxCount: 2,
    });
    expect(resolved.problem).toContain("omitted: true");
  });
});

describe("resolveTargets: StartInstances", () => {
  it("sends every started instance through the flow as an existing instance (the safety gate applies)", () => {
    // Prepare
    const event = fixture("start-instances.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.trigger).toBe("start");
    expect(idsOf(resolved.batches)).toEqual(["i-0d1e2f3a4b5c60021", "i-0d1e2f3a4b5c60022"]);
    expect(resolved.event.actor).toBe("arn:aws:sts::123456789012:assumed-role/Operator/ops.oncall");
    expect(resolved.notify).toBe(true);
  });

  it("a StartInstances record without its response: the request names the same instances", () => {
    // Prepare
    const event = fixture("start-instances.json");
    event.detail.responseElements = { omitted: true };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(idsOf(resolved.batches)).toEqual(["i-0d1e2f3a4b5c60021", "i-0d1e2f3a4b5c60022"]);
    expect(resolved.problem).toBeUndefined();
  });

  it("reports a StartInstances record that names its instances nowhere", () => {
    const event = fixture("start-instances.json");
    event.detail.responseElements = null;
    event.detail.requestParameters = {};

    const resolved = resolveTargets(event, config(), NOW);

    expect(resolved.problem).toContain("StartInstances record has no");
    expect(resolved.notify).toBe(true);
  });
});

describe("resolveTargets: CreateFleet", () => {
  it("reads an instant fleet's instances from responseElements.CreateFleetResponse.fleetInstanceSet", () => {
    // Prepare
    const event = fixture("create-fleet-instant.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.trigger).toBe("launch");
    expect(idsOf(resolved.batches)).toEqual(["i-0e1f2a3b4c5d60031", "i-0e1f2a3b4c5d60032"]);
  });

  it("accepts CloudTrail's single-item rendering (an object, not a list)", () => {
    // Prepare
    const event = fixture("create-fleet-instant.json");
    event.detail.responseElements = {
      CreateFleetResponse: {
        fleetInstanceSet: { item: { lifecycle: "spot", instanceIds: { item: "i-0e1f2a3b4c5d60033" } } },
        fleetId: "fleet-1",
      },
    };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(idsOf(resolved.batches)).toEqual(["i-0e1f2a3b4c5d60033"]);
  });

  it("needs no work for a request or maintain fleet, which launches later", () => {
    // Prepare
    const event = fixture("create-fleet-instant.json");
    const detail = z.looseObject({ requestParameters: z.looseObject({ CreateFleetRequest: z.looseObject({}) }) });
    const parsed = detail.parse(event.detail);
    parsed.requestParameters.CreateFleetRequest.Type = "maintain";
    event.detail = parsed;

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.notify).toBe(false);
    expect(resolved.ignored).toContain("launches its instances later");
  });

  it("reports an instant fleet record without instances or errors", () => {
    // Prepare
    const event = fixture("create-fleet-instant.json");
    event.detail.responseElements = { CreateFleetResponse: { fleetId: "fleet-1" } };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.notify).toBe(true);
    expect(resolved.problem).toContain("lists no instance");
  });
});

describe("resolveTargets: EC2's state-change notification (no trail)", () => {
  it("makes a pending instance a target whose report waits for the CloudTrail record", () => {
    // Prepare
    const event = fixture("state-change-pending.json");

    // Act
    const resolved = resolveTargets(event, { ...config(), attributionTimeoutSeconds: 600 }, NOW);

    // Assess
    expect(resolved.trigger).toBe("state-change");
    expect(idsOf(resolved.batches)).toEqual(["i-0e1f2a3b4c5d60031"]);
    expect(resolved.event.actor).toBe("actor unknown: no CloudTrail record");
    expect(resolved.event.source).toBe("state-change");
    expect(resolved.dedupe.key).toBe("state#123456789012#eu-west-1#i-0e1f2a3b4c5d60031#pending#2026-11-28T16:40:06Z");
    expect(resolved.awaitAttribution).toEqual({ deadline: "2026-11-28T16:50:06.000Z", seconds: 600 });
  });

  it("waits 15 minutes by default", () => {
    const resolved = resolveTargets(fixture("state-change-pending.json"), config(), NOW);
    expect(resolved.awaitAttribution).toEqual({ deadline: "2026-11-28T16:55:06.000Z", seconds: 900 });
  });

  it("needs nothing for any other state", () => {
    const resolved = resolveTargets(fixture("state-change-running.json"), config(), NOW);
    expect(resolved.notify).toBe(false);
    expect(resolved.ignored).toContain("State running needs");
  });

  it("rejects a hostile instance id as data", () => {
    const event = fixture("state-change-pending.json");
    event.detail["instance-id"] = "i-1; rm -rf /";
    const resolved = resolveTargets(event, config(), NOW);
    expect(resolved.rejected).toHaveLength(1);
    expect(resolved.targetCount).toBe(0);
    expect(resolved.dedupe.key.startsWith("state#123456789012#eu-west-1#")).toBe(true);
  });
});

describe("resolveTargets: ModifyInstanceMetadataDefaults", () => {
  it("turns a weakening call into an account-default change, with no instance to check", () => {
    // Prepare
    const event = fixture("modify-instance-metadata-defaults.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.trigger).toBe("account-default");
    expect(resolved.notify).toBe(true);
    expect(resolved.targetCount).toBe(0);
    expect(resolved.problem).toBeUndefined();
    expect(resolved.accountDefaultChange).toEqual({
      httpTokens: "optional",
      httpTokensEnforced: "disabled",
      weakened: ["HttpTokens set to optional", "HttpTokensEnforced set to disabled"],
    });
  });

  it.each([
    [{ HttpTokens: "no-preference" }, ["HttpTokens set to no-preference"]],
    [{ HttpTokensEnforced: "disabled" }, ["HttpTokensEnforced set to disabled"]],
    [{ HttpTokens: "required", HttpTokensEnforced: "no-preference" }, ["HttpTokensEnforced set to no-preference"]],
  ])("sees %j as weakening", (request, weakened) => {
    const event = fixture("modify-instance-metadata-defaults.json");
    event.detail.requestParameters = { ModifyInstanceMetadataDefaultsRequest: request };
    expect(resolveTargets(event, config(), NOW).accountDefaultChange?.weakened).toEqual(weakened);
  });

  it.each([
    { HttpTokens: "required" },
    { HttpTokens: "required", HttpTokensEnforced: "enabled" },
    { HttpPutResponseHopLimit: 2 },
  ])("needs nothing for %j, which leaves IMDSv2 required", (request) => {
    const event = fixture("modify-instance-metadata-defaults.json");
    event.detail.requestParameters = { ModifyInstanceMetadataDefaultsRequest: request };
    const resolved = resolveTargets(event, config(), NOW);
    expect(resolved.notify).toBe(false);
    expect(resolved.accountDefaultChange).toBeUndefined();
  });

  it("ignores the failed call", () => {
    const resolved = resolveTargets(fixture("modify-instance-metadata-defaults-failed.json"), config(), NOW);
    expect(resolved.notify).toBe(false);
    expect(resolved.ignored).toContain("Client.UnauthorizedOperation");
    expect(resolved.accountDefaultChange).toBeUndefined();
  });
});

describe("resolveTargets: malformed events", () => {
  it.each([
    { label: "null", raw: null },
    { label: "undefined", raw: undefined },
    { label: "a string", raw: "RunInstances i-0a1b2c3d4e5f60001" },
    { label: "a number", raw: 42 },
    { label: "an array", raw: [{ detail: {} }] },
    { label: "an object without detail", raw: { source: "aws.ec2" } },
    { label: "a string detail", raw: { source: "aws.ec2", detail: "{}" } },
    { label: "an array detail", raw: { source: "aws.ec2", detail: [] } },
  ])("reports $label as a problem without throwing", ({ raw }) => {
    // Prepare
    const cfg = config();

    // Act
    const resolved = resolveTargets(raw, cfg, NOW);

    // Assess
    expect(resolved.problem).toBe("Event is not an EventBridge event with a `detail` object.");
    expect(resolved.notify).toBe(true);
    expect(resolved.batches).toEqual([]);
    expect(resolved.targetCount).toBe(0);
    expect(resolved.event.eventName).toBe("unknown");
    expect(resolved.event.eventId).toMatch(/^unidentified-[0-9a-f]{32}$/);
  });

  it("reports an event from another source, echoing the source without quotes", () => {
    // Prepare
    const event = fixture("run-instances.json");
    event.source = "aws.s3";

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.problem).toContain("source aws.s3,");
    expect(resolved.notify).toBe(true);
    expect(resolved.batches).toEqual([]);
  });

  it("reports an event of another detail-type", () => {
    // Prepare
    const event = fixture("run-instances.json");
    event["detail-type"] = "EC2 Spot Instance Interruption Warning";

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.problem).toContain("detail-type EC2 Spot Instance Interruption Warning.");
    expect(resolved.batches).toEqual([]);
  });

  it("reports an unsupported eventName", () => {
    // Prepare
    const event = fixture("run-instances.json");
    event.detail.eventName = "TerminateInstances";

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.problem).toBe("Unsupported eventName TerminateInstances.");
    expect(resolved.notify).toBe(true);
    expect(resolved.batches).toEqual([]);
  });
});

describe("resolveTargets: invalid instance ids", () => {
  it.each([
    { label: "uppercase", value: "I-0A1B2C3D4E5F60001" },
    { label: "too short", value: "i-0a1b2c3" },
    { label: "too long", value: "i-0a1b2c3d4e5f600012" },
    { label: "not hex", value: "i-0a1b2c3d4e5f6000z" },
    { label: "a trailing newline", value: "i-0a1b2c3d4e5f60001\n" },
    { label: "a shell injection", value: "i-0a1b2c3d4e5f60001; $(rm -rf /)" },
    { label: "a markdown forgery", value: "i-0a1b2c3d\n*PASS* everything is fine" },
    { label: "a number", value: 1234567890 },
    { label: "an object", value: { id: "i-0a1b2c3d4e5f60001" } },
  ])("rejects $label with a reason, JSON-escaped without quotes, and keeps the valid ids", ({ value }) => {
    // Prepare
    const event = runInstancesWith([{ instanceId: value }, { instanceId: "i-0a1b2c3d4e5f60002" }]);

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.rejected).toEqual([
      {
        value: typeof value === "string" ? JSON.stringify(value).slice(1, -1) : JSON.stringify(value),
        reason: "not an instance id (expected ^i-[0-9a-f]{8,17}$)",
      },
    ]);
    expect(resolved.rejected[0]?.value).not.toMatch(/[\n\r]/);
    expect(idsOf(resolved.batches)).toEqual(["i-0a1b2c3d4e5f60002"]);
    expect(resolved.problem).toBeUndefined();
  });

  it("truncates a long value to 80 characters of its JSON and marks the cut", () => {
    // Prepare
    const hostile = `i-${"\u0007<!here>".repeat(5000)}`;
    const event = runInstancesWith([{ instanceId: hostile }]);

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.rejected).toHaveLength(1);
    const value = resolved.rejected[0]?.value ?? "";
    expect(value).toBe(`${JSON.stringify(hostile).slice(1, 81)}…`);
    expect(value).not.toContain("\u0007");
    expect(resolved.batches).toEqual([]);
    expect(resolved.targetCount).toBe(0);
  });

  it("rejects an item without an instanceId as undefined", () => {
    // Prepare
    const event = runInstancesWith([{ imageId: "ami-0a1b2c3d4e5f60718" }]);

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.rejected).toEqual([
      { value: "undefined", reason: "not an instance id (expected ^i-[0-9a-f]{8,17}$)" },
    ]);
    expect(resolved.problem).toBeUndefined();
    expect(resolved.notify).toBe(true);
  });

  it("rejects a hostile id in a ModifyInstanceMetadataOptions request", () => {
    // Prepare
    const event = fixture("modify-instance-metadata-options.json");
    event.detail.requestParameters = { ModifyInstanceMetadataOptionsRequest: { InstanceId: "i-1`; reboot`" } };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.rejected).toEqual([
      { value: "i-1`; reboot`", reason: expect.stringContaining("not an instance id") },
    ]);
    expect(resolved.batches).toEqual([]);
  });
});

describe("resolveTargets: sweep requests", () => {
  it("targets the sweep's instances, deduplicated, under the sweep's own identity", () => {
    // Prepare
    const event = fixture("parse-sweep.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(idsOf(resolved.batches)).toEqual(["i-0a1b2c3d4e5f60001", "i-0c1d2e3f4a5b60004"]);
    expect(resolved.event).toEqual({
      eventId: "sweep-2026-11-28T06:00:00Z-1",
      eventName: "ReconciliationSweep",
      eventTime: "2026-11-28T06:00:00Z",
      actor: "imdsv2-guard reconciliation sweep",
      account: "123456789012",
      region: "us-east-1",
      source: "sweep",
    });
    expect(resolved.dedupe.key).toBe("sweep-2026-11-28T06:00:00Z-1");
    expect(resolved.notify).toBe(true);
  });

  it("reports a sweep request without an instanceIds array", () => {
    // Prepare
    const event = fixture("parse-sweep.json");
    event.detail.instanceIds = "i-0a1b2c3d4e5f60001";

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.problem).toBe("Sweep request has no `detail.instanceIds` array.");
    expect(resolved.batches).toEqual([]);
  });

  it("rejects invalid ids in a sweep request", () => {
    // Prepare
    const event = fixture("parse-sweep.json");
    event.detail.instanceIds = ["i-0a1b2c3d4e5f60001", "bogus"];

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(idsOf(resolved.batches)).toEqual(["i-0a1b2c3d4e5f60001"]);
    expect(resolved.rejected).toEqual([{ value: "bogus", reason: expect.stringContaining("not an instance id") }]);
  });
});

describe("resolveTargets: event reference and dedupe", () => {
  it("keeps who did what, when and where, preferring CloudTrail's own fields", () => {
    // Prepare
    const event = fixture("parse-run-instances-by-aws-service.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event).toEqual({
      eventId: "6c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e9f",
      eventName: "RunInstances",
      eventTime: "2026-11-28T14:10:02Z",
      actor: "Auto Scaling (autoscaling.amazonaws.com)",
      account: "123456789012",
      region: "eu-west-1",
      source: "cloudtrail",
      launchTemplate: { id: "lt-0a1b2c3d4e5f60718", version: "3" },
    });
  });

  it.each([
    "run-instances.json",
    "run-instances-by-iam-user.json",
    "modify-instance-metadata-options.json",
    "modify-instance-metadata-options-by-root.json",
  ])("takes the event id, name and time from the CloudTrail record (%s)", (name) => {
    // Prepare
    const event = fixture(name);

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.eventId).toBe(detailString(event, "eventID"));
    expect(resolved.event.eventName).toBe(detailString(event, "eventName"));
    expect(resolved.event.eventTime).toBe(detailString(event, "eventTime"));
    expect(resolved.event.account).toBe(event.account);
    expect(resolved.event.region).toBe(event.region);
    expect(resolved.event.source).toBe("cloudtrail");
  });

  it("falls back to the CloudTrail record's account and region when the envelope lacks them", () => {
    // Prepare
    const event = fixture("parse-run-instances-by-aws-service.json");
    delete event.account;
    delete event.region;
    delete event.detail.eventTime;

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.account).toBe("123456789012");
    expect(resolved.event.region).toBe("eu-west-1");
    expect(resolved.event.eventTime).toBe("2026-11-28T14:10:03Z");
  });

  it("caps identifiers taken from the event at 512 characters", () => {
    // Prepare
    const event = fixture("run-instances.json");
    event.detail.eventName = "X".repeat(10_000);

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.eventName).toHaveLength(512);
  });

  it("uses the CloudTrail event id as the dedupe key, kept for a week", () => {
    // Prepare
    const event = fixture("run-instances.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.dedupe).toEqual({
      key: detailString(event, "eventID"),
      expiresAt: String(NOW.getTime() / 1000 + SEVEN_DAYS_SECONDS),
    });
    expect(resolved.dedupe.key).toBe(resolved.event.eventId);
  });

  it("keys ignored events too, so a redelivered one stays a no-op", () => {
    // Prepare
    const event = fixture("modify-instance-metadata-options-by-guard.json");

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.dedupe.key).toBe(detailString(event, "eventID"));
  });

  it("falls back to the EventBridge id when the record has no eventID", () => {
    // Prepare
    const event = fixture("run-instances.json");
    delete event.detail.eventID;

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.dedupe.key).toBe(event.id);
  });

  it("fingerprints an event without any id, the same for the same content and different otherwise", () => {
    // Prepare
    const strip = (e: FixtureEvent): FixtureEvent => {
      delete e.id;
      delete e.detail.eventID;
      return e;
    };
    const first = strip(fixture("run-instances.json"));
    const again = strip(fixture("run-instances.json"));
    const other = strip(fixture("run-instances-by-iam-user.json"));

    // Act
    const keys = [first, again, other].map((e) => resolveTargets(e, config(), NOW).dedupe.key);

    // Assess
    expect(keys[0]).toMatch(/^unidentified-[0-9a-f]{32}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
  });

  it("fingerprints malformed input stably", () => {
    // Prepare
    const raw = "not an event";

    // Act
    const first = resolveTargets(raw, config(), NOW).dedupe.key;
    const second = resolveTargets(raw, config(), new Date(NOW.getTime() + 60_000)).dedupe.key;

    // Assess
    expect(first).toMatch(/^unidentified-[0-9a-f]{32}$/);
    expect(second).toBe(first);
    expect(resolveTargets(null, config(), NOW).dedupe.key).not.toBe(first);
  });
});

describe("resolveTargets: governance", () => {
  it.each([
    { name: "run-instances.json", trigger: "launch" },
    { name: "parse-run-instances-by-aws-service.json", trigger: "launch" },
    { name: "modify-instance-metadata-options.json", trigger: "regression" },
    { name: "modify-instance-metadata-options-by-root.json", trigger: "regression" },
    { name: "parse-sweep.json", trigger: "sweep" },
  ])("says why it runs: $name is a $trigger", ({ name, trigger }) => {
    // Prepare
    const event = fixture(name);

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.trigger).toBe(trigger);
  });

  it.each([
    {
      label: "by id, with a string version",
      given: { launchTemplateId: "lt-0a1b2c3d4e5f60718", version: "3" },
      expected: { id: "lt-0a1b2c3d4e5f60718", version: "3" },
    },
    {
      label: "by name, with a numeric version",
      given: { launchTemplateName: "web", version: 4 },
      expected: { name: "web", version: "4" },
    },
    {
      label: "without a version",
      given: { launchTemplateId: "lt-0a1b2c3d4e5f60718" },
      expected: { id: "lt-0a1b2c3d4e5f60718" },
    },
  ])("keeps the launch template a RunInstances request named $label", ({ given, expected }) => {
    // Prepare
    const event = fixture("run-instances.json");
    event.detail.requestParameters = { launchTemplate: given, instancesSet: { items: [{ minCount: 1, maxCount: 1 }] } };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.launchTemplate).toEqual(expected);
  });

  it.each([
    { label: "no launch template", params: {} },
    { label: "a launch template that is not an object", params: { launchTemplate: "lt-0a1b2c3d4e5f60718" } },
    { label: "a launch template with neither id nor name", params: { launchTemplate: { version: "3" } } },
  ])("names no launch template for $label", ({ params }) => {
    // Prepare
    const event = fixture("run-instances.json");
    event.detail.requestParameters = params;

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.event.launchTemplate).toBeUndefined();
  });

  it("carries the account posture and the fleet a sweep request brings", () => {
    // Prepare
    const event = fixture("parse-sweep.json");
    const accountPosture = { httpTokens: "optional", httpTokensEnforced: false, managedBy: "account" };
    event.detail.accountPosture = accountPosture;
    event.detail.fleet = { allowingImdsV1: 40, exempt: 2 };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.accountPosture).toEqual(accountPosture);
    expect(resolved.fleet).toEqual({ allowingImdsV1: 40, exempt: 2 });
    expect(resolved.targetCount).toBe(2);
  });

  it("drops a malformed posture or fleet instead of failing the sweep", () => {
    // Prepare
    const event = fixture("parse-sweep.json");
    event.detail.accountPosture = { httpTokens: 1 };
    event.detail.fleet = { allowingImdsV1: "many", exempt: 0 };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.accountPosture).toBeUndefined();
    expect(resolved.fleet).toBeUndefined();
    expect(resolved.targetCount).toBe(2);
  });

  it("ignores a posture on an event that is not a sweep request", () => {
    // Prepare
    const event = fixture("run-instances.json");
    event.detail.accountPosture = { httpTokens: "required", httpTokensEnforced: true, managedBy: "account" };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.accountPosture).toBeUndefined();
  });

  it("still notifies for a sweep that found nothing to do, with its posture and no problem", () => {
    // Prepare
    const event = fixture("parse-sweep.json");
    event.detail.instanceIds = [];
    event.detail.accountPosture = { httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account" };
    event.detail.fleet = { allowingImdsV1: 0, exempt: 0 };

    // Act
    const resolved = resolveTargets(event, config(), NOW);

    // Assess
    expect(resolved.notify).toBe(true);
    expect(resolved.problem).toBeUndefined();
    expect(resolved.targetCount).toBe(0);
    expect(resolved.batches).toEqual([]);
    expect(resolved.accountPosture?.httpTokens).toBe("no-preference");
  });
});
