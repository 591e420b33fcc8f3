import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type FlowRun, runFlow } from "../../local/runner/run-flow.js";
import { publishedBytes, SNS_MAX_MESSAGE_BYTES } from "../../local/sim/sim-sns.js";
import { plainText } from "../../shared/report/report.js";
import { ACCOUNT, allResults, instanceIds, intakeOutcomes, REGION, scenario, stateChangeEvent } from "./helpers.js";

/**
 * "One launch, one report" (issue 20), with real-shaped records: a launch is one RunInstances reservation, one
 * CreateFleet call or one start call; whichever signal arrives first, its instances get one verdict each and the
 * launch one report, with the record's actor when a record comes.
 */

const LAUNCHED_AT = Date.parse("2026-11-28T09:00:00Z");
const JANE =
  "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_PlatformEngineer_0a1b2c3d4e5f6a7b/jane.doe@example.com";
const TEMPLATE = "lt-0c1d2e3f4a5b60718";
/** SNS refuses a message over 256 KiB ("Publish", Amazon SNS API Reference): the whole report must fit in one. */
const SNS_MESSAGE_BYTES = 262_144;

type Json = Record<string, unknown>;

function fixture(name: string): Json {
  return JSON.parse(readFileSync(`test/fixtures/events/${name}.json`, "utf8")) as Json;
}

/** A fixture record moved into the simulated account, region and launch time, with its own event id. */
function relocated(record: Json, eventId: string, delaySeconds: number): Json {
  const text = JSON.stringify(record).replaceAll("123456789012", ACCOUNT).replaceAll("us-east-1", REGION);
  const moved = JSON.parse(text) as Json & { detail: Json };
  moved.id = `delivery-${eventId}`;
  moved.time = "2026-11-28T09:00:01Z";
  moved.detail.eventID = eventId;
  moved.detail.eventTime = "2026-11-28T09:00:01Z";
  moved.detail.awsRegion = REGION;
  return { ...moved, eventDelaySeconds: delaySeconds };
}

/** A RunInstances record as CloudTrail delivers it for `ids`: each item with its launchTime and metadata options. */
function runInstancesRecord(
  ids: string[],
  eventId: string,
  delaySeconds: number,
  options: { identity?: Json; truncated?: boolean; clientToken?: string } = {},
): Json {
  const base = fixture(options.truncated ? "run-instances-truncated" : "run-instances");
  const record = relocated(base, eventId, delaySeconds) as Json & { detail: Json & { requestParameters: Json } };
  if (options.identity) record.detail.userIdentity = options.identity;
  const params = record.detail.requestParameters;
  params.instancesSet = { items: [{ imageId: "ami-0abcdef1234567890", minCount: ids.length, maxCount: ids.length }] };
  params.launchTemplate = { launchTemplateId: TEMPLATE, version: "4" };
  if (options.clientToken) params.clientToken = options.clientToken;
  if (!options.truncated) {
    record.detail.responseElements = {
      reservationId: "r-0a1b2c3d4e5f60718",
      instancesSet: {
        items: ids.map((instanceId) => ({
          instanceId,
          launchTime: LAUNCHED_AT,
          metadataOptions: { state: "pending", httpTokens: "optional", httpPutResponseHopLimit: 1 },
        })),
      },
    };
  }
  return record;
}

/** An instant CreateFleet record listing `ids`, made by `identity`. */
function createFleetRecord(ids: string[], eventId: string, delaySeconds: number, identity: Json): Json {
  const record = relocated(fixture("create-fleet-instant"), eventId, delaySeconds) as Json & { detail: Json };
  record.detail.userIdentity = identity;
  const request = (record.detail.requestParameters as { CreateFleetRequest: Json }).CreateFleetRequest;
  request.TargetCapacitySpecification = { DefaultTargetCapacityType: "on-demand", TotalTargetCapacity: ids.length };
  const response = (record.detail.responseElements as { CreateFleetResponse: Json }).CreateFleetResponse;
  response.fleetInstanceSet = { item: [{ lifecycle: "on-demand", instanceIds: { item: ids } }] };
  return record;
}

/** EC2's `pending` notification for each instance, `seconds` after the launch. */
function notifications(ids: string[], seconds = 2): Json[] {
  return ids.map((id) => ({ ...stateChangeEvent(id, seconds), eventDelaySeconds: seconds }));
}

/**
 * The launch's instances in the simulated account: one reservation, one client token, the launch template's tag.
 * Without the SSM agent, so each verdict is `unverified` after enforcing, decided without running a probe: these
 * tests are about which execution and which report each instance lands in, and a probe per instance would only make
 * hundreds of processes (test/flow/verdicts.test.ts proves the probe's verdicts).
 */
function launched(ids: string[], reservationId: string, clientToken?: string) {
  return ids.map((id) => ({
    id,
    ssm: "none",
    reservationId,
    ...(clientToken ? { clientToken } : {}),
    tags: { "aws:ec2launchtemplate:id": TEMPLATE },
  }));
}

function run(events: Json[], instances: Json[], attributionTimeoutSeconds = 900): Promise<FlowRun> {
  return runFlow(
    scenario({
      eventSpacingSeconds: 0,
      settings: { watchRejectedSeconds: 0 },
      attributionTimeoutSeconds,
      events,
      instances,
    }),
  );
}

function verdicts(r: FlowRun): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const x of allResults(r)) counts[x.verdict] = (counts[x.verdict] ?? 0) + 1;
  return counts;
}

/**
 * Every instance was enforced and has exactly one verdict (unverified: no SSM agent), in one report, and every report
 * lists its instances in one message.
 */
function expectOneVerdictEach(r: FlowRun, ids: string[]) {
  const seen = allResults(r).map((x) => x.instanceId);
  expect([...seen].sort()).toEqual([...ids].sort());
  for (const id of ids) expect(r.sim.instance(id)?.httpTokens).toBe("required");
  for (const report of r.reports) {
    const text = plainText(report);
    expect(Buffer.byteLength(text)).toBeLessThan(SNS_MESSAGE_BYTES);
    for (const x of report.results) expect(text).toContain(x.instanceId);
  }
}

describe("one launch, one report: a 20-instance RunInstances", () => {
  const ids = instanceIds(20, "2a");
  const instances = launched(ids, "r-0a1b2c3d4e5f60718");

  it("state-change notifications first, the record 150 s later: 20 verdicts, 1 report, the record's actor", async () => {
    const r = await run([...notifications(ids), runInstancesRecord(ids, "e-run-20", 150)], instances);

    expect(r.reports).toHaveLength(1);
    expect(verdicts(r)).toEqual({ unverified: 20 });
    expectOneVerdictEach(r, ids);
    expect(r.reports[0]?.event.actor).toBe(JANE);
    expect(r.reports[0]?.event.launchTemplate?.id).toBe(TEMPLATE);
    // One execution gathered the launch; the other 19 notifications and the record started nothing.
    expect(r.executions).toHaveLength(1);
    expect(intakeOutcomes(r).filter((o) => o === "started")).toHaveLength(1);
    expect(intakeOutcomes(r).filter((o) => o === "claimed-elsewhere")).toHaveLength(20);
    expect(r.sim.calls.ModifyInstanceMetadataOptions).toBe(20);
  });

  it("the record first, the notifications after: 20 verdicts, 1 report, the record's actor", async () => {
    const r = await run([runInstancesRecord(ids, "e-run-20", 0), ...notifications(ids, 5)], instances);
    expect(r.reports).toHaveLength(1);
    expect(verdicts(r)).toEqual({ unverified: 20 });
    expectOneVerdictEach(r, ids);
    expect(r.reports[0]?.event.actor).toBe(JANE);
    expect(r.executions).toHaveLength(1);
  });

  it("no record at all: 1 report at the attribution deadline, actor unknown", async () => {
    const r = await run(notifications(ids), instances, 600);
    expect(r.reports).toHaveLength(1);
    expect(verdicts(r)).toEqual({ unverified: 20 });
    expectOneVerdictEach(r, ids);
    expect(r.reports[0]?.event.actor).toBe("actor unknown: no CloudTrail record");
    expect(plainText(r.reports[0] ?? ({} as never))).toContain(`launch template ${TEMPLATE}`);
    expect(r.lastReportSeconds).toBeGreaterThanOrEqual(600);
  });

  it("two launches at the same moment stay two reports: the reservation, not the time, makes a launch", async () => {
    const other = instanceIds(5, "2b");
    const r = await run(
      [...notifications(ids), ...notifications(other)],
      [...instances, ...launched(other, "r-0b1b2c3d4e5f60718")],
      300,
    );
    expect(r.reports).toHaveLength(2);
    expect(r.reports.map((x) => x.results.length).sort((a, b) => a - b)).toEqual([5, 20]);
    expectOneVerdictEach(r, [...ids, ...other]);
  });
});

describe("a record CloudTrail truncated (`responseElements: {omitted: true}`)", () => {
  it("60 instances, the record alone: found by its client token, 60 verdicts, 1 report with actor and template", async () => {
    const ids = instanceIds(60, "3a");
    const token = "7c1e5a2b-3d4f-4e6a-9b8c-0d1e2f3a4b5c";
    const r = await run(
      [runInstancesRecord(ids, "e-run-60", 0, { truncated: true, clientToken: token })],
      // A second launch's instances with the same image and template, launched at the same time: not this record's.
      [
        ...launched(ids, "r-0c1b2c3d4e5f60718", token),
        ...launched(instanceIds(4, "3b"), "r-0d1b2c3d4e5f60718", "other"),
      ],
    );
    expect(r.reports).toHaveLength(1);
    expect(verdicts(r)).toEqual({ unverified: 60 });
    expectOneVerdictEach(r, ids);
    const [report] = r.reports;
    expect(report?.event.actor).toBe(JANE);
    expect(report?.event.launchTemplate).toMatchObject({ id: TEMPLATE, version: "4" });
    expect(report?.problem).toBeUndefined();
  });

  it("200 instances, notifications first, the truncated record after: 1 report, 200 verdicts, the record's actor", async () => {
    const ids = instanceIds(200, "4a");
    const token = "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a";
    const r = await run(
      [...notifications(ids), runInstancesRecord(ids, "e-run-200", 240, { truncated: true, clientToken: token })],
      launched(ids, "r-0e1b2c3d4e5f60718", token),
    );
    expect(r.reports).toHaveLength(1);
    expect(verdicts(r)).toEqual({ unverified: 200 });
    expectOneVerdictEach(r, ids);
    expect(r.reports[0]?.event.actor).toBe(JANE);
    expect(r.executions).toHaveLength(1);
  });

  it("no client token: the launch window, image and template find it", async () => {
    const ids = instanceIds(40, "5a");
    const record = runInstancesRecord(ids, "e-run-40", 0, { truncated: true });
    delete ((record.detail as Json).requestParameters as Json).clientToken;
    const r = await run([record], launched(ids, "r-0f1b2c3d4e5f60718"));
    expect(r.reports).toHaveLength(1);
    expect(verdicts(r)).toEqual({ unverified: 40 });
    expect(r.reports[0]?.event.actor).toBe(JANE);
  });

  it("a response that is missing altogether (null) is resolved the same way", async () => {
    const ids = instanceIds(3, "6a");
    const token = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
    const record = runInstancesRecord(ids, "e-run-null", 0, { truncated: true, clientToken: token });
    (record.detail as Json).responseElements = null;
    const r = await run([record], launched(ids, "r-0a2b2c3d4e5f60718", token));
    expect(r.reports).toHaveLength(1);
    expect(verdicts(r)).toEqual({ unverified: 3 });
  });
});

describe("scale-out shapes from the field", () => {
  const AUTO_SCALING = {
    type: "AssumedRole",
    arn: `arn:aws:sts::${ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling`,
    accountId: ACCOUNT,
    invokedBy: "autoscaling.amazonaws.com",
  };

  it("an Auto Scaling group scaling out by 50 in three calls: 50 verdicts, one report per call", async () => {
    const calls = [instanceIds(17, "7a"), instanceIds(17, "7b"), instanceIds(16, "7c")];
    const events = calls.flatMap((ids, i) => [
      ...notifications(ids, 2 + i),
      runInstancesRecord(ids, `e-asg-${i}`, 120 + i * 10, { identity: AUTO_SCALING }),
    ]);
    const instances = calls.flatMap((ids, i) => launched(ids, `r-0a3b2c3d4e5f6071${i}`));
    const r = await run(events, instances);
    expect(r.reports).toHaveLength(3);
    expect(verdicts(r)).toEqual({ unverified: 50 });
    expectOneVerdictEach(r, calls.flat());
    expect(r.reports.map((x) => x.results.length).sort((a, b) => a - b)).toEqual([16, 17, 17]);
    for (const report of r.reports) expect(report.event.actor).toContain("Auto Scaling (autoscaling.amazonaws.com)");
  });

  it("an EKS managed node group of 100 through CreateFleet, one call per Availability Zone: one report each", async () => {
    const calls = [instanceIds(34, "8a"), instanceIds(33, "8b"), instanceIds(33, "8c")];
    const events = calls.flatMap((ids, i) => [
      ...notifications(ids, 3),
      createFleetRecord(ids, `e-eks-${i}`, 90 + i, AUTO_SCALING),
    ]);
    const instances = calls.flatMap((ids, i) => launched(ids, `r-0a4b2c3d4e5f6071${i}`));
    const r = await run(events, instances);
    expect(r.reports).toHaveLength(3);
    expect(verdicts(r)).toEqual({ unverified: 100 });
    expectOneVerdictEach(r, calls.flat());
    for (const report of r.reports) {
      expect(report.event.actor).toContain("Auto Scaling (autoscaling.amazonaws.com)");
      expect(report.notice).toContain("actor and launch template from CreateFleet e-eks-");
    }
  });

  it("a Karpenter burst: 30 one-instance CreateFleet calls and EC2 Fleet's own records without a response", async () => {
    const karpenter = (fixture("run-instances-by-ec2fleet-without-response").detail as Json).userIdentity as Json;
    const ids = instanceIds(30, "9a");
    const fleetRuns = ids.map((_, i) => {
      const record = relocated(fixture("run-instances-by-ec2fleet-without-response"), `e-k-run-${i}`, 60 + i);
      return record;
    });
    const events = [
      ...notifications(ids, 2),
      ...ids.map((id, i) => createFleetRecord([id], `e-k-fleet-${i}`, 45 + i, { ...karpenter, invokedBy: undefined })),
      ...fleetRuns,
    ];
    const instances = ids.map((id, i) => ({
      id,
      ssm: "none",
      reservationId: `r-0a5b2c3d4e${i.toString(16).padStart(6, "0")}`,
      tags: { "aws:ec2launchtemplate:id": "lt-0b1c2d3e4f5a60718" },
    }));
    const r = await run(events, instances);
    expect(r.reports).toHaveLength(30);
    expect(verdicts(r)).toEqual({ unverified: 30 });
    expectOneVerdictEach(r, ids);
    // No report of an unreadable record: EC2 Fleet's RunInstances found its instance already claimed.
    expect(r.reports.filter((x) => x.problem)).toEqual([]);
    for (const report of r.reports) expect(report.event.actor).toContain("KarpenterControllerRole-prod");
  });
});

describe("a launch too large for one SNS message", () => {
  it("3,500 instances of one RunInstances: the report goes out in 2 parts, merged into 1 report with every verdict", async () => {
    const ids = instanceIds(3500, "5b");
    const token = "1e9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a";
    const r = await run(
      [runInstancesRecord(ids, "e-run-3500", 0, { truncated: true, clientToken: token })],
      launched(ids, "r-0f1b2c3d4e5f60718", token),
    );

    // Every instance once, with its verdict, in one report: the parts were merged back.
    expect(r.fallbacks).toEqual([]);
    expect(r.incompleteReports).toEqual([]);
    expect(r.reports).toHaveLength(1);
    const seen = allResults(r).map((x) => x.instanceId);
    expect(seen).toHaveLength(ids.length);
    expect(new Set(seen)).toEqual(new Set(ids));
    expect(verdicts(r)).toEqual({ unverified: 3500 });
    expect(r.reports[0]).not.toHaveProperty("part");
    // Two messages on the topic, each within SNS's 256 KiB as the simulated topic measures it.
    const parts = r.sim.published.map((p) => p.input.MessageAttributes?.part?.StringValue);
    expect(parts).toEqual(["1/2", "2/2"]);
    for (const p of r.sim.published) expect(publishedBytes(p.input)).toBeLessThanOrEqual(SNS_MAX_MESSAGE_BYTES);
    const lastAt = Math.max(...r.sim.published.map((p) => p.at));
    expect(r.lastReportSeconds).toBe((lastAt - LAUNCHED_AT) / 1000);
  });
});
