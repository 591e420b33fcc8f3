// Organization mode (README "Organization mode"). With the `organizationId` param empty this returns nothing, so the
// packaged template is exactly the single-account one. With `organizationId=o-...` the stack becomes the hub:
// - a custom event bus whose policy lets only the organization's accounts put only the guard's events on it;
// - the guard's rules moved from the default bus to that bus (same pattern, AdmitEvent target, retry policy, DLQ and
//   alarms; AdmitEvent's permissions name the rules by ARN, which follows the bus);
// - each function told it is the hub (ORGANIZATION_ID), and allowed to assume the spoke role in the organization's
//   accounts only (aws:ResourceOrgID; Notify only with securityHub=true), AdmitEvent, ResolveTargets and the sweep
//   to read the organization's accounts;
// - the sweep covering every account x sweepRegions and publishing one posture report per run;
// - the acting roles' rights in the hub account itself dropped, and the stack's probe documents not created
//   (condition SingleAccount, infra/conditions.yml): every call of theirs goes through a member's spoke role.
// It is a function rather than YAML because osls merges every file listed under `resources`, and a YAML file would
// add its resources whatever the param says.

// The functions that act in member accounts, and the role each runs as (iam.yml names them namePrefix-<function>).
const ACTING_FUNCTIONS = {
  // DescribeInstances (LaunchTime) and GetInstanceMetadataDefaults in the event's account.
  AdmitEvent: "AdmitEventRole",
  Enforce: "EnforceRole",
  CheckApplied: "CheckAppliedRole",
  CheckManaged: "CheckManagedRole",
  SendProbe: "SendProbeRole",
  CheckProbe: "CheckProbeRole",
  AssessAccount: "AssessAccountRole",
  CheckRejected: "CheckRejectedRole",
  // A member's weakened IMDS default is read, and with enforceAccountDefault set back, in that member's account.
  GuardAccountDefault: "GuardAccountDefaultRole",
};

// Notify enters a member's account only for Security Hub (securityHub=true): a finding goes in through the member's
// own account, under its default product ARN. Without securityHub it makes no call there, so it may assume nothing.
const FINDINGS_FUNCTIONS = {
  Notify: "NotifyRole",
};

// The functions that run ResolveTargets' core: the confused-deputy checks read the organization and its allow-lists.
const RESOLVING_FUNCTIONS = {
  AdmitEvent: "AdmitEventRole",
  ResolveTargets: "ResolveTargetsRole",
};

const SPOKE_ROLE_NAME = "imdsv2-guard-spoke";
// The probe documents infra/spoke/spoke-region.yml creates in every member account and region (SPOKE_PROBE_DOCUMENT_PREFIX
// in shared/probes/probe-document.ts).
const SPOKE_PROBE_DOCUMENT_PREFIX = "imdsv2-guard-probe";
// What the spoke rule forwards (infra/spoke/spoke-region.yml) and the hub's rule matches.
const SOURCES = ["aws.ec2"];
const DETAIL_TYPES = ["AWS API Call via CloudTrail", "EC2 Instance State-change Notification"];

module.exports = async ({ resolveVariable }) => {
  const organizationId = String((await resolveVariable("param:organizationId")) ?? "");
  if (organizationId === "") return {};
  if (!/^o-[a-z0-9]{10,32}$/.test(organizationId)) {
    throw new Error(
      `organizationId must be an organization id (o-...) or empty, not ${JSON.stringify(organizationId)}`,
    );
  }
  const allowedAccountIds = String((await resolveVariable("param:allowedAccountIds")) ?? "");
  const allowedOuIds = String((await resolveVariable("param:allowedOuIds")) ?? "");
  // What every function that reads the organization is told: it is the hub, its spoke role, and the allow-lists.
  const directoryEnvironment = {
    ORGANIZATION_ID: organizationId,
    SPOKE_ROLE_NAME: SPOKE_ROLE_NAME,
    ALLOWED_ACCOUNT_IDS: allowedAccountIds,
    ALLOWED_OU_IDS: allowedOuIds,
  };
  // account=topicArn,...: each listed account's reports go to its own Slack topic (with its own Chatbot channel).
  const slackRoutes = String((await resolveVariable("param:slackRoutes")) ?? "");
  const routedTopics = slackRoutes
    .split(",")
    .map((entry) => entry.trim().split("=")[1])
    .filter(Boolean);
  const sweepRegions = String((await resolveVariable("param:sweepRegions")) ?? "");
  if (!/^([a-z]{2}(-[a-z]+)+-\d{1,2})?(,\s*[a-z]{2}(-[a-z]+)+-\d{1,2})*$/.test(sweepRegions)) {
    throw new Error(`sweepRegions must be comma-separated region names, not ${JSON.stringify(sweepRegions)}`);
  }
  const service = await resolveVariable("self:service");
  const stage = await resolveVariable("sls:stage");
  const busName = `${service}-${stage}-hub`;

  const organizationEnv = {
    Environment: {
      Variables: {
        ORGANIZATION_ID: organizationId,
        SPOKE_ROLE_NAME: SPOKE_ROLE_NAME,
      },
    },
  };
  // Only the spoke role, only in the organization's accounts: the one statement of both AssumeRole policies below.
  const assumeSpokeRole = {
    Sid: "AssumeSpokeRoleInOrganization",
    Effect: "Allow",
    Action: "sts:AssumeRole",
    Resource: { "Fn::Sub": `arn:\${AWS::Partition}:iam::*:role/${SPOKE_ROLE_NAME}` },
    Condition: { StringEquals: { "aws:ResourceOrgID": organizationId } },
  };
  const functionOverrides = Object.fromEntries(
    [...Object.keys(ACTING_FUNCTIONS), ...Object.keys(FINDINGS_FUNCTIONS)].map((fn) => [
      `${fn}LambdaFunction`,
      { Type: "AWS::Lambda::Function", Properties: organizationEnv },
    ]),
  );

  return {
    Resources: {
      HubEventBus: {
        Type: "AWS::Events::EventBus",
        Properties: { Name: busName },
      },
      // Only accounts of the organization, and only the events the guard handles. The spoke rule's target role
      // (the forwarder) is the principal EventBridge presents, so aws:PrincipalOrgID applies to it.
      HubEventBusPolicy: {
        Type: "AWS::Events::EventBusPolicy",
        Properties: {
          EventBusName: { Ref: "HubEventBus" },
          StatementId: "OrganizationPutsGuardEventsOnly",
          Statement: {
            Sid: "OrganizationPutsGuardEventsOnly",
            Effect: "Allow",
            Principal: "*",
            Action: "events:PutEvents",
            Resource: { "Fn::GetAtt": ["HubEventBus", "Arn"] },
            Condition: {
              StringEquals: { "aws:PrincipalOrgID": organizationId },
              "ForAllValues:StringEquals": { "events:source": SOURCES, "events:detail-type": DETAIL_TYPES },
            },
          },
        },
      },
      // The rule keeps its pattern, target, retry policy and DLQ; only the bus changes.
      GuardEventRule: {
        Type: "AWS::Events::Rule",
        Properties: { EventBusName: { Ref: "HubEventBus" } },
      },
      GuardStateChangeRule: {
        Type: "AWS::Events::Rule",
        Properties: { EventBusName: { Ref: "HubEventBus" } },
      },
      ...functionOverrides,
      // SendProbe sends the spokes' documents, by the name they have in every member account.
      SendProbeLambdaFunction: {
        Type: "AWS::Lambda::Function",
        Properties: {
          Environment: {
            Variables: { ...organizationEnv.Environment.Variables, PROBE_DOCUMENT_PREFIX: SPOKE_PROBE_DOCUMENT_PREFIX },
          },
        },
      },
      ...Object.fromEntries(
        Object.keys(RESOLVING_FUNCTIONS).map((fn) => [
          `${fn}LambdaFunction`,
          { Type: "AWS::Lambda::Function", Properties: { Environment: { Variables: directoryEnvironment } } },
        ]),
      ),
      // The organization sweep: every account of the organization x sweepRegions, and one posture report per run.
      SweepLambdaFunction: {
        Type: "AWS::Lambda::Function",
        Properties: {
          Environment: {
            Variables: {
              ...directoryEnvironment,
              SWEEP_REGIONS: sweepRegions,
              TOPIC_ARN: { Ref: "AlertTopic" },
              SLACK_TOPIC_ARN: { "Fn::If": ["HasSlack", { Ref: "SlackTopic" }, ""] },
              SLACK_VERDICTS: await resolveVariable("param:slackVerdicts"),
            },
          },
        },
      },
      // The posture report goes where Notify's reports go: the guard's own topics, with their key.
      HubSweepReportPolicy: {
        Type: "AWS::IAM::Policy",
        Properties: {
          PolicyName: "publish-posture-report",
          Roles: [{ Ref: "SweepRole" }],
          PolicyDocument: {
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "PublishToGuardTopics",
                Effect: "Allow",
                Action: "sns:Publish",
                Resource: [
                  { Ref: "AlertTopic" },
                  { "Fn::If": ["HasSlack", { Ref: "SlackTopic" }, { Ref: "AWS::NoValue" }] },
                ],
              },
              {
                Sid: "UseTopicKey",
                Effect: "Allow",
                Action: ["kms:GenerateDataKey", "kms:Decrypt"],
                Resource: { "Fn::GetAtt": ["AlertKey", "Arn"] },
              },
            ],
          },
        },
      },
      // Notify's reports and CheckRejected's alerts about refused IMDSv1 calls follow the same routes.
      ...(routedTopics.length > 0
        ? {
            NotifyLambdaFunction: {
              Type: "AWS::Lambda::Function",
              Properties: { Environment: { Variables: { SLACK_ROUTES: slackRoutes } } },
            },
            CheckRejectedLambdaFunction: {
              Type: "AWS::Lambda::Function",
              Properties: {
                Environment: { Variables: { ...organizationEnv.Environment.Variables, SLACK_ROUTES: slackRoutes } },
              },
            },
            HubPublishToRoutedSlackTopicsPolicy: {
              Type: "AWS::IAM::Policy",
              Properties: {
                PolicyName: "publish-to-routed-slack-topics",
                Roles: [{ Ref: "NotifyRole" }, { Ref: "CheckRejectedRole" }],
                PolicyDocument: {
                  Version: "2012-10-17",
                  Statement: [
                    {
                      Sid: "PublishToRoutedSlackTopics",
                      Effect: "Allow",
                      Action: "sns:Publish",
                      Resource: routedTopics,
                    },
                  ],
                },
              },
            },
          }
        : {}),
      // Only the spoke role, only in the organization's accounts. No wildcard action.
      HubAssumeSpokeRolePolicy: {
        Type: "AWS::IAM::Policy",
        Properties: {
          PolicyName: "assume-spoke-role",
          // The sweep enters every account too (its session is named after the sweep, not an event).
          Roles: [...Object.values(ACTING_FUNCTIONS), "SweepRole"].map((role) => ({ Ref: role })),
          PolicyDocument: {
            Version: "2012-10-17",
            Statement: [assumeSpokeRole],
          },
        },
      },
      // The same, for Notify's findings: only with securityHub=true.
      HubAssumeSpokeRoleForFindingsPolicy: {
        Type: "AWS::IAM::Policy",
        Condition: "HasSecurityHub",
        Properties: {
          PolicyName: "assume-spoke-role-for-findings",
          Roles: Object.values(FINDINGS_FUNCTIONS).map((role) => ({ Ref: role })),
          PolicyDocument: {
            Version: "2012-10-17",
            Statement: [assumeSpokeRole],
          },
        },
      },
      // The confused-deputy check reads the organization's accounts (delegated administration or a delegation
      // policy on the organization). Organizations actions have no resource-level scoping for these two.
      HubReadOrganizationPolicy: {
        Type: "AWS::IAM::Policy",
        Properties: {
          PolicyName: "read-organization",
          // ResolveTargets' confused-deputy checks (in AdmitEvent too), and the sweep's list of accounts (ListParents:
          // its OU allow-list).
          Roles: [...Object.values(RESOLVING_FUNCTIONS), "SweepRole"].map((role) => ({ Ref: role })),
          PolicyDocument: {
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "ListOrganizationAccounts",
                Effect: "Allow",
                Action: ["organizations:ListAccounts", "organizations:ListParents"],
                Resource: "*",
              },
            ],
          },
        },
      },
    },
    Outputs: {
      HubEventBusArn: {
        Description: "The hub bus: the HubEventBusArn parameter of infra/spoke/spoke-account.yml and spoke-region.yml.",
        Value: { "Fn::GetAtt": ["HubEventBus", "Arn"] },
      },
    },
  };
};
