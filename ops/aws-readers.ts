import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import {
  type AdvancedEventSelector,
  type AdvancedFieldSelector,
  CloudTrailClient,
  DescribeTrailsCommand,
  type EventSelector,
  GetEventSelectorsCommand,
  GetTrailStatusCommand,
} from "@aws-sdk/client-cloudtrail";
import { CloudWatchClient, type CloudWatchClientConfig, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient, type DynamoDBClientConfig, ListTablesCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  type _InstanceType,
  DescribeInstancesCommand,
  EC2Client,
  type EC2ClientConfig,
  GetInstanceMetadataDefaultsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { ListExecutionsCommand, ListStateMachinesCommand, SFNClient, type SFNClientConfig } from "@aws-sdk/client-sfn";
import {
  DescribeInstanceInformationCommand,
  GetParametersCommand,
  ListDocumentsCommand,
  SSMClient,
  type SSMClientConfig,
} from "@aws-sdk/client-ssm";
import { awsErrorCode } from "../shared/aws/errors.js";
import { verifyProbeDocument } from "../shared/aws/probe-documents.js";
import { probeDocumentName, SPOKE_PROBE_DOCUMENT_PREFIX } from "../shared/probes/probe-document.js";
import type { DoctorReaders, SpokeInfo, StackInfo, TrailInfo } from "./doctor.js";
import { PROBE_DOCUMENT_PREFIX } from "./doctor.js";
import type { SelftestActions } from "./selftest.js";

/** The clients of one account and region: real ones for AWS, the same classes intercepted by the simulation. */
export interface RegionClients {
  ec2: EC2Client;
  ssm: SSMClient;
  cloudwatch: CloudWatchClient;
  sfn: SFNClient;
  dynamodb: DynamoDBClient;
}

/** What every client of a region is built with (region, retries, timeouts, credentials): what the five share. */
export type RegionClientSettings = EC2ClientConfig &
  SSMClientConfig &
  CloudWatchClientConfig &
  SFNClientConfig &
  DynamoDBClientConfig;

/** The clients of one account and region, all with the same settings. */
export function regionClientsWith(settings: RegionClientSettings): RegionClients {
  return {
    ec2: new EC2Client(settings),
    ssm: new SSMClient(settings),
    cloudwatch: new CloudWatchClient(settings),
    sfn: new SFNClient(settings),
    dynamodb: new DynamoDBClient(settings),
  };
}

/**
 * The doctor's readers over SDK clients. The trail and stack readers come in `extra` (see sdkTrailAndStackReaders):
 * the simulation answers those two from its deployment's description instead.
 */
export function sdkDoctorReaders(
  clientsFor: (region: string) => RegionClients,
  extra: Pick<DoctorReaders, "organizationAccounts" | "spoke" | "trails" | "stack"> = {},
): DoctorReaders {
  return {
    ...extra,
    instances: async (region) => {
      const out: { instanceId: string; state: string }[] = [];
      let NextToken: string | undefined;
      do {
        const page = await clientsFor(region).ec2.send(
          new DescribeInstancesCommand({
            Filters: [{ Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped"] }],
            MaxResults: 1000,
            NextToken,
          }),
        );
        for (const r of page.Reservations ?? [])
          for (const i of r.Instances ?? [])
            if (i.InstanceId) out.push({ instanceId: i.InstanceId, state: i.State?.Name ?? "unknown" });
        NextToken = page.NextToken;
      } while (NextToken);
      return out;
    },
    managedNodes: async (region) => {
      const ids = new Set<string>();
      let NextToken: string | undefined;
      do {
        const page = await clientsFor(region).ssm.send(
          new DescribeInstanceInformationCommand({ MaxResults: 50, NextToken }),
        );
        for (const i of page.InstanceInformationList ?? [])
          if (i.InstanceId && i.PingStatus === "Online") ids.add(i.InstanceId);
        NextToken = page.NextToken;
      } while (NextToken);
      return ids;
    },
    alarms: async (region, prefix) => {
      const page = await clientsFor(region).cloudwatch.send(
        new DescribeAlarmsCommand({ AlarmNamePrefix: prefix, MaxRecords: 100 }),
      );
      return (page.MetricAlarms ?? []).map((a) => ({ name: a.AlarmName ?? "", state: a.StateValue ?? "" }));
    },
    runningExecutions: async (region, name) => {
      const sfn = clientsFor(region).sfn;
      let arn: string | undefined;
      let nextToken: string | undefined;
      do {
        const page = await sfn.send(new ListStateMachinesCommand({ nextToken }));
        arn = page.stateMachines?.find((m) => m.name === name)?.stateMachineArn ?? arn;
        nextToken = page.nextToken;
      } while (nextToken && !arn);
      if (!arn) return undefined;
      const running = await sfn.send(
        new ListExecutionsCommand({ stateMachineArn: arn, statusFilter: "RUNNING", maxResults: 100 }),
      );
      return running.executions?.length ?? 0;
    },
    accountDefaults: async (region) => {
      const out = await clientsFor(region).ec2.send(new GetInstanceMetadataDefaultsCommand({}));
      const d = out.AccountLevel;
      return {
        ...(d?.HttpTokens ? { httpTokens: d.HttpTokens } : {}),
        ...(d?.HttpTokensEnforced ? { httpTokensEnforced: d.HttpTokensEnforced } : {}),
      };
    },
  };
}

/** The control-plane clients of one region the doctor reads the trail and the stack with. */
export interface ControlPlaneClients {
  cloudtrail: CloudTrailClient;
  cloudformation: CloudFormationClient;
}

/** Both clients in one region, with the caller's settings (the credentials come from --profile through the env). */
export function controlPlaneClients(settings: { region: string } & Record<string, unknown>): ControlPlaneClients {
  return { cloudtrail: new CloudTrailClient(settings), cloudformation: new CloudFormationClient(settings) };
}

/** The service whose management events carry RunInstances, the guard's trigger. */
const EC2_EVENT_SOURCE = "ec2.amazonaws.com";

/**
 * Whether basic event selectors record EC2's write management events ("EventSelector", CloudTrail API Reference):
 * IncludeManagementEvents and ReadWriteType default to true and All; WriteOnly also records RunInstances.
 * An empty list records nothing: strict, rather than assume the default selector.
 */
export function basicSelectorsRecordWrites(selectors: EventSelector[]): boolean {
  return selectors.some(
    (s) =>
      s.IncludeManagementEvents !== false &&
      (s.ReadWriteType === undefined || s.ReadWriteType === "All" || s.ReadWriteType === "WriteOnly") &&
      !(s.ExcludeManagementEventSources ?? []).includes(EC2_EVENT_SOURCE),
  );
}

/**
 * Whether advanced event selectors record EC2's write management events ("AdvancedEventSelector",
 * "AdvancedFieldSelector", CloudTrail API Reference): a selector matches when every field selector does; for
 * management events the fields are eventCategory (required), eventSource and readOnly.
 */
export function advancedSelectorsRecordWrites(selectors: AdvancedEventSelector[]): boolean {
  // Would this field selector let a write management event from EC2 through? Each operator present must hold.
  const admits = (value: string, f: AdvancedFieldSelector): boolean =>
    (f.Equals === undefined || f.Equals.includes(value)) &&
    (f.NotEquals === undefined || !f.NotEquals.includes(value)) &&
    (f.StartsWith === undefined || f.StartsWith.some((p) => value.startsWith(p))) &&
    (f.NotStartsWith === undefined || !f.NotStartsWith.some((p) => value.startsWith(p))) &&
    (f.EndsWith === undefined || f.EndsWith.some((p) => value.endsWith(p))) &&
    (f.NotEndsWith === undefined || !f.NotEndsWith.some((p) => value.endsWith(p)));
  const event: Record<string, string> = {
    eventCategory: "Management",
    eventSource: EC2_EVENT_SOURCE,
    readOnly: "false",
  };
  return selectors.some((s) => {
    const fields = s.FieldSelectors ?? [];
    return (
      fields.some((f) => f.Field === "eventCategory") &&
      fields.every((f) => {
        const value = f.Field === undefined ? undefined : event[f.Field];
        // A field management events do not have (resources.type...) makes this a data-event selector.
        return value !== undefined && admits(value, f);
      })
    );
  });
}

/**
 * The trail and stack readers over CloudTrail and CloudFormation. DescribeTrails with includeShadowTrails lists the
 * region's own trails and the multi-Region and organization trails replicated into it; a shadow trail's status and
 * selectors are read by its ARN ("GetTrailStatus": a shadow trail needs the ARN).
 */
export function sdkTrailAndStackReaders(
  clientsFor: (region: string) => ControlPlaneClients,
): Required<Pick<DoctorReaders, "trails" | "stack">> {
  return {
    trails: async (region) => {
      const cloudtrail = clientsFor(region).cloudtrail;
      const described = await cloudtrail.send(new DescribeTrailsCommand({ includeShadowTrails: true }));
      const out: TrailInfo[] = [];
      for (const trail of described.trailList ?? []) {
        const id = trail.TrailARN ?? trail.Name;
        if (!id) continue;
        const status = await cloudtrail.send(new GetTrailStatusCommand({ Name: id }));
        const selectors = await cloudtrail.send(new GetEventSelectorsCommand({ TrailName: id }));
        const advanced = selectors.AdvancedEventSelectors ?? [];
        out.push({
          name: trail.Name ?? id,
          homeRegion: trail.HomeRegion ?? region,
          multiRegion: trail.IsMultiRegionTrail === true,
          logging: status.IsLogging === true,
          // A trail has basic or advanced selectors, never both ("AdvancedEventSelector").
          writeManagementEvents:
            advanced.length > 0
              ? advancedSelectorsRecordWrites(advanced)
              : basicSelectorsRecordWrites(selectors.EventSelectors ?? []),
        });
      }
      return out;
    },
    stack: async (region, stackName) => {
      const out = await clientsFor(region)
        .cloudformation.send(new DescribeStacksCommand({ StackName: stackName }))
        .catch((error: unknown) => {
          // "DescribeStacks": a stack that does not exist is a ValidationError ("Stack with id X does not exist").
          if (awsErrorCode(error) === "ValidationError" && /does not exist/.test(String((error as Error).message)))
            return undefined;
          throw error;
        });
      const stack = out?.Stacks?.[0];
      if (!stack) return undefined;
      const parameters: Record<string, string> = {};
      for (const p of stack.Parameters ?? []) if (p.ParameterKey) parameters[p.ParameterKey] = p.ParameterValue ?? "";
      const outputs: Record<string, string> = {};
      for (const o of stack.Outputs ?? []) if (o.OutputKey) outputs[o.OutputKey] = o.OutputValue ?? "";
      const version = stack.Tags?.find((t) => t.Key === "version")?.Value;
      const info: StackInfo = {
        name: stack.StackName ?? stackName,
        status: stack.StackStatus ?? "UNKNOWN",
        parameters,
        outputs,
        ...(version !== undefined ? { version } : {}),
      };
      return info;
    },
  };
}

/**
 * A spoke as the doctor sees it through the assumed role: its probe documents (SSM ListDocuments, Owner=Self), and
 * whether each of the guard's two holds this build's probe (the same comparison SendProbe makes before it sends,
 * shared/aws/probe-documents.ts). A spoke deployed from an older release probes with an older script; SendProbe
 * would refuse it at the next launch, so the doctor says so first. A document it may not read is left uncompared.
 */
export async function spokeThrough(ssm: () => Promise<SSMClient>): Promise<SpokeInfo> {
  let client: SSMClient;
  try {
    client = await ssm();
  } catch (error) {
    const code = awsErrorCode((error as { cause?: unknown }).cause ?? error) ?? "UnknownError";
    return { reachable: false, error: code, probeDocuments: [] };
  }
  const page = await client.send(
    new ListDocumentsCommand({ Filters: [{ Key: "Owner", Values: ["Self"] }], MaxResults: 50 }),
  );
  const probeDocuments = (page.DocumentIdentifiers ?? [])
    .map((d) => d.Name ?? "")
    .filter((n) => n.startsWith(PROBE_DOCUMENT_PREFIX));
  const outOfDate: string[] = [];
  const notCompared: string[] = [];
  for (const platform of ["linux", "windows"] as const) {
    const name = probeDocumentName(SPOKE_PROBE_DOCUMENT_PREFIX, platform);
    if (!probeDocuments.includes(name)) continue;
    try {
      if (!(await verifyProbeDocument(client, name, platform)).matches) outOfDate.push(name);
    } catch (error) {
      notCompared.push(`${name} (${awsErrorCode(error) ?? "UnknownError"})`);
    }
  }
  // The spoke-region stack is not read: the auditor role (infra/spoke/spoke-account.yml) grants no
  // cloudformation:DescribeStacks, so a probe document stands for it (docs/commands.md says so).
  return {
    reachable: true,
    probeDocuments,
    probeDocumentsOutOfDate: outOfDate,
    ...(notCompared.length > 0 ? { probeDocumentsNotCompared: notCompared } : {}),
    ...(probeDocuments.length > 0 ? { regionStack: { status: "CREATE_COMPLETE" } } : {}),
  };
}

/** Where the selftest launches, and how. */
export interface LaunchSettings {
  subnetId?: string;
  instanceProfile?: string;
  instanceType: string;
  /** The stack whose ledger holds the verdict (`<service>-<stage>`). */
  stackName: string;
}

/** Amazon Linux 2023 for arm64, the public SSM parameter ("Query for the latest Amazon Linux AMI IDs"). */
export const SELFTEST_IMAGE_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64";
export const SELFTEST_TAG = "imdsv2-guard:selftest";

/** The selftest's launch, reads and termination over SDK clients of one region. */
export function sdkSelftestActions(clients: RegionClients, settings: LaunchSettings): SelftestActions {
  let ledger: string | undefined;
  return {
    launch: async () => {
      const image = await clients.ssm.send(new GetParametersCommand({ Names: [SELFTEST_IMAGE_PARAMETER] }));
      const imageId = image.Parameters?.[0]?.Value;
      if (!imageId) throw new Error(`SSM parameter ${SELFTEST_IMAGE_PARAMETER} not found`);
      const out = await clients.ec2.send(
        new RunInstancesCommand({
          ImageId: imageId,
          InstanceType: settings.instanceType as _InstanceType,
          MinCount: 1,
          MaxCount: 1,
          ...(settings.subnetId ? { SubnetId: settings.subnetId } : {}),
          ...(settings.instanceProfile ? { IamInstanceProfile: { Name: settings.instanceProfile } } : {}),
          // What the guard exists to fix: a launch that allows IMDSv1.
          MetadataOptions: { HttpTokens: "optional", HttpEndpoint: "enabled" },
          TagSpecifications: [
            {
              ResourceType: "instance",
              Tags: [
                { Key: SELFTEST_TAG, Value: "true" },
                { Key: "Name", Value: "imdsv2-guard-selftest" },
              ],
            },
          ],
        }),
      );
      const instanceId = out.Instances?.[0]?.InstanceId;
      if (!instanceId) throw new Error("RunInstances returned no instance");
      return { instanceId };
    },
    httpTokens: async (instanceId) => {
      const out = await clients.ec2
        .send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))
        .catch((error: unknown) => {
          // Eventual consistency: a new instance may not be described yet.
          if (awsErrorCode(error) === "InvalidInstanceID.NotFound") return undefined;
          throw error;
        });
      return out?.Reservations?.[0]?.Instances?.[0]?.MetadataOptions?.HttpTokens;
    },
    verdict: async (instanceId) => {
      ledger ??= await ledgerTable(clients.dynamodb, settings.stackName);
      const page = await clients.dynamodb.send(
        new ScanCommand({
          TableName: ledger,
          FilterExpression: "begins_with(#item, :result) AND contains(#results, :id)",
          ExpressionAttributeNames: { "#item": "item", "#results": "results" },
          ExpressionAttributeValues: { ":result": { S: "result#" }, ":id": { S: instanceId } },
        }),
      );
      for (const item of page.Items ?? []) {
        const results = JSON.parse(item.results?.S ?? "[]") as {
          instanceId?: string;
          verdict?: string;
          reason?: string;
        }[];
        const mine = results.find((r) => r.instanceId === instanceId);
        if (mine?.verdict) return { verdict: mine.verdict, reason: mine.reason ?? "" };
      }
      return undefined;
    },
    terminate: async (instanceId) => {
      await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    },
  };
}

/** CloudFormation names the ledger `<stack>-EventLedgerTable-<suffix>` (no TableName in the template). */
async function ledgerTable(dynamodb: DynamoDBClient, stackName: string): Promise<string> {
  const prefix = `${stackName}-EventLedgerTable`;
  let ExclusiveStartTableName: string | undefined;
  do {
    const page = await dynamodb.send(new ListTablesCommand({ ExclusiveStartTableName }));
    const found = page.TableNames?.find((t) => t.startsWith(prefix));
    if (found) return found;
    ExclusiveStartTableName = page.LastEvaluatedTableName;
  } while (ExclusiveStartTableName);
  throw new Error(`no table ${prefix}-* (is the stack deployed in this region?)`);
}
