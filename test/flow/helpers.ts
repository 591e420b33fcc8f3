import { readFileSync } from "node:fs";
import type { FlowRun } from "../../local/runner/run-flow.js";
import { parseScenario, type Scenario } from "../../local/runner/scenario.js";
import type { InstanceResult } from "../../shared/domain/model.js";

export const ACCOUNT = "111122223333";
export const REGION = "eu-west-1";

/** An EC2 API call as EventBridge delivers it from CloudTrail, trimmed to the fields the guard and the rules read. */
function apiCallDelivery<D extends object>(eventName: string, eventId: string, actor: string, detail: D) {
  return {
    version: "0",
    id: `delivery-${eventId}`,
    "detail-type": "AWS API Call via CloudTrail",
    source: "aws.ec2",
    account: ACCOUNT,
    time: "2026-11-28T09:00:00Z",
    region: REGION,
    resources: [],
    detail: {
      eventVersion: "1.10",
      userIdentity: { type: "AssumedRole", arn: actor, accountId: ACCOUNT },
      eventTime: "2026-11-28T09:00:00Z",
      eventSource: "ec2.amazonaws.com",
      eventName,
      awsRegion: REGION,
      ...detail,
      eventID: eventId,
      recipientAccountId: ACCOUNT,
    },
  };
}

/** A RunInstances delivery as EventBridge sends it, trimmed to the fields the guard and the rule read. */
export function runInstancesEvent(
  instanceIds: string[],
  eventId = "e-run-1",
  actor = `arn:aws:sts::${ACCOUNT}:assumed-role/Deployer/ci`,
) {
  return apiCallDelivery("RunInstances", eventId, actor, {
    requestParameters: { instanceType: "t4g.nano" },
    responseElements: { instancesSet: { items: instanceIds.map((instanceId) => ({ instanceId })) } },
  });
}

/**
 * A RunInstances delivery whose items carry the instances' metadata options as CloudTrail records them at launch
 * (`responseElements.instancesSet.items[].metadataOptions`), as real ones do.
 */
export function recordedRunInstancesEvent(instanceIds: string[], httpTokens: "optional" | "required" = "optional") {
  const event = runInstancesEvent(instanceIds);
  event.detail.responseElements.instancesSet.items = instanceIds.map((instanceId) => ({
    instanceId,
    metadataOptions: { state: "pending", httpTokens, httpPutResponseHopLimit: 1, httpEndpoint: "enabled" },
  }));
  return event;
}

export function modifyEvent(instanceId: string, httpTokens: string, eventId = "e-mod-1") {
  return {
    version: "0",
    id: `delivery-${eventId}`,
    "detail-type": "AWS API Call via CloudTrail",
    source: "aws.ec2",
    account: ACCOUNT,
    time: "2026-11-28T09:10:00Z",
    region: REGION,
    detail: {
      userIdentity: { type: "IAMUser", arn: `arn:aws:iam::${ACCOUNT}:user/someone`, accountId: ACCOUNT },
      eventTime: "2026-11-28T09:10:00Z",
      eventSource: "ec2.amazonaws.com",
      eventName: "ModifyInstanceMetadataOptions",
      awsRegion: REGION,
      requestParameters: { ModifyInstanceMetadataOptionsRequest: { HttpTokens: httpTokens, InstanceId: instanceId } },
      eventID: eventId,
    },
  };
}

/** `n` distinct, valid instance ids. */
export function instanceIds(n: number, prefix = "0f"): string[] {
  return Array.from({ length: n }, (_, i) => `i-${prefix}${i.toString(16).padStart(15, "0")}`);
}

export function scenario(raw: Record<string, unknown>): Scenario {
  return parseScenario({ name: "test", ...raw }, "test");
}

/** The single-account scenario (one account, one region, with the daily sweep): what `npm start` showed before. */
export function singleAccountScenario(): Scenario {
  return parseScenario(JSON.parse(readFileSync("local/scenarios/single-account.json", "utf8")), "single-account");
}

/** The `npm start` default: an organization of three member accounts, two regions, a hub. */
export function defaultScenario(): Scenario {
  return parseScenario(JSON.parse(readFileSync("local/scenarios/default.json", "utf8")), "default");
}

/** Every result of every report, with the event it belongs to. */
export function allResults(run: FlowRun): (InstanceResult & { eventId: string })[] {
  return run.reports.flatMap((r) => r.results.map((x) => ({ ...x, eventId: r.event.eventId })));
}

export function verdictOf(run: FlowRun, instanceId: string, eventId?: string): string | undefined {
  return allResults(run).find((r) => r.instanceId === instanceId && (!eventId || r.eventId === eventId))?.verdict;
}

/** A StartInstances delivery as EventBridge sends it: the started instances are in responseElements. */
export function startInstancesEvent(
  instanceIds: string[],
  eventId = "e-start-1",
  actor = `arn:aws:sts::${ACCOUNT}:assumed-role/Operator/ops`,
) {
  return apiCallDelivery("StartInstances", eventId, actor, {
    requestParameters: { instancesSet: { items: instanceIds.map((instanceId) => ({ instanceId })) } },
    responseElements: {
      instancesSet: {
        items: instanceIds.map((instanceId) => ({
          instanceId,
          currentState: { code: 0, name: "pending" },
          previousState: { code: 80, name: "stopped" },
        })),
      },
    },
  });
}

/** EC2's state-change notification, as EventBridge delivers it: only the instance id and the state. */
export function stateChangeEvent(
  instanceId: string,
  secondsAfterStart = 0,
  state = "pending",
  id = `sc-${instanceId}`,
) {
  return {
    version: "0",
    id,
    "detail-type": "EC2 Instance State-change Notification",
    source: "aws.ec2",
    account: ACCOUNT,
    time: new Date(Date.parse("2026-11-28T09:00:00Z") + secondsAfterStart * 1000).toISOString().replace(".000Z", "Z"),
    region: REGION,
    resources: [`arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${instanceId}`],
    detail: { "instance-id": instanceId, state },
  };
}

/** What the intake (AdmitEvent) did with each delivery, in the order the invocations ended. */
export function intakeOutcomes(run: FlowRun): (string | undefined)[] {
  return run.asyncInvocations
    .filter((a) => a.functionName === "AdmitEvent")
    .map((a) => (a.output as { outcome?: string } | null)?.outcome);
}

/** The watches after enforcing that fired: EventBridge Scheduler's asynchronous invocations of CheckRejected. */
export function watches(run: FlowRun) {
  return run.asyncInvocations.filter((a) => a.functionName === "CheckRejected");
}
