import { cp, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import { oslsPackage } from "../scripts/packaged-template.js";
import { matchesEventPattern } from "./event-pattern.js";

/**
 * Organization mode's infrastructure: the hub (serverless.yml packaged with organizationId) and the code-free spokes
 * (infra/spoke/*.yml, read with the CloudFormation YAML parser osls itself uses). Expectations are exact: broadening
 * a trust, a permission or a pattern must fail here and be reviewed.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ORG = "o-a1b2c3d4e5";
const HUB = "999900000000";
const MEMBER = "111122223333";
const HUB_ROLE_PREFIX = "imdsv2-guard-dev-us-east-1";
const HUB_BUS = `arn:aws:events:eu-west-1:${HUB}:event-bus/imdsv2-guard-dev-hub`;

const resourceSchema = z.object({
  Type: z.string(),
  Properties: z.record(z.string(), z.unknown()).default({}),
  Condition: z.string().optional(),
});
const templateSchema = z.looseObject({
  Resources: z.record(z.string(), resourceSchema),
  Conditions: z.record(z.string(), z.unknown()).default({}),
  Parameters: z.record(z.string(), z.unknown()).default({}),
});
type Template = z.infer<typeof templateSchema>;

const statementSchema = z.object({
  Sid: z.string().optional(),
  Effect: z.enum(["Allow", "Deny"]),
  Action: z.union([z.string(), z.array(z.string())]),
  Resource: z.unknown().optional(),
  Principal: z.unknown().optional(),
  Condition: z.unknown().optional(),
});
type Statement = z.infer<typeof statementSchema>;

const cfnYaml = createRequire(import.meta.url)(join(root, "node_modules/osls/lib/utils/fs/parse.js")) as (
  path: string,
  contents: string,
) => unknown;

async function spoke(name: string): Promise<{ text: string; template: Template }> {
  const path = join(root, "infra/spoke", name);
  const text = await readFile(path, "utf8");
  return { text, template: templateSchema.parse(cfnYaml(path, text)) };
}

const packaged: string[] = [];

/**
 * `osls package` offline (scripts/packaged-template.ts), from a copy of the project: the bundler works in .build/ of
 * the project it packages, and test/template.test.ts packages the checkout at the same time.
 */
async function packageStack(params: string[]): Promise<Template> {
  const work = await mkdtemp(join(tmpdir(), "imdsv2-guard-org-project-"));
  packaged.push(work);
  for (const entry of ["serverless.yml", "package.json", "tsconfig.json", "infra", "functions", "shared"]) {
    await cp(join(root, entry), join(work, entry), { recursive: true });
  }
  await symlink(join(root, "node_modules"), join(work, "node_modules"));
  const dir = join(work, "package");
  await oslsPackage(dir, params, { cwd: work });
  return templateSchema.parse(
    JSON.parse(await readFile(join(dir, "cloudformation-template-update-stack.json"), "utf8")),
  );
}

function resource(template: Template, id: string) {
  const found = template.Resources[id];
  if (!found) throw new Error(`${id} is not in the template`);
  return found;
}

/** Fn::Sub with the pseudo parameters and the parameters given; anything else left to fail loudly. */
function resolve(value: unknown, values: Record<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => resolve(v, values));
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value);
  const [first] = entries;
  if (entries.length === 1 && first?.[0] === "Fn::Sub" && typeof first[1] === "string") {
    return first[1].replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      const v = values[name];
      if (v === undefined) throw new Error(`Cannot resolve \${${name}}`);
      return v;
    });
  }
  if (entries.length === 1 && first?.[0] === "Ref" && typeof first[1] === "string" && values[first[1]] !== undefined) {
    return values[first[1]];
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v, values)]));
}

/** Every policy statement of a template, with its place; `Fn::If` branches both included (worst case). */
function statements(template: Template): { where: string; statement: Statement }[] {
  const out: { where: string; statement: Statement }[] = [];
  const visit = (where: string, value: unknown) => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        visit(`${where}[${i}]`, v);
      });
      return;
    }
    if (typeof value !== "object" || value === null) return;
    const record = value as Record<string, unknown>;
    if (Array.isArray(record.Statement) || (typeof record.Statement === "object" && record.Statement !== null)) {
      const list = Array.isArray(record.Statement) ? record.Statement : [record.Statement];
      for (const s of list) {
        const branches = (s as { "Fn::If"?: unknown[] })["Fn::If"];
        const candidates = Array.isArray(branches) ? branches.slice(1) : [s];
        for (const c of candidates) {
          if ((c as { Ref?: unknown }).Ref === "AWS::NoValue") continue;
          out.push({ where, statement: statementSchema.parse(c) });
        }
      }
    }
    for (const [k, v] of Object.entries(record)) if (k !== "Statement") visit(`${where}.${k}`, v);
  };
  for (const [id, r] of Object.entries(template.Resources)) visit(id, r.Properties);
  return out;
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

async function fixture(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(root, "test/fixtures/events", name), "utf8"));
}

/** A fixture as it happens in `account`: the envelope, the record and the actor all in that account. */
function inAccount(event: Record<string, unknown>, account: string, actorArn?: string): Record<string, unknown> {
  const text = JSON.stringify(event).replaceAll("123456789012", account);
  const moved = JSON.parse(text) as { detail: { userIdentity: Record<string, unknown> } };
  if (actorArn) moved.detail.userIdentity.arn = actorArn;
  return moved;
}

describe("spokes: plain CloudFormation, no code", () => {
  it.each(["spoke-account.yml", "spoke-region.yml"])(
    "%s holds no function, no nested stack, no transform",
    async (name) => {
      const { text, template } = await spoke(name);
      const types = Object.values(template.Resources).map((r) => r.Type);
      expect(types.filter((t) => /Lambda|CloudFormation::Stack|Serverless|CustomResource|Custom::/.test(t))).toEqual(
        [],
      );
      expect(text).not.toMatch(/ZipFile|S3Key|CodeUri|InlineCode|Transform:/);
      expect(template.AWSTemplateFormatVersion).toBe("2010-09-09");
    },
  );

  it.each(["spoke-account.yml", "spoke-region.yml"])("%s allows no wildcard action", async (name) => {
    const { template } = await spoke(name);
    for (const { where, statement } of statements(template)) {
      for (const action of actionsOf(statement)) expect(action, where).not.toContain("*");
    }
  });
});

describe("spoke-account.yml: the roles", () => {
  it("trusts only the hub's function roles, by account root and aws:PrincipalArn, within the organization; named auditors get a read-only role of their own", async () => {
    const { template } = await spoke("spoke-account.yml");
    const role = resource(template, "SpokeRole").Properties;
    expect(role.RoleName).toBe("imdsv2-guard-spoke");
    const values = {
      "AWS::Partition": "aws",
      HubAccountId: HUB,
      HubRoleNamePrefix: HUB_ROLE_PREFIX,
      OrganizationId: ORG,
      AuditorAccountId: "X",
      AuditorRolePattern: "Y",
    };
    const document = z
      .object({ Statement: z.array(z.unknown()) })
      .parse(resolve(role.AssumeRolePolicyDocument, values));
    // Auditors never assume this role (it may run shell documents on every instance): they have a role of their own.
    const [hubStatement, ...rest] = document.Statement;
    expect(rest).toEqual([]);
    const auditor = resource(template, "AuditorRole");
    expect(auditor.Condition).toBe("HasAuditor");
    expect(auditor.Properties.RoleName).toBe("imdsv2-guard-auditor");
    expect(resolve(auditor.Properties.AssumeRolePolicyDocument, values)).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "AuditorsOfThisOrganization",
          Effect: "Allow",
          Principal: { AWS: "arn:aws:iam::X:root" },
          Action: "sts:AssumeRole",
          Condition: {
            ArnLike: { "aws:PrincipalArn": "arn:aws:iam::X:role/Y" },
            StringEquals: { "aws:PrincipalOrgID": ORG },
          },
        },
      ],
    });
    // It reads what the audit and the doctor read, and nothing else.
    expect(
      statements({ ...template, Resources: { AuditorRole: auditor } })
        .filter((s) => !s.where.includes("AssumeRolePolicyDocument"))
        .flatMap((s) => actionsOf(s.statement))
        .sort(),
    ).toEqual([
      "cloudwatch:GetMetricData",
      "ec2:DescribeInstances",
      "ec2:DescribeRegions",
      "ec2:GetInstanceMetadataDefaults",
      "ssm:GetDocument",
      "ssm:ListDocuments",
    ]);
    expect(template.Conditions.HasAuditor).toEqual({
      "Fn::And": [
        { "Fn::Not": [{ "Fn::Equals": [{ Ref: "AuditorAccountId" }, ""] }] },
        { "Fn::Not": [{ "Fn::Equals": [{ Ref: "AuditorRolePattern" }, ""] }] },
      ],
    });
    expect([statementSchema.parse(hubStatement)]).toEqual([
      {
        Sid: "HubFunctionRolesOfThisOrganization",
        Effect: "Allow",
        Principal: { AWS: `arn:aws:iam::${HUB}:root` },
        Action: "sts:AssumeRole",
        Condition: {
          ArnEquals: {
            "aws:PrincipalArn": [
              "admitEvent",
              "enforce",
              "assessAccount",
              "checkApplied",
              "checkManaged",
              "sendProbe",
              "checkProbe",
              "checkRejected",
              "sweep",
              "guardAccountDefault",
              // Security Hub findings go in through the member's own account (issue 21).
              "notify",
            ].map((fn) => `arn:aws:iam::${HUB}:role/${HUB_ROLE_PREFIX}-${fn}`),
          },
          StringEquals: { "aws:PrincipalOrgID": ORG },
        },
      },
    ]);
  });

  it("runs only the guard's own probe documents, on this account's instances, and changes only metadata options and, when allowed, the IMDS default", async () => {
    const { text, template } = await spoke("spoke-account.yml");
    const all = statements(template)
      .filter((s) => !s.where.includes("AssumeRolePolicyDocument"))
      .map((s) => s.statement);
    const values = { "AWS::Partition": "aws", "AWS::AccountId": MEMBER };
    const documents = ["linux", "windows"].map((p) => `arn:aws:ssm:*:${MEMBER}:document/imdsv2-guard-probe-${p}`);
    const send = all.filter((s) => actionsOf(s).includes("ssm:SendCommand"));
    expect(send.map((s) => resolve(s.Resource, values))).toEqual([
      [...documents, `arn:aws:ec2:*:${MEMBER}:instance/*`],
    ]);
    const read = all.filter((s) => actionsOf(s).includes("ssm:GetDocument"));
    // The spoke role's (SendProbe's check before it sends) and the auditor role's (the doctor's comparison).
    expect(read.map((s) => [actionsOf(s), resolve(s.Resource, values)])).toEqual([
      [["ssm:GetDocument"], documents],
      [["ssm:GetDocument"], documents],
    ]);
    expect(text).not.toMatch(/AWS-Run(Shell|PowerShell)Script/);
    const mutating = all.flatMap(actionsOf).filter((a) => !/^(ec2|ssm|cloudwatch):(Describe|Get|List)/.test(a));
    expect(mutating.sort()).toEqual([
      "ec2:ModifyInstanceMetadataDefaults",
      "ec2:ModifyInstanceMetadataOptions",
      "events:PutEvents",
      "securityhub:BatchImportFindings",
      "securityhub:GetFindings",
      "ssm:SendCommand",
    ]);
    // The default only with AccessMode=enforce and EnforceAccountDefault=true (the hub's enforceAccountDefault).
    expect(template.Conditions.MayEnforceAccountDefault).toEqual({
      "Fn::And": [{ Condition: "MayEnforce" }, { "Fn::Equals": [{ Ref: "EnforceAccountDefault" }, "true"] }],
    });
    // Findings only under this account's own default product ARN, and only with SecurityHubFindings=enabled.
    const imports = all.filter((s) => actionsOf(s).includes("securityhub:BatchImportFindings"));
    expect(imports.map((s) => resolve(s.Resource, { "AWS::Partition": "aws", "AWS::AccountId": MEMBER }))).toEqual([
      `arn:aws:securityhub:*:${MEMBER}:product/${MEMBER}/default`,
    ]);
  });

  it("has a read-only variant: no change and no Run Command, only describes and metric reads", async () => {
    const { template } = await spoke("spoke-account.yml");
    const policies = z
      .array(z.unknown())
      .parse(resource(template, "SpokeRole").Properties.Policies)
      .map((p) => z.record(z.string(), z.unknown()).parse(p));
    // The enforce and probe policies exist only under conditions that are false for AccessMode=read-only.
    const conditional = policies.filter((p) => "Fn::If" in p).map((p) => z.array(z.unknown()).parse(p["Fn::If"])[0]);
    expect(conditional).toEqual(["MayEnforce", "MayEnforceAccountDefault", "MayProbe", "MaySendFindings"]);
    expect(template.Conditions).toMatchObject({
      MayEnforce: { "Fn::Equals": [{ Ref: "AccessMode" }, "enforce"] },
      MayProbe: { "Fn::Not": [{ "Fn::Equals": [{ Ref: "AccessMode" }, "read-only"] }] },
    });
    expect(Object.keys(template.Conditions).sort()).toEqual([
      "HasAuditor",
      "MayEnforce",
      "MayEnforceAccountDefault",
      "MayProbe",
      "MaySendFindings",
    ]);
    const unconditional = policies.filter((p) => !("Fn::If" in p));
    const actions = JSON.stringify(unconditional);
    expect(actions).not.toMatch(/Modify|SendCommand|Put|Create|Delete/);
  });

  it("lets EventBridge of this account only forward, and only to the hub bus", async () => {
    const { template } = await spoke("spoke-account.yml");
    const forwarder = resource(template, "ForwarderRole").Properties;
    expect(JSON.stringify(forwarder.AssumeRolePolicyDocument)).toContain(
      '"aws:SourceAccount":{"Ref":"AWS::AccountId"}',
    );
    expect(JSON.stringify(forwarder.Policies)).toContain(
      '"Action":"events:PutEvents","Resource":{"Ref":"HubEventBusArn"}',
    );
  });
});

describe("spoke-region.yml: the forwarding rule", () => {
  async function rule() {
    const { template } = await spoke("spoke-region.yml");
    return { template, rule: resource(template, "ForwardRule").Properties };
  }

  it("forwards launches and metadata changes of this account, but not failed calls or the spoke role's own", async () => {
    const { rule: forward } = await rule();
    const pattern = resolve(forward.EventPattern, { "AWS::Partition": "aws", "AWS::AccountId": MEMBER });
    for (const name of [
      "run-instances.json",
      "modify-instance-metadata-options.json",
      "parse-run-instances-by-aws-service.json",
      "start-instances.json",
      "create-fleet-instant.json",
      "modify-instance-metadata-defaults.json",
      "run-instances-root-invoked-by-autoscaling-2016.json",
    ]) {
      expect(matchesEventPattern(pattern, inAccount(await fixture(name), MEMBER)), name).toBe(true);
    }
    expect(
      matchesEventPattern(pattern, inAccount(await fixture("modify-instance-metadata-defaults-failed.json"), MEMBER)),
    ).toBe(false);
    expect(
      matchesEventPattern(pattern, inAccount(await fixture("modify-instance-metadata-options-failed.json"), MEMBER)),
    ).toBe(false);
    const own = inAccount(
      await fixture("modify-instance-metadata-options.json"),
      MEMBER,
      `arn:aws:sts::${MEMBER}:assumed-role/imdsv2-guard-spoke/imdsv2-guard-5e8f7c6d`,
    );
    expect(matchesEventPattern(pattern, own)).toBe(false);
  });

  it("forwards EC2's trail-free pending notification to the hub, and no other state", async () => {
    const { template } = await spoke("spoke-region.yml");
    const pending = resource(template, "ForwardStateChangeRule").Properties;
    expect(matchesEventPattern(pending.EventPattern, await fixture("state-change-pending.json"))).toBe(true);
    expect(matchesEventPattern(pending.EventPattern, await fixture("state-change-running.json"))).toBe(false);
    const [target] = z.array(z.record(z.string(), z.unknown())).parse(pending.Targets);
    expect(resolve(target, { "AWS::Partition": "aws", "AWS::AccountId": MEMBER, HubEventBusArn: HUB_BUS })).toEqual({
      Id: "imdsv2-guard-hub",
      Arn: HUB_BUS,
      RoleArn: `arn:aws:iam::${MEMBER}:role/imdsv2-guard-forwarder`,
      RetryPolicy: { MaximumRetryAttempts: 24, MaximumEventAgeInSeconds: 3600 },
      DeadLetterConfig: { Arn: { "Fn::GetAtt": ["ForwardDeadLetterQueue", "Arn"] } },
    });
  });

  it("targets the hub bus with the forwarder role, a retry policy and a dead-letter queue", async () => {
    const { rule: forward } = await rule();
    const [target] = z.array(z.record(z.string(), z.unknown())).parse(forward.Targets);
    expect(resolve(target, { "AWS::Partition": "aws", "AWS::AccountId": MEMBER, HubEventBusArn: HUB_BUS })).toEqual({
      Id: "imdsv2-guard-hub",
      Arn: HUB_BUS,
      RoleArn: `arn:aws:iam::${MEMBER}:role/imdsv2-guard-forwarder`,
      RetryPolicy: { MaximumRetryAttempts: 24, MaximumEventAgeInSeconds: 3600 },
      DeadLetterConfig: { Arn: { "Fn::GetAtt": ["ForwardDeadLetterQueue", "Arn"] } },
    });
    expect(forward.EventBusName).toBeUndefined();
  });
});

describe("the hub: serverless.yml with organizationId", () => {
  let single: Template;
  let hub: Template;
  beforeAll(async () => {
    single = await packageStack([]);
    hub = await packageStack([`organizationId=${ORG}`]);
  }, 240_000);
  afterAll(async () => {
    await Promise.all(packaged.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("adds only the hub: without its bus, policies and settings, the template is the single-account one", () => {
    const stripped = structuredClone(hub);
    for (const id of [
      "HubEventBus",
      "HubEventBusPolicy",
      "HubAssumeSpokeRolePolicy",
      "HubAssumeSpokeRoleForFindingsPolicy",
      "HubReadOrganizationPolicy",
      "HubSweepReportPolicy",
    ]) {
      expect(stripped.Resources[id], id).toBeDefined();
      delete stripped.Resources[id];
    }
    delete resource(stripped, "GuardEventRule").Properties.EventBusName;
    delete resource(stripped, "GuardStateChangeRule").Properties.EventBusName;
    const hubOnlyVariables = [
      "ORGANIZATION_ID",
      "SPOKE_ROLE_NAME",
      "ALLOWED_ACCOUNT_IDS",
      "ALLOWED_OU_IDS",
      "SWEEP_REGIONS",
      "TOPIC_ARN",
      "SLACK_TOPIC_ARN",
      "SLACK_VERDICTS",
    ];
    // Notify and CheckRejected have their topics in both; only the sweep gets them from the hub.
    const withTopicsInBoth = new Set(["TOPIC_ARN", "SLACK_TOPIC_ARN", "SLACK_VERDICTS"]);
    for (const [id, r] of Object.entries(stripped.Resources)) {
      const variables = (r.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables;
      for (const name of hubOnlyVariables) {
        if (["CheckRejectedLambdaFunction", "NotifyLambdaFunction"].includes(id) && withTopicsInBoth.has(name))
          continue;
        if (variables) delete variables[name];
      }
    }
    delete (stripped.Outputs as Record<string, unknown>).HubEventBusArn;
    // The hub acts through the spokes only: SingleAccount is false, which drops the acting roles' hub-account rights
    // and the stack's probe documents; SendProbe sends the spokes' documents.
    expect(stripped.Conditions.SingleAccount).toEqual({ "Fn::Equals": [ORG, ""] });
    expect(single.Conditions.SingleAccount).toEqual({ "Fn::Equals": ["", ""] });
    stripped.Conditions.SingleAccount = single.Conditions.SingleAccount;
    const probeEnv = (t: Template) =>
      z
        .object({ Variables: z.record(z.string(), z.unknown()) })
        .parse(resource(t, "SendProbeLambdaFunction").Properties.Environment).Variables;
    expect(probeEnv(stripped).PROBE_DOCUMENT_PREFIX).toBe("imdsv2-guard-probe");
    // zod's parse returns a copy: the stripped template gets the single-account value written back into it.
    resource(stripped, "SendProbeLambdaFunction").Properties.Environment = {
      Variables: { ...probeEnv(stripped), PROBE_DOCUMENT_PREFIX: probeEnv(single).PROBE_DOCUMENT_PREFIX },
    };
    // The hub's resolve-targets and admit-event are the entries that read Organizations; the single-account
    // resolve-targets bundles no AWS SDK.
    for (const [id, dir] of [
      ["ResolveTargetsLambdaFunction", "resolve-targets"],
      ["AdmitEventLambdaFunction", "admit-event"],
    ] as const) {
      const fn = resource(stripped, id).Properties;
      expect(fn.Handler, id).toBe(`functions/${dir}/organization-handler.handler`);
      expect(resource(single, id).Properties.Handler, id).toBe(`functions/${dir}/handler.handler`);
      fn.Handler = `functions/${dir}/handler.handler`;
    }
    const withoutCodeKeys = (t: Template) => JSON.stringify(t).replace(/"S3Key":"[^"]*"/g, '"S3Key":""');
    expect(withoutCodeKeys(stripped)).toBe(withoutCodeKeys(single));
    expect(JSON.stringify(single)).not.toMatch(/HubEventBus|ORGANIZATION_ID|imdsv2-guard-spoke/);
  });

  it("lets only the organization put only the guard's events on the hub bus", () => {
    expect(resource(hub, "HubEventBusPolicy").Properties.Statement).toEqual({
      Sid: "OrganizationPutsGuardEventsOnly",
      Effect: "Allow",
      Principal: "*",
      Action: "events:PutEvents",
      Resource: { "Fn::GetAtt": ["HubEventBus", "Arn"] },
      Condition: {
        StringEquals: { "aws:PrincipalOrgID": ORG },
        "ForAllValues:StringEquals": {
          "events:source": ["aws.ec2"],
          "events:detail-type": ["AWS API Call via CloudTrail", "EC2 Instance State-change Notification"],
        },
      },
    });
  });

  it("moves the guard's rules to the hub bus with their pattern, AdmitEvent target, retry policy and dead-letter queue", () => {
    for (const [rule, permission] of [
      ["GuardEventRule", "AdmitEventPermissionApiCalls"],
      ["GuardStateChangeRule", "AdmitEventPermissionStateChanges"],
    ] as const) {
      const moved = resource(hub, rule).Properties;
      const before = resource(single, rule).Properties;
      expect(moved.EventBusName, rule).toEqual({ Ref: "HubEventBus" });
      expect(moved.Targets, rule).toEqual(before.Targets);
      expect(moved.Targets, rule).toEqual([
        expect.objectContaining({ Arn: { "Fn::GetAtt": ["AdmitEventLambdaFunction", "Arn"] } }),
      ]);
      expect(moved.EventPattern, rule).toEqual(before.EventPattern);
      // The permission names the rule by its ARN, which follows the rule onto the hub bus.
      expect(resource(hub, permission).Properties, permission).toEqual({
        FunctionName: { "Fn::GetAtt": ["AdmitEventLambdaFunction", "Arn"] },
        Action: "lambda:InvokeFunction",
        Principal: "events.amazonaws.com",
        SourceArn: { "Fn::GetAtt": [rule, "Arn"] },
      });
    }
  });

  it("matches what a spoke forwards from a member account", async () => {
    const pattern = resolve(resource(hub, "GuardEventRule").Properties.EventPattern, {
      "AWS::Partition": "aws",
      "AWS::AccountId": HUB,
    });
    for (const name of ["run-instances.json", "modify-instance-metadata-options.json"]) {
      expect(matchesEventPattern(pattern, inAccount(await fixture(name), MEMBER)), name).toBe(true);
    }
  });

  it("lets the acting functions assume only the spoke role, only in the organization", () => {
    const policy = resource(hub, "HubAssumeSpokeRolePolicy").Properties;
    expect(policy.Roles).toEqual(
      [
        "AdmitEventRole",
        "EnforceRole",
        "CheckAppliedRole",
        "CheckManagedRole",
        "SendProbeRole",
        "CheckProbeRole",
        "AssessAccountRole",
        "CheckRejectedRole",
        "GuardAccountDefaultRole",
        "SweepRole",
      ].map((r) => ({ Ref: r })),
    );
    expect(z.object({ Statement: z.array(statementSchema) }).parse(policy.PolicyDocument).Statement).toEqual([
      {
        Sid: "AssumeSpokeRoleInOrganization",
        Effect: "Allow",
        Action: "sts:AssumeRole",
        Resource: { "Fn::Sub": `arn:\${AWS::Partition}:iam::*:role/imdsv2-guard-spoke` },
        Condition: { StringEquals: { "aws:ResourceOrgID": ORG } },
      },
    ]);
    // Notify enters a member only for Security Hub: the same right, only with securityHub=true.
    const findings = resource(hub, "HubAssumeSpokeRoleForFindingsPolicy");
    expect(findings.Condition).toBe("HasSecurityHub");
    expect(findings.Properties.Roles).toEqual([{ Ref: "NotifyRole" }]);
    expect(findings.Properties.PolicyDocument).toEqual(policy.PolicyDocument);
    for (const { where, statement } of statements(hub)) {
      if (statement.Effect === "Allow") for (const a of actionsOf(statement)) expect(a, where).not.toBe("*");
    }
  });

  it("lets the sweep list the organization's accounts and publish its posture report to the guard's topics only", () => {
    const read = resource(hub, "HubReadOrganizationPolicy").Properties;
    expect(read.Roles).toEqual([{ Ref: "AdmitEventRole" }, { Ref: "ResolveTargetsRole" }, { Ref: "SweepRole" }]);
    expect(JSON.stringify(read.PolicyDocument)).toContain(
      '"Action":["organizations:ListAccounts","organizations:ListParents"]',
    );
    const report = resource(hub, "HubSweepReportPolicy").Properties;
    expect(report.Roles).toEqual([{ Ref: "SweepRole" }]);
    expect(z.object({ Statement: z.array(statementSchema) }).parse(report.PolicyDocument).Statement).toEqual([
      {
        Sid: "PublishToGuardTopics",
        Effect: "Allow",
        Action: "sns:Publish",
        Resource: [{ Ref: "AlertTopic" }, { "Fn::If": ["HasSlack", { Ref: "SlackTopic" }, { Ref: "AWS::NoValue" }] }],
      },
      {
        Sid: "UseTopicKey",
        Effect: "Allow",
        Action: ["kms:GenerateDataKey", "kms:Decrypt"],
        Resource: { "Fn::GetAtt": ["AlertKey", "Arn"] },
      },
    ]);
    const variables = z
      .object({ Variables: z.record(z.string(), z.unknown()) })
      .parse(resource(hub, "SweepLambdaFunction").Properties.Environment).Variables;
    expect(variables).toMatchObject({
      ORGANIZATION_ID: ORG,
      SPOKE_ROLE_NAME: "imdsv2-guard-spoke",
      SWEEP_REGIONS: "",
      TOPIC_ARN: { Ref: "AlertTopic" },
    });
  });

  it("tells every acting function, ResolveTargets and AdmitEvent that it is the hub", () => {
    for (const fn of [
      "AdmitEvent",
      "Enforce",
      "CheckApplied",
      "CheckManaged",
      "SendProbe",
      "CheckProbe",
      "AssessAccount",
      "CheckRejected",
      "GuardAccountDefault",
      "ResolveTargets",
    ]) {
      const variables = z
        .object({ Variables: z.record(z.string(), z.unknown()) })
        .parse(resource(hub, `${fn}LambdaFunction`).Properties.Environment).Variables;
      expect(variables.ORGANIZATION_ID, fn).toBe(ORG);
      expect(variables.SPOKE_ROLE_NAME, fn).toBe("imdsv2-guard-spoke");
    }
    // AdmitEvent runs ResolveTargets' confused-deputy checks, with the same allow-lists.
    for (const fn of ["AdmitEvent", "ResolveTargets"]) {
      const variables = z
        .object({ Variables: z.record(z.string(), z.unknown()) })
        .parse(resource(hub, `${fn}LambdaFunction`).Properties.Environment).Variables;
      expect(variables, fn).toMatchObject({ ALLOWED_ACCOUNT_IDS: "", ALLOWED_OU_IDS: "" });
    }
    // ClaimInstances only reads and writes the hub's ledger now: it never enters a member account.
    const claim = z
      .object({ Variables: z.record(z.string(), z.unknown()) })
      .parse(resource(hub, "ClaimInstancesLambdaFunction").Properties.Environment).Variables;
    expect(claim.ORGANIZATION_ID).toBeUndefined();
  });

  it("routes CheckRejected's alerts like Notify's reports when slackRoutes is set", async () => {
    const routedTopic = "arn:aws:sns:us-east-1:999900000000:imdsv2-guard-slack-payments";
    const routed = await packageStack([`organizationId=${ORG}`, `slackRoutes=${MEMBER}=${routedTopic}`]);
    const policy = resource(routed, "HubPublishToRoutedSlackTopicsPolicy").Properties;
    expect(policy.Roles).toEqual([{ Ref: "NotifyRole" }, { Ref: "CheckRejectedRole" }]);
    expect(JSON.stringify(policy.PolicyDocument)).toContain(`"Resource":["${routedTopic}"]`);
    for (const fn of ["Notify", "CheckRejected"]) {
      const variables = z
        .object({ Variables: z.record(z.string(), z.unknown()) })
        .parse(resource(routed, `${fn}LambdaFunction`).Properties.Environment).Variables;
      expect(variables.SLACK_ROUTES, fn).toBe(`${MEMBER}=${routedTopic}`);
    }
    // CheckRejected still acts in member accounts through the spoke role.
    const checkRejected = z
      .object({ Variables: z.record(z.string(), z.unknown()) })
      .parse(resource(routed, "CheckRejectedLambdaFunction").Properties.Environment).Variables;
    expect(checkRejected).toMatchObject({ ORGANIZATION_ID: ORG, SPOKE_ROLE_NAME: "imdsv2-guard-spoke" });
  }, 240_000);
});
