/**
 * `imdsv2-guard doctor`: a read-only pre-flight of an account (and, with --accounts, of the organization's spokes).
 * The checks read the account through `DoctorReaders`, plain functions that take their clients as arguments, so the
 * same checks run against AWS (ops/aws-readers.ts) and against the simulated account (local/runner/simulated-ops.ts).
 * Every check ends in data: `ok`, `attention` (with the command that fixes it) or `not-checked` (with why).
 */

/** What one trail records (CloudTrail DescribeTrails, GetTrailStatus, GetEventSelectors). */
export interface TrailInfo {
  name: string;
  homeRegion: string;
  multiRegion: boolean;
  logging: boolean;
  /** Write (or all) management events are recorded: the guard's trigger is a write (RunInstances). */
  writeManagementEvents: boolean;
}

/** The deployed hub or single-account stack, as CloudFormation DescribeStacks shows it. */
export interface StackInfo {
  name: string;
  status: string;
  parameters: Record<string, string>;
  /** The stack's outputs: serverless.yml's GuardMode, GuardOrganizationMode, GuardAlertEmailSet, among others. */
  outputs: Record<string, string>;
  /** The `version` stack tag, when the deploy set one. */
  version?: string;
}

export interface SpokeInfo {
  /** The spoke role could be assumed (spoke-account.yml deployed, trust naming the caller). */
  reachable: boolean;
  /** Why not, when not (the AWS error code). */
  error?: string;
  /** spoke-region.yml's stack, when found, with its `version` tag. */
  regionStack?: { status: string; version?: string };
  /** The probe documents (imdsv2-guard-probe-*) the spoke has. */
  probeDocuments: string[];
  /** Those of the guard's two whose latest version is not this build's probe: the spoke-region stack is older. */
  probeDocumentsOutOfDate?: string[];
  /** Those that could not be read to compare, each with the AWS error code. */
  probeDocumentsNotCompared?: string[];
}

/** Every read the doctor makes; each one is a single AWS API (named in DOCTOR_API_CALLS). */
export interface DoctorReaders {
  /** Absent where CloudTrail cannot be read: not-checked, with the command that checks by hand. */
  trails?(region: string): Promise<TrailInfo[]>;
  /** Running and stopped instances (EC2 DescribeInstances). */
  instances(region: string): Promise<{ instanceId: string; state: string }[]>;
  /** Instances with an SSM managed node that is online (SSM DescribeInstanceInformation). */
  managedNodes(region: string): Promise<Set<string>>;
  /** Absent where CloudFormation cannot be read: not-checked, with the command that checks by hand. */
  stack?(region: string, stackName: string): Promise<StackInfo | undefined>;
  /** Alarm names starting with `prefix`, with their state (CloudWatch DescribeAlarms). */
  alarms(region: string, prefix: string): Promise<{ name: string; state: string }[]>;
  /** Executions of the guard's state machine that are RUNNING (Step Functions ListStateMachines, ListExecutions). */
  runningExecutions(region: string, stateMachineName: string): Promise<number | undefined>;
  /** The account's IMDS defaults in the region (EC2 GetInstanceMetadataDefaults). */
  accountDefaults(region: string): Promise<{ httpTokens?: string; httpTokensEnforced?: string }>;
  /** Chatbot Slack channels configured for the topic, or undefined when the reader cannot tell. */
  chatbotChannels?(region: string): Promise<string[] | undefined>;
  /** Organizations ListAccounts from the hub's account: works for the management account or a delegated one. */
  organizationAccounts?(): Promise<string[]>;
  spoke?(account: string, region: string, roleName: string): Promise<SpokeInfo>;
}

export type CheckStatus = "ok" | "attention" | "not-checked";

export interface DoctorCheck {
  check: string;
  status: CheckStatus;
  region?: string;
  account?: string;
  detail: string;
  /** The command that fixes it (attention), or checks it by hand (not-checked). */
  fix?: string;
}

export interface DoctorReport {
  schema: "imdsv2-guard.doctor.v1";
  generatedAt: string;
  stage: string;
  regions: string[];
  checks: DoctorCheck[];
  attention: number;
}

export interface DoctorOptions {
  regions: string[];
  stage: string;
  /** The stack's name in each region (osls: `<service>-<stage>`). */
  stackName: string;
  /** --accounts: the spokes to check, entered through roleName. */
  accounts?: string[];
  roleName: string;
  /** The version the spokes and the stack should be at (this package's). */
  expectedVersion: string;
  now: () => Date;
  /** Called before each check, for a progress line. */
  onProgress?: (what: string) => void;
}

/** Every AWS API the doctor's readers call, with the resource it reads: for the integrator's IAM test. */
export const DOCTOR_API_CALLS = [
  { action: "cloudtrail:DescribeTrails", resource: "*" },
  { action: "cloudtrail:GetTrailStatus", resource: "arn:aws:cloudtrail:*:*:trail/*" },
  { action: "cloudtrail:GetEventSelectors", resource: "arn:aws:cloudtrail:*:*:trail/*" },
  { action: "ec2:DescribeInstances", resource: "*" },
  { action: "ec2:GetInstanceMetadataDefaults", resource: "*" },
  { action: "ssm:DescribeInstanceInformation", resource: "*" },
  { action: "ssm:ListDocuments", resource: "*" },
  // --accounts, in each spoke through the auditor role: the guard's two probe documents, compared with this build.
  { action: "ssm:GetDocument", resource: "arn:aws:ssm:*:*:document/imdsv2-guard-probe-*" },
  { action: "cloudformation:DescribeStacks", resource: "arn:aws:cloudformation:*:*:stack/imdsv2-guard-*/*" },
  { action: "cloudwatch:DescribeAlarms", resource: "arn:aws:cloudwatch:*:*:alarm:imdsv2-guard-*" },
  { action: "states:ListStateMachines", resource: "*" },
  { action: "states:ListExecutions", resource: "arn:aws:states:*:*:stateMachine:imdsv2-guard-*" },
  { action: "organizations:ListAccounts", resource: "*" },
  { action: "sts:AssumeRole", resource: "arn:aws:iam::*:role/imdsv2-guard-auditor" },
] as const;

/** The alarms serverless.yml creates (infra/alerting.yml), by their name after `<service>-<stage>-`. */
export const EXPECTED_ALARMS = [
  "events-dead-lettered",
  "watch-dead-lettered",
  "executions-failed",
  "executions-timed-out",
  "executions-aborted",
] as const;

/** The least-power probe documents a spoke carries (infra/spoke): their names start with this. */
export const PROBE_DOCUMENT_PREFIX = "imdsv2-guard-probe-";

/** Runs every check; never throws for what it reads: a read that fails is a check that says so. */
export async function runDoctor(readers: DoctorReaders, options: DoctorOptions): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const attempt = async (check: string, where: { region?: string; account?: string }, body: () => Promise<void>) => {
    options.onProgress?.(
      `${check}${where.account ? ` ${where.account}` : ""}${where.region ? ` ${where.region}` : ""}`,
    );
    try {
      await body();
    } catch (error) {
      checks.push({
        check,
        status: "attention",
        ...where,
        detail: `could not read: ${errorText(error)}`,
        fix: 'check the credentials\' permissions (docs/commands.md, "doctor": the calls it makes)',
      });
    }
  };
  const rg = (region: string) => `--region ${region}`;

  for (const region of options.regions) {
    const readTrails = readers.trails;
    if (!readTrails) {
      checks.push({
        check: "trail",
        status: "not-checked",
        region,
        detail: "CloudTrail is not read by this build",
        fix: `aws cloudtrail describe-trails ${rg(region)}; aws cloudtrail get-event-selectors --trail-name NAME ${rg(region)}`,
      });
    } else
      await attempt("trail", { region }, async () => {
        const trails = (await readTrails(region)).filter((t) => t.multiRegion || t.homeRegion === region);
        const good = trails.find((t) => t.logging && t.writeManagementEvents);
        checks.push(
          good
            ? { check: "trail", status: "ok", region, detail: `trail ${good.name} logs management events` }
            : {
                check: "trail",
                status: "attention",
                region,
                detail:
                  trails.length === 0
                    ? "no trail records this region: EventBridge gets no RunInstances, so launches are not guarded"
                    : `trail(s) ${trails.map((t) => t.name).join(", ")} not logging write management events`,
                fix: `aws cloudtrail create-trail --name imdsv2-guard-trail --s3-bucket-name BUCKET --is-multi-region-trail ${rg(region)} && aws cloudtrail start-logging --name imdsv2-guard-trail ${rg(region)}`,
              },
        );
      });

    await attempt("ssm-coverage", { region }, async () => {
      const instances = (await readers.instances(region)).filter((i) => i.state === "running");
      const managed = await readers.managedNodes(region);
      const unmanaged = instances.filter((i) => !managed.has(i.instanceId)).map((i) => i.instanceId);
      checks.push(
        unmanaged.length === 0
          ? {
              check: "ssm-coverage",
              status: "ok",
              region,
              detail: `${instances.length} running instance(s), all managed nodes`,
            }
          : {
              check: "ssm-coverage",
              status: "attention",
              region,
              detail: `${unmanaged.length} of ${instances.length} running instance(s) are not SSM managed nodes and will end unverified: ${shortList(unmanaged)}`,
              fix: `aws ssm create-default-management-instance-role ${rg(region)}  (or attach AmazonSSMManagedInstanceCore to their instance profile)`,
            },
      );
    });

    let stack: StackInfo | undefined;
    const readStack = readers.stack;
    if (!readStack) {
      checks.push({
        check: "stack",
        status: "not-checked",
        region,
        detail: "CloudFormation is not read by this build",
        fix: `aws cloudformation describe-stacks --stack-name ${options.stackName} ${rg(region)}`,
      });
    } else
      await attempt("stack", { region }, async () => {
        stack = await readStack(region, options.stackName);
        if (!stack) {
          checks.push({
            check: "stack",
            status: "attention",
            region,
            detail: `stack ${options.stackName} not found`,
            fix: `node scripts/deploy-regions.mjs --param-file params.json --regions ${region} --stage ${options.stage}  (docs/deploy-regions.md)`,
          });
          return;
        }
        const healthy = /_COMPLETE$/.test(stack.status) && !/ROLLBACK|DELETE/.test(stack.status);
        // osls resolves ${param:...} into the template when it packages, so a stack it deployed has no CloudFormation
        // parameters: its outputs say the mode and whether an alert email is set (never the address).
        const mode = stack.parameters.mode ?? stack.outputs.GuardMode;
        const alertEmailSet =
          stack.parameters.alertEmail !== undefined
            ? stack.parameters.alertEmail !== ""
            : stack.outputs.GuardAlertEmailSet === undefined
              ? undefined
              : stack.outputs.GuardAlertEmailSet === "true";
        const versionNote =
          stack.version === undefined
            ? ""
            : stack.version === options.expectedVersion
              ? `, version ${stack.version}`
              : `, version ${stack.version} (this command is ${options.expectedVersion})`;
        checks.push({
          check: "stack",
          status:
            healthy && (stack.version === undefined || stack.version === options.expectedVersion) ? "ok" : "attention",
          region,
          // A stack deployed before the outputs existed shows neither: say so rather than report mode=? and an alert
          // email "not set".
          detail:
            mode === undefined && alertEmailSet === undefined
              ? `${stack.name} ${stack.status}, mode and alertEmail not readable (a stack from before 0.1.0's outputs: redeploy it)${versionNote}`
              : `${stack.name} ${stack.status}, mode=${mode ?? "?"}${stack.outputs.GuardOrganizationMode ? ` (${stack.outputs.GuardOrganizationMode})` : ""}, alertEmail ${alertEmailSet ? "set" : "not set"}${versionNote}`,
          ...(healthy && (stack.version === undefined || stack.version === options.expectedVersion)
            ? {}
            : {
                fix: `node scripts/deploy-regions.mjs --param-file params.json --regions ${region} --stage ${options.stage}`,
              }),
        });
      });

    await attempt("alarms", { region }, async () => {
      const prefix = `${options.stackName}-`;
      const alarms = await readers.alarms(region, prefix);
      const names = new Set(alarms.map((a) => a.name));
      const missing = EXPECTED_ALARMS.filter((a) => !names.has(`${prefix}${a}`));
      const firing = alarms.filter((a) => a.state === "ALARM").map((a) => a.name);
      checks.push(
        missing.length > 0
          ? {
              check: "alarms",
              status: "attention",
              region,
              detail: `missing: ${missing.join(", ")}`,
              fix: `node scripts/deploy-regions.mjs --param-file params.json --regions ${region} --stage ${options.stage}`,
            }
          : firing.length > 0
            ? {
                check: "alarms",
                status: "attention",
                region,
                detail: `in ALARM: ${firing.join(", ")}`,
                fix: `aws cloudwatch describe-alarms --alarm-name-prefix ${prefix} --state-value ALARM ${rg(region)}`,
              }
            : { check: "alarms", status: "ok", region, detail: `${alarms.length} alarm(s), none in ALARM` },
      );
    });

    const slack = stack?.parameters.slackWorkspaceId;
    if (slack && readers.chatbotChannels) {
      const read = readers.chatbotChannels;
      await attempt("chatbot", { region }, async () => {
        const channels = await read(region);
        checks.push(
          channels === undefined
            ? {
                check: "chatbot",
                status: "not-checked",
                region,
                detail: "Slack is configured; this reader cannot list Chatbot channels",
                fix: "aws chatbot describe-slack-channel-configurations --region us-east-2",
              }
            : channels.length > 0
              ? { check: "chatbot", status: "ok", region, detail: `Slack channel(s): ${channels.join(", ")}` }
              : {
                  check: "chatbot",
                  status: "attention",
                  region,
                  detail: "slackWorkspaceId is set but no Chatbot channel is configured for the topic",
                  fix: "authorize the workspace in the AWS Chatbot console, then redeploy",
                },
        );
      });
    }

    await attempt("executions", { region }, async () => {
      const running = await readers.runningExecutions(region, options.stackName);
      checks.push(
        running === undefined
          ? { check: "executions", status: "ok", region, detail: "no state machine yet: nothing running" }
          : running === 0
            ? { check: "executions", status: "ok", region, detail: "no execution running: safe to upgrade" }
            : {
                check: "executions",
                status: "attention",
                region,
                detail: `${running} execution(s) running: wait before an upgrade or uninstall`,
                fix: `aws stepfunctions list-executions --status-filter RUNNING --state-machine-arn ARN ${rg(region)}`,
              },
      );
    });

    await attempt("account-default", { region }, async () => {
      const d = await readers.accountDefaults(region);
      const required = d.httpTokens === "required";
      const enforced = d.httpTokensEnforced === "enabled";
      checks.push(
        required && enforced
          ? {
              check: "account-default",
              status: "ok",
              region,
              detail: "HttpTokens=required, HttpTokensEnforced=enabled",
            }
          : {
              check: "account-default",
              status: "attention",
              region,
              detail: `HttpTokens=${d.httpTokens ?? "no-preference"}, HttpTokensEnforced=${d.httpTokensEnforced ?? "disabled"}: new launches may allow IMDSv1`,
              fix: `aws ec2 modify-instance-metadata-defaults --http-tokens required ${rg(region)}  (then --http-tokens-enforced enabled once the audit shows no IMDSv1 use)`,
            },
      );
    });
  }

  if (options.accounts) {
    const readOrg = readers.organizationAccounts;
    if (readOrg) {
      await attempt("organizations", {}, async () => {
        const accounts = await readOrg();
        checks.push({
          check: "organizations",
          status: "ok",
          detail: `the hub can list the organization (${accounts.length} accounts)`,
        });
      });
    }
    const readSpoke = readers.spoke;
    for (const account of options.accounts) {
      for (const region of options.regions) {
        if (!readSpoke) break;
        await attempt("spoke", { account, region }, async () => {
          checks.push(spokeCheck(account, region, await readSpoke(account, region, options.roleName), options));
        });
      }
    }
  }

  return {
    schema: "imdsv2-guard.doctor.v1",
    generatedAt: options.now().toISOString(),
    stage: options.stage,
    regions: options.regions,
    checks,
    attention: checks.filter((c) => c.status === "attention").length,
  };
}

function spokeCheck(account: string, region: string, spoke: SpokeInfo, options: DoctorOptions): DoctorCheck {
  const where = { check: "spoke", account, region };
  const deploy = `aws cloudformation deploy --template-file infra/spoke/spoke-region.yml --stack-name imdsv2-guard-spoke-region --region ${region}  (in account ${account})`;
  if (!spoke.reachable) {
    return {
      ...where,
      status: "attention",
      detail: `cannot assume ${options.roleName}${spoke.error ? ` (${spoke.error})` : ""}: spoke not deployed, or its trust does not name you`,
      fix: "aws cloudformation deploy --template-file infra/spoke/spoke-account.yml --stack-name imdsv2-guard-spoke --capabilities CAPABILITY_NAMED_IAM  (in that account)",
    };
  }
  if (
    !spoke.regionStack ||
    !/_COMPLETE$/.test(spoke.regionStack.status) ||
    /ROLLBACK|DELETE/.test(spoke.regionStack.status)
  ) {
    return { ...where, status: "attention", detail: "spoke-region stack missing or failed", fix: deploy };
  }
  if (spoke.regionStack.version !== undefined && spoke.regionStack.version !== options.expectedVersion) {
    return {
      ...where,
      status: "attention",
      detail: `spoke at version ${spoke.regionStack.version}, the hub expects ${options.expectedVersion}`,
      fix: deploy,
    };
  }
  if (spoke.probeDocuments.length === 0) {
    return {
      ...where,
      status: "attention",
      detail: `no ${PROBE_DOCUMENT_PREFIX}* document: the hub cannot probe there`,
      fix: deploy,
    };
  }
  const outOfDate = spoke.probeDocumentsOutOfDate ?? [];
  if (outOfDate.length > 0) {
    return {
      ...where,
      status: "attention",
      detail: `${outOfDate.join(", ")} is not this release's probe: the spoke-region stack is from another release, and SendProbe refuses to send it`,
      fix: deploy,
    };
  }
  const notCompared = spoke.probeDocumentsNotCompared ?? [];
  return {
    ...where,
    status: "ok",
    detail: `spoke deployed, probe document ${spoke.probeDocuments.join(", ")}${notCompared.length > 0 ? `; not compared with this release: ${notCompared.join(", ")}` : ""}`,
  };
}

function shortList(ids: readonly string[]): string {
  return ids.length <= 5 ? ids.join(", ") : `${ids.slice(0, 5).join(", ")} and ${ids.length - 5} more`;
}

function errorText(error: unknown): string {
  const e = error as { name?: unknown; message?: unknown } | null;
  const name = typeof e?.name === "string" ? e.name : "Error";
  const message = typeof e?.message === "string" ? e.message : String(error);
  return `${name}: ${message}`.slice(0, 300);
}
