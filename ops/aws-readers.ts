import { type CloudWatchClient, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { type DynamoDBClient, ListTablesCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  type _InstanceType,
  DescribeInstancesCommand,
  type EC2Client,
  GetInstanceMetadataDefaultsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { ListExecutionsCommand, ListStateMachinesCommand, type SFNClient } from "@aws-sdk/client-sfn";
import {
  DescribeInstanceInformationCommand,
  GetParametersCommand,
  ListDocumentsCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { awsErrorCode } from "../shared/aws/errors.js";
import type { DoctorReaders, SpokeInfo } from "./doctor.js";
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

/**
 * The doctor's readers over SDK clients. CloudTrail and CloudFormation are left out: their SDK clients are not
 * dependencies of the installed command, so those two checks say `not-checked` with the command to run by hand.
 */
export function sdkDoctorReaders(
  clientsFor: (region: string) => RegionClients,
  extra: Pick<DoctorReaders, "organizationAccounts" | "spoke"> = {},
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

/** A spoke as the doctor sees it through the assumed role: its probe documents (SSM ListDocuments, Owner=Self). */
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
  // The spoke-region stack is not read (no CloudFormation client): a probe document stands for it.
  return {
    reachable: true,
    probeDocuments,
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
