import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { inflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import { oslsPackage } from "../scripts/packaged-template.js";
import { GUARD_PROBE_DOCUMENTS } from "../shared/probes/guard-probe-documents.js";
import { matchesEventPattern } from "./event-pattern.js";

/**
 * Packages the real serverless.yml with osls (offline, no credentials) and checks the CloudFormation it produces:
 * the rule against real-shaped CloudTrail events, least privilege, failure paths and alerting. The expectations are
 * exact on purpose: broadening a permission, a pattern or a resource list must fail here and be reviewed.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ACCOUNT = "123456789012";
const REGION = "us-east-1";
const STAGE = "dev";
const PARTITION = "aws";

const resourceSchema = z.object({
  Type: z.string(),
  Properties: z.record(z.string(), z.unknown()).default({}),
  Condition: z.string().optional(),
  DeletionPolicy: z.string().optional(),
  UpdateReplacePolicy: z.string().optional(),
});
const templateSchema = z.object({
  Resources: z.record(z.string(), resourceSchema),
  Conditions: z.record(z.string(), z.unknown()).default({}),
});
type Template = z.infer<typeof templateSchema>;
type Resource = z.infer<typeof resourceSchema>;

const statementSchema = z.object({
  Sid: z.string().optional(),
  Effect: z.enum(["Allow", "Deny"]),
  Action: z.union([z.string(), z.array(z.string())]),
  NotAction: z.unknown().optional(),
  Resource: z.unknown().optional(),
  NotResource: z.unknown().optional(),
  Principal: z.unknown().optional(),
  Condition: z.unknown().optional(),
});
type Statement = z.infer<typeof statementSchema>;
const policyDocumentSchema = z.object({ Statement: z.array(statementSchema) });

const execFileAsync = promisify(execFile);

/** Runs `osls package` into a temporary folder (scripts/packaged-template.ts: offline, no credentials). */
async function packageStack(params: string[], region = REGION): Promise<{ template: Template; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "imdsv2-guard-package-"));
  try {
    await oslsPackage(dir, params, { region, stage: STAGE });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const raw = JSON.parse(await readFile(join(dir, "cloudformation-template-update-stack.json"), "utf8"));
  return { template: templateSchema.parse(raw), dir };
}

async function readFixture(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(root, "test/fixtures/events", name), "utf8"));
}

function resource(template: Template, logicalId: string): Resource {
  const found = template.Resources[logicalId];
  if (!found) throw new Error(`Resource ${logicalId} is not in the template`);
  return found;
}

function ofType(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

/** Resolves the intrinsics the rule may use, with this test's account and region. Anything else throws. */
function resolve(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(resolve);
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value);
  const [first] = entries;
  if (entries.length === 1 && first && first[0] === "Fn::Sub" && typeof first[1] === "string") {
    return first[1].replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      const pseudo: Record<string, string> = {
        "AWS::Partition": PARTITION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
      };
      const resolved = pseudo[name];
      if (resolved === undefined) throw new Error(`Cannot resolve \${${name}} in a test`);
      return resolved;
    });
  }
  if (entries.length === 1 && first && (first[0] === "Ref" || first[0].startsWith("Fn::"))) {
    throw new Error(`Cannot resolve ${first[0]} in a test`);
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v)]));
}

/** Evaluates the Conditions section, which osls leaves as comparisons of literal strings. */
function evaluateCondition(template: Template, expression: unknown): boolean {
  const expr = z.record(z.string(), z.unknown()).parse(expression);
  const [[fn, args] = []] = Object.entries(expr);
  if (fn === "Condition") return evaluateCondition(template, template.Conditions[String(args)]);
  const list = z.array(z.unknown()).parse(args);
  if (fn === "Fn::Equals") return JSON.stringify(list[0]) === JSON.stringify(list[1]);
  if (fn === "Fn::Not") return !evaluateCondition(template, list[0]);
  if (fn === "Fn::And") return list.every((e) => evaluateCondition(template, e));
  if (fn === "Fn::Or") return list.some((e) => evaluateCondition(template, e));
  throw new Error(`Unsupported condition function ${fn}`);
}

function condition(template: Template, name: string): boolean {
  return evaluateCondition(template, template.Conditions[name]);
}

/** Picks the branch of each Fn::If by the template's conditions (as CloudFormation will), leaving the rest as is. */
function evaluateIfs(template: Template, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => evaluateIfs(template, v));
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value);
  const [first] = entries;
  if (entries.length === 1 && first && first[0] === "Fn::If") {
    const [name, whenTrue, whenFalse] = z.tuple([z.string(), z.unknown(), z.unknown()]).parse(first[1]);
    return evaluateIfs(template, condition(template, name) ? whenTrue : whenFalse);
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, evaluateIfs(template, v)]));
}

/** Drops AWS::NoValue as CloudFormation does: from lists, and as a property's value. */
function withoutNoValue(value: unknown): unknown {
  const isNoValue = (v: unknown) => JSON.stringify(v) === JSON.stringify({ Ref: "AWS::NoValue" });
  if (Array.isArray(value)) return value.filter((v) => !isNoValue(v)).map(withoutNoValue);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => !isNoValue(v))
      .map(([k, v]) => [k, withoutNoValue(v)]),
  );
}

/** A function's environment variables, as packaged. */
function envOf(template: Template, logicalId: string): Record<string, unknown> {
  return z
    .object({ Variables: z.record(z.string(), z.unknown()) })
    .parse(resource(template, logicalId).Properties.Environment).Variables;
}

interface PolicySource {
  where: string;
  statements: Statement[];
  /** Resource policies (key, queue, bucket) name "*" as "this resource"; identity policies do not. */
  kind: "identity" | "resource" | "trust";
  /** False when the resource holding the policy has a Condition that is false for this template's params. */
  deployed: boolean;
}

/**
 * Every policy document in the template: inline, standalone, managed, trust, key, queue and bucket policies, also
 * those under a Condition that is false (checks such as "no wildcard action" hold for every set of params).
 */
function allPolicies(template: Template): PolicySource[] {
  const sources: PolicySource[] = [];
  for (const [id, r] of Object.entries(template.Resources)) {
    const deployed = r.Condition === undefined || condition(template, r.Condition);
    // A statement under Fn::If (the acting roles' hub-account rights, SingleAccount) is what these params deploy.
    const add = (where: string, doc: unknown, kind: PolicySource["kind"]) =>
      sources.push({
        where,
        statements: policyDocumentSchema.parse(withoutNoValue(evaluateIfs(template, doc))).Statement,
        kind,
        deployed,
      });
    const p = r.Properties;
    switch (r.Type) {
      case "AWS::IAM::Role":
        add(`${id} trust`, p.AssumeRolePolicyDocument, "trust");
        for (const inline of z
          .array(z.object({ PolicyName: z.string(), PolicyDocument: z.unknown() }))
          .parse(p.Policies ?? [])) {
          add(`${id}/${inline.PolicyName}`, inline.PolicyDocument, "identity");
        }
        break;
      case "AWS::IAM::RolePolicy":
      case "AWS::IAM::Policy":
      case "AWS::IAM::ManagedPolicy":
        add(id, p.PolicyDocument, "identity");
        break;
      case "AWS::KMS::Key":
        add(id, p.KeyPolicy, "resource");
        break;
      case "AWS::SQS::QueuePolicy":
      case "AWS::S3::BucketPolicy":
      case "AWS::SNS::TopicPolicy":
        add(id, p.PolicyDocument, "resource");
        break;
      default:
        if (r.Type.startsWith("AWS::IAM::")) throw new Error(`${id}: ${r.Type} is not inspected by this test`);
    }
  }
  return sources;
}

function actionsOf(statement: Statement): string[] {
  return typeof statement.Action === "string" ? [statement.Action] : statement.Action;
}

function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : value === undefined ? [] : [value];
}

/** The Allow statements a role gets with this template's params: its inline policies and the standalone ones. */
function roleStatements(template: Template, roleId: string): Statement[] {
  const attached = (id: string) => {
    const p = template.Resources[id]?.Properties ?? {};
    return [...listOf(p.RoleName), ...listOf(p.Roles)].some((r) => JSON.stringify(r) === JSON.stringify(ref(roleId)));
  };
  return allPolicies(template)
    .filter((s) => s.kind === "identity" && s.deployed && (s.where.startsWith(`${roleId}/`) || attached(s.where)))
    .flatMap((s) => s.statements)
    .filter((s) => s.Effect === "Allow");
}

function allowedActions(template: Template, roleId: string): string[] {
  return [...new Set(roleStatements(template, roleId).flatMap(actionsOf))].sort();
}

function statementFor(template: Template, roleId: string, action: string): Statement {
  const found = roleStatements(template, roleId).filter((s) => actionsOf(s).includes(action));
  expect(found, `${roleId} has exactly one statement allowing ${action}`).toHaveLength(1);
  const [statement] = found;
  if (!statement) throw new Error("unreachable");
  return statement;
}

const sub = (s: string) => ({ "Fn::Sub": s });
const getAtt = (id: string, attribute = "Arn") => ({ "Fn::GetAtt": [id, attribute] });
const ref = (id: string) => ({ Ref: id });
const thisRegionOnly = { StringEquals: { "aws:RequestedRegion": ref("AWS::Region") } };

const FUNCTIONS = {
  admitEvent: { logicalId: "AdmitEventLambdaFunction", role: "AdmitEventRole" },
  resolveTargets: { logicalId: "ResolveTargetsLambdaFunction", role: "ResolveTargetsRole" },
  assessAccount: { logicalId: "AssessAccountLambdaFunction", role: "AssessAccountRole" },
  enforce: { logicalId: "EnforceLambdaFunction", role: "EnforceRole" },
  checkApplied: { logicalId: "CheckAppliedLambdaFunction", role: "CheckAppliedRole" },
  checkManaged: { logicalId: "CheckManagedLambdaFunction", role: "CheckManagedRole" },
  sendProbe: { logicalId: "SendProbeLambdaFunction", role: "SendProbeRole" },
  checkProbe: { logicalId: "CheckProbeLambdaFunction", role: "CheckProbeRole" },
  finalizeBatch: { logicalId: "FinalizeBatchLambdaFunction", role: "FinalizeBatchRole" },
  notify: { logicalId: "NotifyLambdaFunction", role: "NotifyRole" },
  checkRejected: { logicalId: "CheckRejectedLambdaFunction", role: "CheckRejectedRole" },
  guardAccountDefault: { logicalId: "GuardAccountDefaultLambdaFunction", role: "GuardAccountDefaultRole" },
  claimInstances: { logicalId: "ClaimInstancesLambdaFunction", role: "ClaimInstancesRole" },
  sweep: { logicalId: "SweepLambdaFunction", role: "SweepRole" },
} as const;

/**
 * The steps of the state machine: every function but those that start executions themselves (AdmitEvent, EventBridge's
 * target, and the scheduled sweep) and CheckRejected, which the watch's one-off schedule runs after the execution.
 */
const STEP_FUNCTIONS = Object.entries(FUNCTIONS)
  .filter(([key]) => !["admitEvent", "sweep", "checkRejected"].includes(key))
  .map(([, f]) => f.logicalId);

const LOGS = ["logs:CreateLogStream", "logs:PutLogEvents"];

/**
 * The complete list of what each role may do with the default params. Adding an action anywhere must be a reviewed
 * change to this table.
 */
const EXPECTED_ACTIONS: Record<string, string[]> = {
  // ResolveTargets', ClaimInstances' and AssessAccount's former first states, then the execution's start.
  AdmitEventRole: [
    "dynamodb:PutItem",
    "dynamodb:Query",
    "ec2:DescribeInstances",
    "ec2:GetInstanceMetadataDefaults",
    "sqs:SendMessage",
    "states:SendTaskSuccess",
    "states:StartExecution",
    ...LOGS,
  ],
  ResolveTargetsRole: [...LOGS],
  AssessAccountRole: ["ec2:GetInstanceMetadataDefaults", ...LOGS],
  EnforceRole: [
    "cloudwatch:GetMetricData",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:ModifyInstanceMetadataOptions",
    ...LOGS,
  ],
  CheckAppliedRole: ["dynamodb:GetItem", "dynamodb:PutItem", "ec2:DescribeInstances", ...LOGS],
  CheckManagedRole: [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "ec2:DescribeInstances",
    "ssm:DescribeInstanceInformation",
    ...LOGS,
  ],
  SendProbeRole: ["dynamodb:GetItem", "dynamodb:PutItem", "ssm:GetDocument", "ssm:SendCommand", ...LOGS],
  CheckProbeRole: ["dynamodb:GetItem", "dynamodb:PutItem", "ssm:GetCommandInvocation", ...LOGS],
  FinalizeBatchRole: ["dynamodb:GetItem", "dynamodb:PutItem", ...LOGS],
  NotifyRole: [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "iam:PassRole",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "scheduler:CreateSchedule",
    "sns:Publish",
    ...LOGS,
  ],
  CheckRejectedRole: [
    "cloudwatch:GetMetricData",
    "ec2:GetInstanceMetadataDefaults",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "sns:Publish",
    "sqs:SendMessage",
    ...LOGS,
  ],
  GuardAccountDefaultRole: ["ec2:GetInstanceMetadataDefaults", ...LOGS],
  ClaimInstancesRole: ["dynamodb:PutItem", "dynamodb:Query", "states:SendTaskSuccess", ...LOGS],
  StateMachineRole: [
    "dynamodb:PutItem",
    "lambda:InvokeFunction",
    "states:DescribeExecution",
    "states:StartExecution",
    "states:StopExecution",
  ],
  SweepRole: [
    "dynamodb:PutItem",
    "dynamodb:Query",
    "ec2:DescribeInstances",
    "ec2:GetInstanceMetadataDefaults",
    "sqs:SendMessage",
    "states:StartExecution",
    ...LOGS,
  ],
  WatchSchedulerRole: ["lambda:InvokeFunction", "sqs:SendMessage"],
  ChatbotRole: [],
};

/** With enforceAccountDefault=true in enforce mode, and only then, the sweep may also set the account's IMDS default. */
const EXPECTED_ACTIONS_ENFORCING_ACCOUNT_DEFAULT: Record<string, string[]> = {
  ...EXPECTED_ACTIONS,
  SweepRole: [...(EXPECTED_ACTIONS.SweepRole ?? []), "ec2:ModifyInstanceMetadataDefaults"],
  GuardAccountDefaultRole: [...(EXPECTED_ACTIONS.GuardAccountDefaultRole ?? []), "ec2:ModifyInstanceMetadataDefaults"],
};

/** Actions AWS does not scope by resource: the only ones allowed on Resource "*" in an identity policy. */
const UNSCOPABLE_ACTIONS = new Set([
  "ec2:DescribeInstances",
  "ec2:DescribeImages",
  // Account-level settings of a region: no ARN to scope to.
  "ec2:GetInstanceMetadataDefaults",
  "ec2:ModifyInstanceMetadataDefaults",
  "ssm:DescribeInstanceInformation",
  "ssm:GetCommandInvocation",
  "cloudwatch:DescribeAlarms",
  "cloudwatch:GetMetricData",
  "cloudwatch:GetMetricWidgetImage",
  // No resource types: the task token names the task, and a state machine ARN as Resource denies every call.
  "states:SendTaskSuccess",
]);

/** Reads a zip archive (stored or deflated entries) into name -> content, from its central directory. */
function readZip(zip: Buffer): Map<string, Buffer> {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error("Not a zip archive");
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const files = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error("Corrupt central directory");
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const name = zip.toString("utf8", at + 46, at + 46 + nameLength);
    const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const data = zip.subarray(dataStart, dataStart + compressedSize);
    if (!name.endsWith("/")) files.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    at += 46 + nameLength + extraLength + commentLength;
  }
  return files;
}

let defaults: Template;
/** Everything optional on, in audit mode: enforceAccountDefault=true must then grant nothing. */
let configured: Template;
/** enforceAccountDefault=true in enforce mode: the one setting that lets the sweep change the account default. */
let enforcingDefault: Template;
let defaultsDir = "";
let configuredDir = "";
let enforcingDefaultDir = "";

beforeAll(async () => {
  // Sequential: both runs share serverless-esbuild's work folder.
  ({ template: defaults, dir: defaultsDir } = await packageStack([]));
  ({ template: configured, dir: configuredDir } = await packageStack([
    "alertEmail=secops@example.com",
    "emailVerdicts=fail,error",
    "slackWorkspaceId=T0EXAMPLE1",
    "slackChannelId=C0EXAMPLE2",
    "mode=audit",
    "logRetentionDays=90",
    "enforceAccountDefault=true",
    "exemptUntilTagKey=sec:exempt-until",
    "onV1Usage=enforce",
    "v1UsageLookbackHours=72",
    "watchRejectedSeconds=0",
    "sweepInstancesPerExecution=200",
    "slackVerdicts=fail,alert",
  ]));
  ({ template: enforcingDefault, dir: enforcingDefaultDir } = await packageStack([
    "mode=enforce",
    "enforceAccountDefault=true",
  ]));
  // Three packagings in a row: minutes on a loaded machine. The assertions are on the templates, not on the time.
}, 1_200_000);

afterAll(async () => {
  for (const dir of [defaultsDir, configuredDir, enforcingDefaultDir]) {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
});

describe("EventBridge state-change rule (no trail needed)", () => {
  const pattern = () => resolve(resource(defaults, "GuardStateChangeRule").Properties.EventPattern);

  it("selects EC2's pending notifications only", async () => {
    expect(resource(defaults, "GuardStateChangeRule").Properties.EventPattern).toEqual({
      source: ["aws.ec2"],
      "detail-type": ["EC2 Instance State-change Notification"],
      detail: { state: ["pending"] },
    });
    expect(matchesEventPattern(pattern(), await readFixture("state-change-pending.json"))).toBe(true);
    expect(matchesEventPattern(pattern(), await readFixture("state-change-running.json"))).toBe(false);
    expect(matchesEventPattern(pattern(), await readFixture("run-instances.json"))).toBe(false);
  });

  it("invokes AdmitEvent with the same retries and dead-letter queue as the CloudTrail rule", () => {
    const targetsOf = (id: string) =>
      z.array(z.record(z.string(), z.unknown())).parse(resource(defaults, id).Properties.Targets);
    expect(targetsOf("GuardStateChangeRule")).toEqual(targetsOf("GuardEventRule"));
  });
});

describe("EventBridge rule", () => {
  const pattern = () => resolve(resource(defaults, "GuardEventRule").Properties.EventPattern);

  it("selects the successful launch, start, fleet and metadata calls from CloudTrail, nothing else", () => {
    const raw = resource(defaults, "GuardEventRule").Properties.EventPattern;
    expect(raw).toMatchObject({
      source: ["aws.ec2"],
      "detail-type": ["AWS API Call via CloudTrail"],
      detail: {
        eventSource: ["ec2.amazonaws.com"],
        eventName: [
          "RunInstances",
          "StartInstances",
          "CreateFleet",
          "ModifyInstanceMetadataOptions",
          "ModifyInstanceMetadataDefaults",
        ],
        errorCode: [{ exists: false }],
      },
    });
    expect(Object.keys(z.record(z.string(), z.unknown()).parse(raw)).sort()).toEqual(
      ["detail", "detail-type", "source"].sort(),
    );
    // The guard recognises itself by its session ARN only; the session issuer is not a reliable discriminator.
    expect(JSON.stringify(raw)).not.toContain("sessionIssuer");
  });

  it.each([
    "run-instances.json",
    "modify-instance-metadata-options.json",
    "run-instances-by-iam-user.json",
    "modify-instance-metadata-options-by-root.json",
    "start-instances.json",
    "create-fleet-instant.json",
    "run-instances-by-ec2fleet-without-response.json",
    "run-instances-root-invoked-by-autoscaling-2016.json",
    "modify-instance-metadata-defaults.json",
  ])("matches %s", async (name) => {
    expect(matchesEventPattern(pattern(), await readFixture(name))).toBe(true);
  });

  it.each([
    "modify-instance-metadata-options-failed.json",
    "modify-instance-metadata-options-by-guard.json",
    "modify-instance-metadata-defaults-failed.json",
  ])("does not match %s", async (name) => {
    expect(matchesEventPattern(pattern(), await readFixture(name))).toBe(false);
  });

  it("is not where the state-change notification goes: that has its own rule", async () => {
    expect(matchesEventPattern(pattern(), await readFixture("state-change-pending.json"))).toBe(false);
  });

  it("still matches calls whose userIdentity has no arn (AWS services), instead of dropping them unseen", async () => {
    const event = await readFixture("run-instances.json");
    const detail = z.record(z.string(), z.unknown()).parse(event.detail);
    const serviceCall = {
      ...event,
      detail: { ...detail, userIdentity: { type: "AWSService", invokedBy: "ec2.amazonaws.com" } },
    };
    expect(matchesEventPattern(pattern(), serviceCall)).toBe(true);
  });

  it("excludes only the Enforce role's own sessions, not roles whose names merely start the same", async () => {
    const guardCall = await readFixture("modify-instance-metadata-options-by-guard.json");
    const text = JSON.stringify(guardCall).replaceAll(
      "assumed-role/imdsv2-guard-dev-us-east-1-enforce/",
      "assumed-role/imdsv2-guard-dev-us-east-1-enforcer/",
    );
    expect(matchesEventPattern(pattern(), JSON.parse(text))).toBe(true);
  });

  it("uses the same guard ARN prefix as ResolveTargets, built from the Enforce role's name", () => {
    const roleName = resource(defaults, "EnforceRole").Properties.RoleName;
    expect(roleName).toBe(`imdsv2-guard-${STAGE}-${REGION}-enforce`);
    const prefix = sub(`arn:\${AWS::Partition}:sts::\${AWS::AccountId}:assumed-role/${String(roleName)}/`);
    const env = z
      .object({ Variables: z.record(z.string(), z.unknown()) })
      .parse(resource(defaults, "ResolveTargetsLambdaFunction").Properties.Environment);
    expect(env.Variables.GUARD_ROLE_ARN_PREFIX).toEqual(prefix);
    const raw = JSON.stringify(resource(defaults, "GuardEventRule").Properties.EventPattern);
    expect(raw).toContain(JSON.stringify({ "anything-but": { prefix } }));
  });

  it("invokes AdmitEvent (no role: its resource policy), retries, and dead-letters what it cannot deliver", () => {
    const targets = z
      .array(z.record(z.string(), z.unknown()))
      .parse(resource(defaults, "GuardEventRule").Properties.Targets);
    expect(targets).toHaveLength(1);
    const [target] = targets;
    expect(target?.Arn).toEqual(getAtt("AdmitEventLambdaFunction"));
    // A Lambda target takes no RoleArn: EventBridge invokes it with the function's permission for this rule.
    expect(target?.RoleArn).toBeUndefined();
    expect(target?.DeadLetterConfig).toEqual({ Arn: getAtt("EventDeadLetterQueue") });
    const retry = z
      .object({ MaximumRetryAttempts: z.number().int().positive(), MaximumEventAgeInSeconds: z.number().int() })
      .parse(target?.RetryPolicy);
    expect(retry.MaximumEventAgeInSeconds).toBeGreaterThanOrEqual(60);
  });
});

describe("IAM", () => {
  it("allows no wildcard action (* or service:*) in any policy, and no NotAction/NotResource allows", () => {
    for (const { where, statements } of [defaults, configured, enforcingDefault].flatMap(allPolicies)) {
      for (const s of statements.filter((st) => st.Effect === "Allow")) {
        expect(s.NotAction, where).toBeUndefined();
        expect(s.NotResource, where).toBeUndefined();
        for (const action of actionsOf(s)) {
          expect(action, `${where} allows ${action}`).not.toBe("*");
          expect(action, `${where} allows ${action}`).not.toMatch(/^[A-Za-z0-9-]+:\*$/);
        }
      }
    }
  });

  it("attaches no AWS managed policy, so no admin or power-user policy, to any role or Chatbot guardrail", () => {
    for (const template of [defaults, configured]) {
      for (const [id, role] of ofType(template, "AWS::IAM::Role")) {
        for (const arn of listOf(role.Properties.ManagedPolicyArns)) {
          const target = z.object({ Ref: z.string() }).parse(arn);
          expect(resource(template, target.Ref).Type, `${id} attaches ${target.Ref}`).toBe("AWS::IAM::ManagedPolicy");
        }
        expect(role.Properties.PermissionsBoundary, id).toBeUndefined();
      }
      for (const [id, channel] of ofType(template, "AWS::Chatbot::SlackChannelConfiguration")) {
        const guardrails = listOf(channel.Properties.GuardrailPolicies);
        // Without a guardrail Chatbot applies AdministratorAccess.
        expect(guardrails.length, id).toBeGreaterThan(0);
        for (const arn of guardrails) {
          const target = z.object({ Ref: z.string() }).parse(arn);
          expect(resource(template, target.Ref).Type).toBe("AWS::IAM::ManagedPolicy");
        }
      }
      expect(JSON.stringify(template)).not.toMatch(/arn:aws:iam::aws:policy|AdministratorAccess|PowerUserAccess/);
    }
  });

  it("gives each function its own role", () => {
    const functions = ofType(defaults, "AWS::Lambda::Function");
    expect(functions.map(([id]) => id).sort()).toEqual(
      Object.values(FUNCTIONS)
        .map((f) => f.logicalId)
        .sort(),
    );
    for (const { logicalId, role } of Object.values(FUNCTIONS)) {
      expect(resource(defaults, logicalId).Properties.Role, logicalId).toEqual(getAtt(role));
    }
  });

  it("allows each role exactly the actions of its step", () => {
    for (const [template, expected] of [
      [defaults, EXPECTED_ACTIONS],
      [configured, EXPECTED_ACTIONS],
      [enforcingDefault, EXPECTED_ACTIONS_ENFORCING_ACCOUNT_DEFAULT],
    ] as const) {
      const roles = ofType(template, "AWS::IAM::Role").map(([id]) => id);
      expect(roles.sort()).toEqual(Object.keys(expected).sort());
      for (const [roleId, actions] of Object.entries(expected)) {
        expect(allowedActions(template, roleId), roleId).toEqual([...actions].sort());
      }
    }
  });

  it("lets the sweep change the account's IMDS default only with enforceAccountDefault=true and mode=enforce", () => {
    const policy = resource(defaults, "SweepAccountDefaultPolicy");
    expect(policy.Type).toBe("AWS::IAM::RolePolicy");
    // EnforceAccountDefault in single-account mode (the organization sweep changes no default).
    expect(policy.Condition).toBe("EnforceAccountDefaultHere");
    expect(defaults.Conditions.EnforceAccountDefaultHere).toEqual({
      "Fn::And": [{ Condition: "EnforceAccountDefault" }, { Condition: "SingleAccount" }],
    });
    expect(defaults.Conditions.SingleAccount).toEqual({ "Fn::Equals": ["", ""] });
    expect(policy.Properties.RoleName).toEqual(ref("SweepRole"));
    // Literal strings on both sides: a boolean param would make CloudFormation compare false with "true".
    const both = (flag: string, mode: string) => ({
      "Fn::And": [{ "Fn::Equals": [flag, "true"] }, { "Fn::Equals": [mode, "enforce"] }],
    });
    expect(defaults.Conditions.EnforceAccountDefault).toEqual(both("false", "enforce"));
    expect(configured.Conditions.EnforceAccountDefault).toEqual(both("true", "audit"));
    expect(enforcingDefault.Conditions.EnforceAccountDefault).toEqual(both("true", "enforce"));
    expect(condition(defaults, "EnforceAccountDefault")).toBe(false);
    // An audit deploy that kept enforceAccountDefault=true still cannot change the default.
    expect(condition(configured, "EnforceAccountDefault")).toBe(false);
    expect(condition(enforcingDefault, "EnforceAccountDefault")).toBe(true);
    expect(allowedActions(defaults, "SweepRole")).not.toContain("ec2:ModifyInstanceMetadataDefaults");
    expect(allowedActions(configured, "SweepRole")).not.toContain("ec2:ModifyInstanceMetadataDefaults");
    const statements = policyDocumentSchema.parse(policy.Properties.PolicyDocument).Statement;
    expect(statements).toEqual([
      {
        Sid: "SetAccountImdsDefault",
        Effect: "Allow",
        Action: "ec2:ModifyInstanceMetadataDefaults",
        Resource: "*",
        Condition: thisRegionOnly,
      },
    ]);
    expect(statementFor(enforcingDefault, "SweepRole", "ec2:ModifyInstanceMetadataDefaults")).toEqual(statements[0]);
    // No other role, in any template, may change the account default, but GuardAccountDefault under the same
    // condition (below).
    for (const template of [defaults, configured, enforcingDefault]) {
      for (const role of ofType(template, "AWS::IAM::Role").map(([id]) => id)) {
        if (role !== "SweepRole" && (role !== "GuardAccountDefaultRole" || template !== enforcingDefault))
          expect(allowedActions(template, role), role).not.toContain("ec2:ModifyInstanceMetadataDefaults");
      }
    }
    // The sweep's setting comes from the same condition, so the code never tries what the role may not do.
    const sweepEnv = (t: Template) => evaluateIfs(t, envOf(t, "SweepLambdaFunction").ENFORCE_ACCOUNT_DEFAULT);
    expect(sweepEnv(defaults)).toBe("false");
    expect(sweepEnv(configured)).toBe("false");
    expect(sweepEnv(enforcingDefault)).toBe("true");
  });

  it("lets GuardAccountDefault set a weakened default back only under the sweep's condition, and tells it so", () => {
    const policy = resource(defaults, "GuardAccountDefaultPolicy");
    expect(policy.Condition).toBe("EnforceAccountDefaultHere");
    expect(policy.Properties.RoleName).toEqual(ref("GuardAccountDefaultRole"));
    expect(policyDocumentSchema.parse(policy.Properties.PolicyDocument).Statement).toEqual([
      {
        Sid: "SetAccountImdsDefault",
        Effect: "Allow",
        Action: "ec2:ModifyInstanceMetadataDefaults",
        Resource: "*",
        Condition: thisRegionOnly,
      },
    ]);
    expect(allowedActions(configured, "GuardAccountDefaultRole")).not.toContain("ec2:ModifyInstanceMetadataDefaults");
    expect(allowedActions(enforcingDefault, "GuardAccountDefaultRole")).toContain("ec2:ModifyInstanceMetadataDefaults");
    const env = (t: Template) => evaluateIfs(t, envOf(t, "GuardAccountDefaultLambdaFunction").ENFORCE_ACCOUNT_DEFAULT);
    expect(env(defaults)).toBe("false");
    expect(env(configured)).toBe("false");
    expect(env(enforcingDefault)).toBe("true");
  });

  it("lets each function write only to its own log group", () => {
    for (const { logicalId, role } of Object.values(FUNCTIONS)) {
      const fn = resource(defaults, logicalId);
      for (const action of LOGS) {
        const s = statementFor(defaults, role, action);
        const target = z.object({ "Fn::GetAtt": z.tuple([z.string(), z.literal("Arn")]) }).parse(s.Resource);
        const group = resource(defaults, target["Fn::GetAtt"][0]);
        expect(group.Type).toBe("AWS::Logs::LogGroup");
        expect(group.Properties.LogGroupName).toBe(`/aws/lambda/${String(fn.Properties.FunctionName)}`);
      }
    }
  });

  it("scopes ModifyInstanceMetadataOptions to instances of this account and region", () => {
    const s = statementFor(defaults, "EnforceRole", "ec2:ModifyInstanceMetadataOptions");
    expect(actionsOf(s)).toEqual(["ec2:ModifyInstanceMetadataOptions"]);
    expect(s.Resource).toEqual(sub(`arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:instance/*`));
  });

  it("scopes SendCommand to the guard's own probe documents and instances of this account and region", async () => {
    const documents = ["linux", "windows"].map((platform) =>
      sub(
        `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:document/\${AWS::StackName}-probe-${platform}`,
      ),
    );
    const s = statementFor(defaults, "SendProbeRole", "ssm:SendCommand");
    expect(actionsOf(s)).toEqual(["ssm:SendCommand"]);
    expect(listOf(s.Resource)).toEqual([
      ...documents,
      sub(`arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:instance/*`),
    ]);
    const read = statementFor(defaults, "SendProbeRole", "ssm:GetDocument");
    expect(actionsOf(read)).toEqual(["ssm:GetDocument"]);
    expect(listOf(read.Resource)).toEqual(documents);
    // The documents those ARNs name, and the name SendProbe is told.
    for (const [id, platform] of [
      ["ProbeDocumentLinux", "linux"],
      ["ProbeDocumentWindows", "windows"],
    ] as const) {
      const document = resource(defaults, id);
      expect(document.Type).toBe("AWS::SSM::Document");
      expect(document.Properties.Name).toEqual(sub(`\${AWS::StackName}-probe-${platform}`));
      expect(document.Properties.DocumentType).toBe("Command");
      expect(document.Condition).toBe("SingleAccount");
      // Through osls's variable resolution untouched: the shell's ${...} reach CloudFormation byte for byte.
      const script = await readFile(
        join(root, `shared/probes/probe-${platform}.${platform === "linux" ? "sh" : "ps1"}`),
        "utf8",
      );
      expect(JSON.stringify(document.Properties.Content)).toBe(JSON.stringify(GUARD_PROBE_DOCUMENTS[platform].content));
      expect(
        z
          .array(z.object({ inputs: z.object({ runCommand: z.array(z.string()) }) }))
          .parse(z.object({ mainSteps: z.unknown() }).parse(document.Properties.Content).mainSteps)[0]?.inputs
          .runCommand,
      ).toEqual([script]);
    }
    expect(envOf(defaults, "SendProbeLambdaFunction").PROBE_DOCUMENT_PREFIX).toEqual(sub(`\${AWS::StackName}-probe`));
    // No policy in any template names an AWS shell document.
    for (const template of [defaults, configured, enforcingDefault]) {
      expect(JSON.stringify(template)).not.toMatch(/AWS-Run(Shell|PowerShell)Script/);
    }
  });

  it('uses Resource "*" only for actions AWS cannot scope, pinned to this region', () => {
    for (const { where, statements, kind } of [defaults, configured, enforcingDefault].flatMap(allPolicies)) {
      if (kind !== "identity") continue;
      for (const s of statements.filter((st) => st.Effect === "Allow")) {
        if (!listOf(s.Resource).includes("*")) continue;
        expect(listOf(s.Resource), where).toEqual(["*"]);
        for (const action of actionsOf(s)) expect(UNSCOPABLE_ACTIONS.has(action), `${where}: ${action}`).toBe(true);
        if (!where.startsWith("ChatbotReadOnlyPolicy")) expect(s.Condition, where).toEqual(thisRegionOnly);
      }
    }
  });

  it("lets the state machine invoke only its own functions, run only its own Map, and write only the ledger", () => {
    const invoke = statementFor(defaults, "StateMachineRole", "lambda:InvokeFunction");
    expect(actionsOf(invoke)).toEqual(["lambda:InvokeFunction"]);
    expect(listOf(invoke.Resource)).toEqual(STEP_FUNCTIONS.map((id) => getAtt(id)));
    // StoreWorkList's work list; a batch's progress between slices is the functions', the claims AdmitEvent's.
    const put = statementFor(defaults, "StateMachineRole", "dynamodb:PutItem");
    expect(actionsOf(put)).toEqual(["dynamodb:PutItem"]);
    expect(put.Resource).toEqual(getAtt("EventLedgerTable"));
    // The Distributed Map starts each batch as a child execution of this state machine, with this role.
    const name = z.string().parse(resource(defaults, "GuardStateMachine").Properties.StateMachineName);
    const start = statementFor(defaults, "StateMachineRole", "states:StartExecution");
    expect(actionsOf(start)).toEqual(["states:StartExecution"]);
    expect(resolve(start.Resource)).toBe(`arn:${PARTITION}:states:${REGION}:${ACCOUNT}:stateMachine:${name}`);
    const watch = statementFor(defaults, "StateMachineRole", "states:DescribeExecution");
    expect(actionsOf(watch).sort()).toEqual(["states:DescribeExecution", "states:StopExecution"]);
    expect(resolve(watch.Resource)).toBe(`arn:${PARTITION}:states:${REGION}:${ACCOUNT}:execution:${name}/*`);
    const asl = JSON.stringify(
      JSON.parse(z.string().parse(resource(defaults, "GuardStateMachine").Properties.DefinitionString)),
    );
    expect(asl, "the Map these permissions are for").toContain('"Mode":"DISTRIBUTED"');
    expect(asl, "its children are Express").toContain('"ExecutionType":"EXPRESS"');
  });

  it("lets AdmitEvent and the sweep start only the guard's state machine, and AdmitEvent tell it the attribution", () => {
    for (const role of ["AdmitEventRole", "SweepRole"]) {
      const start = statementFor(defaults, role, "states:StartExecution");
      expect(actionsOf(start), role).toEqual(["states:StartExecution"]);
      expect(start.Resource, role).toEqual(ref("GuardStateMachine"));
    }
    expect(envOf(defaults, "AdmitEventLambdaFunction").STATE_MACHINE_ARN).toEqual(ref("GuardStateMachine"));
    // SendTaskSuccess has no resource types: "*" in this region, for the two functions that complete AwaitAttribution.
    for (const role of ["AdmitEventRole", "ClaimInstancesRole"]) {
      const send = statementFor(defaults, role, "states:SendTaskSuccess");
      expect(actionsOf(send), role).toEqual(["states:SendTaskSuccess"]);
      expect(send.Resource, role).toBe("*");
      expect(send.Condition, role).toEqual(thisRegionOnly);
    }
    for (const role of ofType(configured, "AWS::IAM::Role").map(([id]) => id)) {
      const states = allowedActions(configured, role).filter((a) => /^states:Send/.test(a));
      expect(states, role).toEqual(
        ["AdmitEventRole", "ClaimInstancesRole"].includes(role) ? ["states:SendTaskSuccess"] : [],
      );
    }
  });

  it("lets only the guard's rules invoke AdmitEvent and the sweep's schedule the sweep, each by its rule's ARN", () => {
    const permissions = ofType(defaults, "AWS::Lambda::Permission").map(([, p]) => p.Properties);
    const byRule = (fn: string, rule: string) => ({
      FunctionName: getAtt(fn),
      Action: "lambda:InvokeFunction",
      Principal: "events.amazonaws.com",
      SourceArn: getAtt(rule),
    });
    const key = (p: unknown) => JSON.stringify(p);
    expect(permissions.map(key).sort()).toEqual(
      [
        byRule("SweepLambdaFunction", "SweepScheduleRule"),
        byRule("AdmitEventLambdaFunction", "GuardEventRule"),
        byRule("AdmitEventLambdaFunction", "GuardStateChangeRule"),
      ]
        .map(key)
        .sort(),
    );
    for (const rule of ["GuardEventRule", "GuardStateChangeRule"]) {
      expect(resource(defaults, rule).Properties.Targets, rule).toEqual([
        expect.objectContaining({ Arn: getAtt("AdmitEventLambdaFunction") }),
      ]);
    }
    const rules = ofType(defaults, "AWS::Events::Rule").map(([id]) => id);
    expect(rules.sort()).toEqual(["GuardEventRule", "GuardStateChangeRule", "SweepScheduleRule"]);
    expect(resource(defaults, "SweepScheduleRule").Properties).toMatchObject({
      ScheduleExpression: "rate(1 day)",
      Targets: [{ Arn: getAtt("SweepLambdaFunction") }],
    });
  });

  it("lets Notify publish only to the guard's topics, with the topic key", () => {
    // What CloudFormation deploys (the statements as these params evaluate): the Slack topic only with Slack set up.
    expect(listOf(statementFor(defaults, "NotifyRole", "sns:Publish").Resource)).toEqual([ref("AlertTopic")]);
    expect(listOf(statementFor(configured, "NotifyRole", "sns:Publish").Resource)).toEqual([
      ref("AlertTopic"),
      ref("SlackTopic"),
    ]);
    const kms = statementFor(defaults, "NotifyRole", "kms:GenerateDataKey");
    expect(actionsOf(kms).sort()).toEqual(["kms:Decrypt", "kms:GenerateDataKey"]);
    expect(kms.Resource).toEqual(getAtt("AlertKey"));
  });

  it("lets Notify create schedules only in the watch group, passing only the watch role, only to Scheduler", () => {
    const group = z.string().parse(resource(defaults, "WatchScheduleGroup").Properties.Name);
    expect(group).toBe(`imdsv2-guard-${STAGE}-watch`);
    const create = statementFor(defaults, "NotifyRole", "scheduler:CreateSchedule");
    expect(actionsOf(create)).toEqual(["scheduler:CreateSchedule"]);
    expect(resolve(create.Resource)).toBe(`arn:${PARTITION}:scheduler:${REGION}:${ACCOUNT}:schedule/${group}/*`);
    expect(create.Condition).toBeUndefined();
    const pass = statementFor(defaults, "NotifyRole", "iam:PassRole");
    expect(actionsOf(pass)).toEqual(["iam:PassRole"]);
    expect(pass.Resource).toEqual(getAtt("WatchSchedulerRole"));
    expect(pass.Condition).toEqual({ StringEquals: { "iam:PassedToService": "scheduler.amazonaws.com" } });
    // No other role may pass a role or create schedules.
    for (const role of ofType(configured, "AWS::IAM::Role").map(([id]) => id)) {
      if (role === "NotifyRole") continue;
      const actions = allowedActions(configured, role);
      expect(actions, role).not.toContain("iam:PassRole");
      expect(
        actions.filter((a) => a.startsWith("scheduler:")),
        role,
      ).toEqual([]);
    }
    expect(envOf(defaults, "NotifyLambdaFunction")).toMatchObject({
      WATCH_SCHEDULE_GROUP: group,
      WATCH_SCHEDULER_ROLE_ARN: getAtt("WatchSchedulerRole"),
      WATCH_TARGET_ARN: getAtt("CheckRejectedLambdaFunction"),
      WATCH_DEAD_LETTER_QUEUE_ARN: getAtt("WatchDeadLetterQueue"),
    });
  });

  it("lets CheckRejected publish its alert only to the guard's topics, with the topic key, as Notify does", () => {
    for (const template of [defaults, configured]) {
      for (const action of ["sns:Publish", "kms:GenerateDataKey"]) {
        const { Sid: _sid, ...checkRejected } = statementFor(template, "CheckRejectedRole", action);
        const { Sid: _notifySid, ...notify } = statementFor(template, "NotifyRole", action);
        expect(checkRejected, action).toEqual(notify);
      }
      // What CloudFormation deploys: the Slack topic only when Slack is set up (AWS::NoValue drops the entry).
      const topics = listOf(
        evaluateIfs(template, statementFor(template, "CheckRejectedRole", "sns:Publish").Resource),
      ).filter((r) => JSON.stringify(r) !== JSON.stringify(ref("AWS::NoValue")));
      expect(topics).toEqual(
        condition(template, "HasSlack") ? [ref("AlertTopic"), ref("SlackTopic")] : [ref("AlertTopic")],
      );
    }
    const env = envOf(defaults, "CheckRejectedLambdaFunction");
    const notify = envOf(defaults, "NotifyLambdaFunction");
    for (const name of ["TOPIC_ARN", "SLACK_TOPIC_ARN", "SLACK_VERDICTS"])
      expect(env[name], name).toEqual(notify[name]);
    expect(envOf(configured, "CheckRejectedLambdaFunction").SLACK_VERDICTS).toBe("fail,alert");
  });

  it("lets FinalizeBatch only put and get, Notify only query, and the evidence only its partitions of the event ledger", () => {
    // FinalizeBatch: its batch's results, and the stored progress or work list of a batch that failed at a slice's
    // start. Notify: every result and work list of its event.
    for (const [role, actions] of [
      ["FinalizeBatchRole", ["dynamodb:PutItem", "dynamodb:GetItem"]],
      ["NotifyRole", ["dynamodb:Query"]],
    ] as const) {
      const [first] = actions;
      const s = statementFor(defaults, role, first);
      expect(actionsOf(s), role).toEqual([...actions]);
      expect(s.Resource, role).toEqual(getAtt("EventLedgerTable"));
      expect(s.Condition, role).toBeUndefined();
    }
    // The evidence records (shared/aws/evidence-store.ts): Notify reads and writes them, the sweep lists and closes
    // them, and neither reaches any other partition with these actions.
    const evidenceOnly = { "ForAllValues:StringLike": { "dynamodb:LeadingKeys": ["evidence#*"] } };
    for (const [role, actions] of [
      ["NotifyRole", ["dynamodb:GetItem", "dynamodb:PutItem"]],
      ["SweepRole", ["dynamodb:Query", "dynamodb:PutItem"]],
    ] as const) {
      const [first] = actions;
      const s = statementFor(defaults, role, first);
      expect(actionsOf(s), role).toEqual([...actions]);
      expect(s.Resource, role).toEqual(getAtt("EventLedgerTable"));
      expect(s.Condition, role).toEqual(evidenceOnly);
    }
    // The ledger is reached by these roles and nobody else: the state machine's (StoreWorkList's work lists),
    // AdmitEvent (a conditional put per instance occurrence, the record's attribution, reading it back, and its work
    // lists), ClaimInstances (AwaitAttribution's task token next to the claim, and the attributions read back), Enforce
    // (its intent before each modify, read back by a retry), the steps that keep their batch between slices, SendProbe
    // (its send markers), and Notify and the sweep (above).
    for (const role of ofType(defaults, "AWS::IAM::Role").map(([id]) => id)) {
      const dynamo = allowedActions(defaults, role).filter((a) => a.startsWith("dynamodb:"));
      const expected: Record<string, string[]> = {
        FinalizeBatchRole: ["dynamodb:GetItem", "dynamodb:PutItem"],
        NotifyRole: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
        SweepRole: ["dynamodb:PutItem", "dynamodb:Query"],
        StateMachineRole: ["dynamodb:PutItem"],
        AdmitEventRole: ["dynamodb:PutItem", "dynamodb:Query"],
        ClaimInstancesRole: ["dynamodb:PutItem", "dynamodb:Query"],
        EnforceRole: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
        CheckAppliedRole: ["dynamodb:GetItem", "dynamodb:PutItem"],
        CheckManagedRole: ["dynamodb:GetItem", "dynamodb:PutItem"],
        CheckProbeRole: ["dynamodb:GetItem", "dynamodb:PutItem"],
        SendProbeRole: ["dynamodb:GetItem", "dynamodb:PutItem"],
      };
      expect(dynamo, role).toEqual(expected[role] ?? []);
    }
  });

  it("trusts only the intended service principal in each role", () => {
    const expected: Record<string, string> = {
      StateMachineRole: "states.amazonaws.com",
      WatchSchedulerRole: "scheduler.amazonaws.com",
      ChatbotRole: "chatbot.amazonaws.com",
    };
    for (const [id, role] of ofType(configured, "AWS::IAM::Role")) {
      const doc = policyDocumentSchema.parse(role.Properties.AssumeRolePolicyDocument);
      expect(doc.Statement, id).toHaveLength(1);
      expect(doc.Statement[0]?.Principal, id).toEqual({ Service: expected[id] ?? "lambda.amazonaws.com" });
      expect(doc.Statement[0]?.Action, id).toBe("sts:AssumeRole");
    }
    // Scheduler's confused-deputy keys: this account, and the schedule group (Scheduler refuses a schedule's ARN).
    const watch = policyDocumentSchema.parse(
      resource(defaults, "WatchSchedulerRole").Properties.AssumeRolePolicyDocument,
    );
    expect(watch.Statement[0]?.Condition).toEqual({
      StringEquals: { "aws:SourceAccount": ref("AWS::AccountId"), "aws:SourceArn": getAtt("WatchScheduleGroup") },
    });
  });

  it("keeps the key policy to administration by the account, and use by CloudWatch and Notify only", () => {
    const key = resource(defaults, "AlertKey");
    expect(key.Properties.EnableKeyRotation).toBe(true);
    const statements = policyDocumentSchema.parse(key.Properties.KeyPolicy).Statement;
    expect(statements.map((s) => s.Sid)).toEqual([
      "AccountAdministersKey",
      "CloudWatchAlarmsPublish",
      "NotifyPublishes",
    ]);
    const [admin, cloudwatch, notify] = statements.map((s) => ({ ...s, actions: actionsOf(s).sort() }));
    const account = { AWS: sub(`arn:\${AWS::Partition}:iam::\${AWS::AccountId}:root`) };
    const notifyRole = String(resource(defaults, "NotifyRole").Properties.RoleName);
    // CheckRejected publishes the alert about refused IMDSv1 calls to the same encrypted topics.
    const checkRejectedRole = String(resource(defaults, "CheckRejectedRole").Properties.RoleName);
    // Named for the hub's posture report; here the sweep's IAM policy allows no KMS use (checked per role above).
    const sweepRole = String(resource(defaults, "SweepRole").Properties.RoleName);
    // Exact: SNS asks KMS for a data key and decrypts it, nothing more (no GenerateDataKey* variants).
    const use = ["kms:Decrypt", "kms:GenerateDataKey"];

    expect(admin).toMatchObject({ Effect: "Allow", Principal: account });
    expect(admin?.Condition).toBeUndefined();
    for (const a of admin?.actions ?? []) {
      expect(a, "the account administers the key, it does not use it").not.toMatch(
        /crypt|GenerateDataKey|Sign|Verify|Mac/,
      );
    }
    expect(cloudwatch).toMatchObject({
      Effect: "Allow",
      Principal: { Service: "cloudwatch.amazonaws.com" },
      actions: use,
    });
    expect(notify).toMatchObject({
      Effect: "Allow",
      Principal: account,
      actions: use,
      Condition: {
        ArnEquals: {
          "aws:PrincipalArn": [
            sub(`arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/${notifyRole}`),
            sub(`arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/${checkRejectedRole}`),
            sub(`arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/${sweepRole}`),
          ],
        },
      },
    });
  });
});

describe("failure paths and alerting", () => {
  it("encrypts the dead-letter queue and lets only the guard's two rules send to it", () => {
    const queue = resource(defaults, "EventDeadLetterQueue");
    expect(queue.Properties.SqsManagedSseEnabled === true || queue.Properties.KmsMasterKeyId !== undefined).toBe(true);
    const policy = resource(defaults, "EventDeadLetterQueuePolicy");
    expect(policy.Properties.Queues).toEqual([ref("EventDeadLetterQueue")]);
    const allows = policyDocumentSchema
      .parse(policy.Properties.PolicyDocument)
      .Statement.filter((s) => s.Effect === "Allow");
    expect(allows).toHaveLength(1);
    expect(allows[0]).toMatchObject({
      Principal: { Service: "events.amazonaws.com" },
      Action: "sqs:SendMessage",
      Resource: getAtt("EventDeadLetterQueue"),
      Condition: { ArnEquals: { "aws:SourceArn": [getAtt("GuardEventRule"), getAtt("GuardStateChangeRule")] } },
    });
  });

  const alarms = (template: Template) => ofType(template, "AWS::CloudWatch::Alarm").map(([, a]) => a.Properties);

  it("sends an event AdmitEvent failed on after its retries to the alarmed event DLQ, with its own role", () => {
    expect(resource(defaults, "AdmitEventInvokeConfig").Properties).toEqual({
      FunctionName: ref("AdmitEventLambdaFunction"),
      Qualifier: "$LATEST",
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: getAtt("EventDeadLetterQueue") } },
    });
    // Lambda delivers the on-failure record with the function's role: AdmitEvent may send there and nowhere else.
    const send = statementFor(defaults, "AdmitEventRole", "sqs:SendMessage");
    expect(actionsOf(send)).toEqual(["sqs:SendMessage"]);
    expect(send.Resource).toEqual(getAtt("EventDeadLetterQueue"));
    expect(resource(defaults, "AdmitEventLambdaFunction").Properties.Timeout).toBe(60);
  });

  it("gives the watch after enforcing its own schedule group, role, retained DLQ and alarm", () => {
    // The schedule's role may invoke CheckRejected and dead-letter to the watch DLQ, nothing else.
    const invoke = statementFor(defaults, "WatchSchedulerRole", "lambda:InvokeFunction");
    expect(actionsOf(invoke)).toEqual(["lambda:InvokeFunction"]);
    expect(invoke.Resource).toEqual(getAtt("CheckRejectedLambdaFunction"));
    expect(statementFor(defaults, "WatchSchedulerRole", "sqs:SendMessage").Resource).toEqual(
      getAtt("WatchDeadLetterQueue"),
    );
    // CheckRejected failing after its retries lands in the same queue.
    expect(resource(defaults, "CheckRejectedInvokeConfig").Properties).toEqual({
      FunctionName: ref("CheckRejectedLambdaFunction"),
      Qualifier: "$LATEST",
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: getAtt("WatchDeadLetterQueue") } },
    });
    expect(statementFor(defaults, "CheckRejectedRole", "sqs:SendMessage").Resource).toEqual(
      getAtt("WatchDeadLetterQueue"),
    );
    const queue = resource(defaults, "WatchDeadLetterQueue");
    expect(queue.Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    const statements = policyDocumentSchema.parse(
      resource(defaults, "WatchDeadLetterQueuePolicy").Properties.PolicyDocument,
    ).Statement;
    expect(statements).toEqual([
      {
        Sid: "DenyInsecureTransport",
        Effect: "Deny",
        Principal: "*",
        Action: "sqs:*",
        Resource: getAtt("WatchDeadLetterQueue"),
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
    ]);
    const watchAlarms = alarms(defaults).filter(
      (a) =>
        JSON.stringify(a.Dimensions) ===
        JSON.stringify([{ Name: "QueueName", Value: getAtt("WatchDeadLetterQueue", "QueueName") }]),
    );
    expect(watchAlarms).toHaveLength(1);
    expect(watchAlarms[0]).toMatchObject({
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Statistic: "Maximum",
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
    });
  });

  it("gives the sweep's schedule a failure path: target retries and DLQ, async-invoke destination, alarm", () => {
    const [target] = z
      .array(z.record(z.string(), z.unknown()))
      .parse(resource(defaults, "SweepScheduleRule").Properties.Targets);
    expect(target).toMatchObject({
      RetryPolicy: { MaximumRetryAttempts: 24, MaximumEventAgeInSeconds: 3600 },
      DeadLetterConfig: { Arn: getAtt("SweepFailureQueue") },
    });
    expect(resource(defaults, "SweepInvokeConfig").Properties).toEqual({
      FunctionName: ref("SweepLambdaFunction"),
      Qualifier: "$LATEST",
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: getAtt("SweepFailureQueue") } },
    });
    // Lambda delivers the on-failure record with the function's role: the sweep may send there and nowhere else.
    expect(statementFor(defaults, "SweepRole", "sqs:SendMessage").Resource).toEqual(getAtt("SweepFailureQueue"));
    const allows = policyDocumentSchema
      .parse(resource(defaults, "SweepFailureQueuePolicy").Properties.PolicyDocument)
      .Statement.filter((s) => s.Effect === "Allow");
    expect(allows).toEqual([
      expect.objectContaining({
        Principal: { Service: "events.amazonaws.com" },
        Action: "sqs:SendMessage",
        Condition: { ArnEquals: { "aws:SourceArn": getAtt("SweepScheduleRule") } },
      }),
    ]);
    const queueAlarms = alarms(defaults).filter(
      (a) =>
        JSON.stringify(a.Dimensions) ===
        JSON.stringify([{ Name: "QueueName", Value: getAtt("SweepFailureQueue", "QueueName") }]),
    );
    expect(queueAlarms).toHaveLength(1);
    expect(queueAlarms[0]).toMatchObject({ MetricName: "ApproximateNumberOfMessagesVisible", Threshold: 0 });
  });

  it("alarms on the first dead-lettered event", () => {
    const dlq = alarms(defaults).filter(
      (a) =>
        a.MetricName === "ApproximateNumberOfMessagesVisible" &&
        JSON.stringify(a.Dimensions) ===
          JSON.stringify([{ Name: "QueueName", Value: getAtt("EventDeadLetterQueue", "QueueName") }]),
    );
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({
      Namespace: "AWS/SQS",
      Dimensions: [{ Name: "QueueName", Value: getAtt("EventDeadLetterQueue", "QueueName") }],
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
    });
  });

  it.each(["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"])("alarms on %s of the state machine", (m) => {
    const found = alarms(defaults).filter((a) => a.MetricName === m);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      Namespace: "AWS/States",
      Dimensions: [{ Name: "StateMachineArn", Value: ref("GuardStateMachine") }],
      Statistic: "Sum",
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
    });
  });

  it("alarms when the reconciliation sweep fails", () => {
    const found = alarms(defaults).filter((a) => a.Namespace === "AWS/Lambda");
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      MetricName: "Errors",
      Dimensions: [{ Name: "FunctionName", Value: ref("SweepLambdaFunction") }],
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
    });
  });

  it("sends every alarm to the alert topic, and to Slack when it is set up", () => {
    expect(alarms(defaults)).toHaveLength(7);
    for (const alarm of alarms(defaults)) {
      expect(alarm.AlarmActions).toEqual([
        ref("AlertTopic"),
        { "Fn::If": ["HasSlack", ref("SlackTopic"), ref("AWS::NoValue")] },
      ]);
    }
  });

  it("encrypts every topic with the customer-managed key", () => {
    const topics = ofType(configured, "AWS::SNS::Topic");
    expect(topics.map(([id]) => id).sort()).toEqual(["AlertTopic", "SlackTopic"]);
    for (const [id, topic] of topics) expect(topic.Properties.KmsMasterKeyId, id).toEqual(ref("AlertKey"));
    expect(resource(configured, "AlertKey").Type).toBe("AWS::KMS::Key");
  });

  it("keys the event ledger on eventId and item (claim, result#<batch>), encrypted, on demand, with a TTL", () => {
    const table = resource(defaults, "EventLedgerTable").Properties;
    expect(table).toMatchObject({
      BillingMode: "PAY_PER_REQUEST",
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    // Exact: AdmitEvent, ClaimInstances, FinalizeBatch and Notify all address items by these two string keys.
    expect(table.KeySchema).toEqual([
      { AttributeName: "eventId", KeyType: "HASH" },
      { AttributeName: "item", KeyType: "RANGE" },
    ]);
    expect(table.AttributeDefinitions).toEqual([
      { AttributeName: "eventId", AttributeType: "S" },
      { AttributeName: "item", AttributeType: "S" },
    ]);
    // No fixed name: changing the key schema replaces the table, which CloudFormation cannot do for a named one.
    expect(table.TableName).toBeUndefined();
  });

  it("keeps undelivered events when the stack goes, and decides deletion for every stateful resource", () => {
    const policies = (id: string) => {
      const { DeletionPolicy, UpdateReplacePolicy } = resource(defaults, id);
      return { DeletionPolicy, UpdateReplacePolicy };
    };
    // docs/deploy.md, "What stays, and why", says why each is what it is.
    expect(policies("EventDeadLetterQueue")).toEqual({ DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    expect(policies("WatchDeadLetterQueue")).toEqual({ DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    expect(policies("EventLedgerTable")).toEqual({ DeletionPolicy: "Delete", UpdateReplacePolicy: "Retain" });
    expect(policies("AlertKey")).toEqual({ DeletionPolicy: "Delete", UpdateReplacePolicy: "Delete" });
    expect(policies("SweepFailureQueue")).toEqual({ DeletionPolicy: "Delete", UpdateReplacePolicy: "Delete" });
  });

  it("versions the deployment bucket and blocks its public access", () => {
    const bucket = resource(defaults, "ServerlessDeploymentBucket").Properties;
    expect(bucket.VersioningConfiguration).toEqual({ Status: "Enabled" });
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
  });
});

describe("functions and logs", () => {
  it("runs every function on nodejs24.x / arm64 with Powertools settings and JSON logs", () => {
    for (const [id, fn] of ofType(defaults, "AWS::Lambda::Function")) {
      expect(fn.Properties.Runtime, id).toBe("nodejs24.x");
      expect(fn.Properties.Architectures, id).toEqual(["arm64"]);
      expect(fn.Properties.Environment, id).toMatchObject({
        Variables: { POWERTOOLS_SERVICE_NAME: "imdsv2-guard", POWERTOOLS_LOG_LEVEL: "INFO" },
      });
      expect(fn.Properties.LoggingConfig, id).toMatchObject({ LogFormat: "JSON" });
    }
  });

  it("ships each function as one ES module bundle that loads on Node 24 and exports handler", async () => {
    for (const [key, { logicalId }] of Object.entries(FUNCTIONS)) {
      const files = readZip(await readFile(join(defaultsDir, `${key}.zip`)));
      const handlerPath = z.string().parse(resource(defaults, logicalId).Properties.Handler);
      const entry = `${handlerPath.slice(0, handlerPath.lastIndexOf("."))}.mjs`;
      // The bundle and its source map, nothing else: no node_modules, no sources.
      expect([...files.keys()].sort(), key).toEqual([entry, `${entry}.map`]);
      const dir = join(defaultsDir, "unzipped", key);
      await mkdir(join(dir, dirname(entry)), { recursive: true });
      await writeFile(join(dir, entry), files.get(entry) ?? "");
      const probe = "const m = await import(process.argv[1]); process.stdout.write(typeof m.handler);";
      const { stdout } = await execFileAsync(process.execPath, ["--input-type=module", "-e", probe, join(dir, entry)], {
        env: { PATH: process.env.PATH, AWS_REGION: REGION, AWS_EC2_METADATA_DISABLED: "true" },
        timeout: 30_000,
      });
      expect(stdout, key).toBe("function");
    }
  });

  it("keeps every log group for logRetentionDays (30 by default), one per function", () => {
    for (const [template, days] of [
      [defaults, 30],
      [configured, 90],
    ] as const) {
      const groups = ofType(template, "AWS::Logs::LogGroup");
      expect(groups).toHaveLength(Object.keys(FUNCTIONS).length);
      for (const [id, group] of groups) expect(group.Properties.RetentionInDays, id).toBe(days);
    }
  });

  it("passes the settings to ResolveTargets and AdmitEvent, the topics and ledger to Notify, and the sweep's settings to the sweep", () => {
    expect(envOf(defaults, "ResolveTargetsLambdaFunction")).toMatchObject({
      GUARD_MODE: "enforce",
      EXEMPT_TAG_KEY: "imdsv2-guard:exempt",
      EXEMPT_UNTIL_TAG_KEY: "imdsv2-guard:exempt-until",
      ON_V1_USAGE: "hold",
      V1_USAGE_LOOKBACK_HOURS: "24",
      WATCH_REJECTED_SECONDS: "900",
      APPLY_TIMEOUT_SECONDS: "300",
      MANAGED_TIMEOUT_SECONDS: "600",
      PROBE_TIMEOUT_SECONDS: "300",
    });
    // Renamed: the code reads GUARD_MODE only, so a leftover MODE would be silently ignored.
    expect(envOf(defaults, "ResolveTargetsLambdaFunction")).not.toHaveProperty("MODE");
    expect(envOf(configured, "ResolveTargetsLambdaFunction")).toMatchObject({
      GUARD_MODE: "audit",
      EXEMPT_UNTIL_TAG_KEY: "sec:exempt-until",
      ON_V1_USAGE: "enforce",
      V1_USAGE_LOOKBACK_HOURS: "72",
      WATCH_REJECTED_SECONDS: "0",
    });
    expect(envOf(defaults, "NotifyLambdaFunction")).toMatchObject({
      TOPIC_ARN: ref("AlertTopic"),
      SLACK_TOPIC_ARN: { "Fn::If": ["HasSlack", ref("SlackTopic"), ""] },
      SLACK_VERDICTS: "fail,error,held,unverified,alert",
      LEDGER_TABLE_NAME: ref("EventLedgerTable"),
    });
    expect(envOf(configured, "NotifyLambdaFunction")).toMatchObject({ SLACK_VERDICTS: "fail,alert" });
    for (const id of [
      "FinalizeBatchLambdaFunction",
      "EnforceLambdaFunction",
      "SendProbeLambdaFunction",
      "CheckAppliedLambdaFunction",
      "CheckManagedLambdaFunction",
      "CheckProbeLambdaFunction",
    ]) {
      expect(envOf(defaults, id), id).toMatchObject({ LEDGER_TABLE_NAME: ref("EventLedgerTable") });
    }
    expect(envOf(defaults, "SweepLambdaFunction")).toMatchObject({
      STATE_MACHINE_ARN: ref("GuardStateMachine"),
      GUARD_MODE: "enforce",
      EXEMPT_TAG_KEY: "imdsv2-guard:exempt",
      EXEMPT_UNTIL_TAG_KEY: "imdsv2-guard:exempt-until",
      INSTANCES_PER_EXECUTION: "500",
      ACCOUNT_ID: ref("AWS::AccountId"),
    });
    expect(envOf(configured, "SweepLambdaFunction")).toMatchObject({
      GUARD_MODE: "audit",
      EXEMPT_UNTIL_TAG_KEY: "sec:exempt-until",
      INSTANCES_PER_EXECUTION: "200",
    });
    // AdmitEvent resolves events with ResolveTargets' settings, exactly, and claims in the ledger.
    for (const template of [defaults, configured]) {
      expect(envOf(template, "AdmitEventLambdaFunction")).toEqual({
        ...envOf(template, "ResolveTargetsLambdaFunction"),
        LEDGER_TABLE_NAME: ref("EventLedgerTable"),
        STATE_MACHINE_ARN: ref("GuardStateMachine"),
      });
    }
    expect(envOf(defaults, "ClaimInstancesLambdaFunction")).toMatchObject({
      LEDGER_TABLE_NAME: ref("EventLedgerTable"),
    });
    // The read-only step needs no settings beyond the common ones.
    expect(Object.keys(envOf(defaults, "AssessAccountLambdaFunction")).sort()).toEqual(
      ["NODE_OPTIONS", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_SERVICE_NAME"].sort(),
    );
  });
});

describe("state machine", () => {
  it("deploys exactly infra/state-machine.asl.json, with a substitution for every placeholder", async () => {
    const aslText = await readFile(join(root, "infra/state-machine.asl.json"), "utf8");
    const machine = resource(defaults, "GuardStateMachine");
    // A string, because osls strips nulls (`"ResultPath": null`) from object properties while packaging.
    expect(machine.Properties.Definition).toBeUndefined();
    expect(JSON.parse(z.string().parse(machine.Properties.DefinitionString))).toEqual(JSON.parse(aslText));
    expect(machine.Properties.StateMachineType).toBe("STANDARD");
    expect(machine.Properties.RoleArn).toEqual(getAtt("StateMachineRole"));
    const placeholders = [...new Set([...aslText.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]))].sort();
    const substitutions = z.record(z.string(), z.unknown()).parse(machine.Properties.DefinitionSubstitutions);
    expect(Object.keys(substitutions).sort()).toEqual(placeholders);
    expect(substitutions.EventLedgerTableName).toEqual(ref("EventLedgerTable"));
    for (const [name, value] of Object.entries(substitutions)) {
      if (name === "EventLedgerTableName") continue;
      const target = z.object({ "Fn::GetAtt": z.tuple([z.string(), z.literal("Arn")]) }).parse(value);
      expect(resource(defaults, target["Fn::GetAtt"][0]).Type, name).toBe("AWS::Lambda::Function");
    }
  });

  it("lets each function's own timeout fire before its task's, so no retry races the attempt it replaces", () => {
    const machine = resource(defaults, "GuardStateMachine");
    const substitutions = z
      .record(z.string(), z.object({ "Fn::GetAtt": z.tuple([z.string(), z.literal("Arn")]) }))
      .parse(
        Object.fromEntries(
          Object.entries(z.record(z.string(), z.unknown()).parse(machine.Properties.DefinitionSubstitutions)).filter(
            ([name]) => name.endsWith("FunctionArn"),
          ),
        ),
      );
    const taskSchema = z.object({
      Type: z.string(),
      Resource: z.string().optional(),
      TimeoutSeconds: z.number().optional(),
    });
    const tasks: z.infer<typeof taskSchema>[] = [];
    const visit = (states: Record<string, unknown>) => {
      for (const state of Object.values(states)) {
        const parsed = taskSchema.passthrough().parse(state);
        if (parsed.Type === "Task" && parsed.Resource?.endsWith("FunctionArn}")) tasks.push(parsed);
        const inner = z
          .object({ ItemProcessor: z.object({ States: z.record(z.string(), z.unknown()) }) })
          .safeParse(state);
        if (inner.success) visit(inner.data.ItemProcessor.States);
      }
    };
    visit(
      z
        .object({ States: z.record(z.string(), z.unknown()) })
        .parse(JSON.parse(z.string().parse(machine.Properties.DefinitionString))).States,
    );
    expect(tasks.length).toBeGreaterThanOrEqual(10);
    for (const task of tasks) {
      const placeholder = task.Resource?.slice(2, -1) ?? "";
      const functionId = substitutions[placeholder]?.["Fn::GetAtt"][0] ?? "";
      const lambdaTimeout = Number(resource(defaults, functionId).Properties.Timeout);
      expect(lambdaTimeout, functionId).toBeGreaterThan(0);
      expect(task.TimeoutSeconds ?? 0, `${placeholder}: task timeout vs Lambda timeout`).toBeGreaterThan(lambdaTimeout);
    }
  });

  it("sets no execution timeout that could cut the verdicts or the watch after enforcing short", () => {
    for (const template of [defaults, configured]) {
      const machine = resource(template, "GuardStateMachine");
      const definition = z
        .object({ TimeoutSeconds: z.number().optional() })
        .parse(JSON.parse(z.string().parse(machine.Properties.DefinitionString)));
      const env = envOf(template, "ResolveTargetsLambdaFunction");
      const seconds = [
        "APPLY_TIMEOUT_SECONDS",
        "MANAGED_TIMEOUT_SECONDS",
        "PROBE_TIMEOUT_SECONDS",
        "WATCH_REJECTED_SECONDS",
      ]
        .map((key) => Number(env[key]))
        .reduce((a, b) => a + b, 0);
      expect(seconds).toBeGreaterThan(0);
      // None is the design (see infra/orchestration.yml); one added later must outlast every stage plus the watch.
      expect(definition.TimeoutSeconds ?? Number.POSITIVE_INFINITY).toBeGreaterThan(seconds * 1.5 + 600);
    }
  });
});

describe("optional email and Slack", () => {
  it("creates the email subscription and the Slack resources only under their conditions", () => {
    expect(resource(defaults, "AlertEmailSubscription").Condition).toBe("HasAlertEmail");
    for (const id of ["SlackTopic", "ChatbotRole", "ChatbotReadOnlyPolicy"]) {
      expect(resource(defaults, id).Condition, id).toBe("HasSlack");
    }
    expect(ofType(defaults, "AWS::SNS::Subscription")).toHaveLength(1);
    // The channel itself is rendered only when Slack is configured: with empty ids it is not a valid resource.
    expect(ofType(defaults, "AWS::Chatbot::SlackChannelConfiguration")).toHaveLength(0);
    expect(ofType(configured, "AWS::Chatbot::SlackChannelConfiguration")).toHaveLength(1);
    expect(resource(configured, "SlackChannel").Condition).toBe("HasSlack");
  });

  it("refuses Slack at package time in a partition without Chatbot, naming the partition", {
    timeout: 240_000,
  }, async () => {
    for (const region of ["cn-north-1", "us-gov-west-1"]) {
      const refused = await packageStack(["slackWorkspaceId=T0EXAMPLE1", "slackChannelId=C0EXAMPLE2"], region).then(
        () => "packaged",
        (error: unknown) => {
          const output = z.object({ stdout: z.string(), stderr: z.string() }).parse(error);
          return output.stdout + output.stderr;
        },
      );
      expect(refused, region).toMatch(/Slack is configured .* partition, where AWS Chatbot .* does not exist/);
    }
  });

  it("leaves email and Slack off by default and turns them on when their params are set", () => {
    expect(condition(defaults, "HasAlertEmail")).toBe(false);
    expect(condition(defaults, "HasSlack")).toBe(false);
    expect(condition(defaults, "EmailGetsAllVerdicts")).toBe(true);
    expect(condition(configured, "HasAlertEmail")).toBe(true);
    expect(condition(configured, "HasSlack")).toBe(true);
    expect(condition(configured, "EmailGetsAllVerdicts")).toBe(false);
  });

  it("filters email by verdict without filtering out alarms (no verdict) or the refused-calls alert", () => {
    const subscription = resource(configured, "AlertEmailSubscription").Properties;
    expect(subscription).toMatchObject({
      Protocol: "email",
      Endpoint: "secops@example.com",
      TopicArn: ref("AlertTopic"),
    });
    expect(subscription.FilterPolicy).toEqual({
      "Fn::If": [
        "EmailGetsAllVerdicts",
        ref("AWS::NoValue"),
        {
          $or: [
            { verdict: { "Fn::Split": [",", "fail,error"] } },
            { verdict: [{ exists: false }] },
            { verdict: ["alert"] },
          ],
        },
      ],
    });
  });

  it("points Chatbot at the Slack topic with a read-only role and guardrail", () => {
    expect(resource(configured, "SlackChannel").Properties).toMatchObject({
      SlackWorkspaceId: "T0EXAMPLE1",
      SlackChannelId: "C0EXAMPLE2",
      SnsTopicArns: [ref("SlackTopic")],
      GuardrailPolicies: [ref("ChatbotReadOnlyPolicy")],
      IamRoleArn: getAtt("ChatbotRole"),
    });
    expect(resource(configured, "ChatbotRole").Properties.ManagedPolicyArns).toEqual([ref("ChatbotReadOnlyPolicy")]);
  });
});

describe("what imdsv2-guard doctor reads back from a deployed stack", () => {
  /** The packaged template as CloudFormation receives it, outputs included (templateSchema keeps only resources). */
  async function outputsOf(dir: string): Promise<Record<string, { Value: unknown }>> {
    const raw = JSON.parse(await readFile(join(dir, "cloudformation-template-update-stack.json"), "utf8"));
    return z.record(z.string(), z.object({ Value: z.unknown() })).parse(raw.Outputs);
  }

  it("outputs the mode, single-account or hub, and whether an alert email is set (never the address)", async () => {
    const defaultsOutputs = await outputsOf(defaultsDir);
    const configuredOutputs = await outputsOf(configuredDir);

    expect(defaultsOutputs.GuardMode?.Value).toBe("enforce");
    expect(configuredOutputs.GuardMode?.Value).toBe("audit");
    expect(defaultsOutputs.GuardOrganizationMode?.Value).toEqual({
      "Fn::If": ["SingleAccount", "single-account", "hub"],
    });
    expect(defaultsOutputs.GuardAlertEmailSet?.Value).toEqual({ "Fn::If": ["HasAlertEmail", "true", "false"] });
    expect(JSON.stringify(configuredOutputs)).not.toContain("secops@example.com");
  });

  it("tags the stack with the package's version, which the doctor compares with its own", async () => {
    const state = JSON.parse(await readFile(join(defaultsDir, "serverless-state.json"), "utf8"));
    const { version } = JSON.parse(await readFile(join(root, "package.json"), "utf8"));

    expect(state.service.provider.stackTags).toEqual({ service: "imdsv2-guard", version });
  });
});
