import { GUARD_ERROR_NAMES, LAMBDA_CRASH_ERROR_NAMES, LAMBDA_SERVICE_ERROR_NAMES } from "../shared/domain/errors.js";

/**
 * The state machine, written once. `npm run build:asl` writes it to infra/state-machine.asl.json, the file the deploy
 * uploads, the local runner executes and the tests read; test/asl.test.ts fails when the two differ. It is a builder
 * rather than hand-written JSON so that each retry policy has one definition instead of a copy in every task.
 */

/** The functions the state machine invokes, by the name of their `${…FunctionArn}` placeholder. */
export type StepFunction =
  | "ResolveTargets"
  | "AssessAccount"
  | "Enforce"
  | "CheckApplied"
  | "CheckManaged"
  | "SendProbe"
  | "CheckProbe"
  | "FinalizeBatch"
  | "Notify"
  | "CheckRejected"
  | "GuardAccountDefault"
  | "ClaimInstances";

/**
 * Whether a function may run again after it crashed part-way (Lambda.Unknown, Sandbox.Timedout), when it may already
 * have acted. The one place this is decided: the retry policy below reads it, and test/asl.test.ts checks it.
 * - Reads are safe to repeat. Enforce describes before it modifies, and stores its intent in the ledger before it
 *   calls, so a repeat that finds `required` knows the change was its own (enforce.ts; `$$.State.RetryCount` is the
 *   fallback when the intent could not be stored).
 * - FinalizeBatch overwrites the batch's own ledger item; Notify may send a report twice, which is better than none.
 * - SendProbe is not: a crash after SendCommand succeeded would send a second probe.
 */
export const CRASH_SAFE: Record<StepFunction, boolean> = {
  ResolveTargets: true,
  AssessAccount: true,
  Enforce: true,
  CheckApplied: true,
  CheckManaged: true,
  SendProbe: false,
  CheckProbe: true,
  FinalizeBatch: true,
  Notify: true,
  CheckRejected: true,
  // It reads the defaults before it sets them, and setting HttpTokens=required twice is the same as once.
  GuardAccountDefault: true,
  // Its claim is a conditional put that the same execution may repeat (executionId = :me); attributions overwrite.
  ClaimInstances: true,
};

/**
 * Every Lambda task's TimeoutSeconds. On purpose longer than any of the functions' own timeouts (serverless.yml:
 * 30 s, ResolveTargets and FinalizeBatch 10 s; test/template.test.ts checks the order), so the Lambda always ends
 * first: Step Functions then sees Sandbox.Timedout, a crash it retries only where CRASH_SAFE says so, and no retry
 * ever runs while the attempt it replaces is still calling AWS. Were the task's timeout shorter, States.Timeout
 * would fire while the function still runs, and a retried Enforce could race its own earlier attempt. This timeout
 * is the backstop for an invoke whose answer never comes back.
 */
export const TASK_TIMEOUT_SECONDS = 60;

/** Our own retryable errors (shared/domain/errors.ts): AWS throttled or failed before acting. */
export const GUARD_RETRYABLE_ERRORS = GUARD_ERROR_NAMES.filter((name) => name.startsWith("Retryable"));

interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds: number;
  BackoffRate: number;
  MaxAttempts: number;
  MaxDelaySeconds?: number;
  JitterStrategy: "FULL";
}

/**
 * The retry policy of every Lambda task: first our retryable errors (when the step raises them), then the Lambda
 * service's own errors, and the crash errors only where the function is crash-safe.
 */
export function lambdaRetry(
  fn: StepFunction,
  options: { guardErrorsMaxDelaySeconds?: number; lambdaAttempts: number },
): Retrier[] {
  const guard: Retrier[] =
    options.guardErrorsMaxDelaySeconds === undefined
      ? []
      : [
          {
            ErrorEquals: [...GUARD_RETRYABLE_ERRORS],
            IntervalSeconds: 2,
            BackoffRate: 2,
            MaxAttempts: 6,
            MaxDelaySeconds: options.guardErrorsMaxDelaySeconds,
            JitterStrategy: "FULL",
          },
        ];
  return [
    ...guard,
    {
      ErrorEquals: [...LAMBDA_SERVICE_ERROR_NAMES, ...(CRASH_SAFE[fn] ? LAMBDA_CRASH_ERROR_NAMES : [])],
      IntervalSeconds: 2,
      BackoffRate: 2,
      MaxAttempts: options.lambdaAttempts,
      JitterStrategy: "FULL",
    },
  ];
}

/** A CloudFormation DefinitionSubstitutions placeholder, filled at deploy time (and by the local runner). */
function placeholder(name: string): string {
  return `\${${name}}`;
}

/** The ARN of one of the guard's functions, as a placeholder. */
function functionArn(fn: StepFunction): string {
  return placeholder(`${fn}FunctionArn`);
}

/** The definition, with CloudFormation's `${…}` placeholders (DefinitionSubstitutions) left in. */
export const DEFINITION = {
  Comment:
    "imdsv2-guard: enforce IMDSv2, wait until applied, prove it from inside each instance over SSM, report to SNS. This file is what the deploy, the local runner and the tests all execute.",
  StartAt: "ResolveTargets",
  States: {
    ResolveTargets: {
      Type: "Task",
      Comment:
        "Pure: the event in, batches of at most 50 instances out. Never throws on bad input; failures here are infrastructure (config, Lambda).",
      Resource: functionArn("ResolveTargets"),
      TimeoutSeconds: TASK_TIMEOUT_SECONDS,
      Retry: lambdaRetry("ResolveTargets", { lambdaAttempts: 4 }),
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.failure",
          Next: "WrapResolveFailure",
        },
      ],
      Next: "ShouldNotify",
    },
    WrapResolveFailure: {
      Type: "Pass",
      Comment: "Even an event the guard could not read ends in a notification.",
      Parameters: {
        "resolveFailure.$": "$.failure",
        "rawEvent.$": "$$.Execution.Input",
      },
      Next: "Notify",
    },
    ShouldNotify: {
      Type: "Choice",
      Comment: "Failed calls and the guard's own calls need nothing (the rule filters them too).",
      Choices: [
        {
          Variable: "$.notify",
          BooleanEquals: false,
          Next: "NothingToDo",
        },
      ],
      Default: "ClaimEvent",
    },
    NothingToDo: {
      Type: "Succeed",
    },
    ClaimEvent: {
      Type: "Task",
      Comment:
        "EventBridge delivers at least once: the first execution to claim the event id does the work; a duplicate ends here with no modify call and no second notification.",
      Resource: "arn:aws:states:::dynamodb:putItem",
      Parameters: {
        TableName: placeholder("EventLedgerTableName"),
        Item: {
          eventId: {
            "S.$": "$.dedupe.key",
          },
          item: {
            S: "claim",
          },
          expiresAt: {
            "N.$": "$.dedupe.expiresAt",
          },
          executionId: {
            "S.$": "$$.Execution.Id",
          },
        },
        ConditionExpression: "attribute_not_exists(eventId)",
      },
      ResultPath: null,
      Retry: [
        {
          ErrorEquals: [
            "DynamoDB.ProvisionedThroughputExceededException",
            "DynamoDB.ThrottlingException",
            "DynamoDB.RequestLimitExceeded",
            "DynamoDB.InternalServerErrorException",
          ],
          IntervalSeconds: 1,
          BackoffRate: 2,
          MaxAttempts: 5,
          JitterStrategy: "FULL",
        },
      ],
      Catch: [
        {
          ErrorEquals: ["DynamoDB.ConditionalCheckFailedException"],
          ResultPath: null,
          Next: "Duplicate",
        },
        {
          ErrorEquals: ["States.ALL"],
          Comment: "Ledger unavailable: go on. A possible duplicate is better than a lost event.",
          ResultPath: "$.ledgerFailure",
          Next: "HasTargets",
        },
      ],
      Next: "NeedsInstanceClaims",
    },
    NeedsInstanceClaims: {
      Type: "Choice",
      Comment:
        "A launch or a start can be heard twice, from EC2's state-change notification and from its CloudTrail record: claim each instance occurrence once.",
      Choices: [
        {
          And: [
            { Variable: "$.targetCount", NumericGreaterThan: 0 },
            {
              Or: [
                { Variable: "$.trigger", StringEquals: "launch" },
                { Variable: "$.trigger", StringEquals: "start" },
                { Variable: "$.trigger", StringEquals: "state-change" },
              ],
            },
          ],
          Next: "ClaimInstances",
        },
      ],
      Default: "HasTargets",
    },
    ClaimInstances: {
      Type: "Task",
      Comment:
        "One conditional put per instance occurrence (inst#account#region#id#LaunchTime). Instances another execution claimed first leave this one; a CloudTrail record leaves its actor and launch template for that execution's report. If the ledger fails, go on: a possible duplicate verdict beats a lost one.",
      Resource: functionArn("ClaimInstances"),
      TimeoutSeconds: 60,
      Parameters: {
        "state.$": "$",
        "executionId.$": "$$.Execution.Id",
      },
      // No ResultPath: the result (the state with the instances this execution keeps) replaces the input.
      Retry: lambdaRetry("ClaimInstances", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.instanceClaimFailure",
          Next: "HasTargets",
        },
      ],
      Next: "ClaimedElsewhere",
    },
    ClaimedElsewhere: {
      Type: "Choice",
      Comment: "Every instance belongs to another execution, which reports it: nothing to do here.",
      Choices: [
        {
          Variable: "$.ignored",
          IsPresent: true,
          Next: "AlreadyClaimed",
        },
      ],
      Default: "HasTargets",
    },
    AlreadyClaimed: {
      Type: "Succeed",
      Comment: "Another execution holds the claim on every instance of this event.",
    },
    Duplicate: {
      Type: "Succeed",
      Comment: "Another execution already handled this event id.",
    },
    HasTargets: {
      Type: "Choice",
      Choices: [
        {
          Variable: "$.accountDefaultChange",
          IsPresent: true,
          Next: "GuardAccountDefault",
        },
        {
          Variable: "$.targetCount",
          NumericGreaterThan: 0,
          Next: "NeedsAccountPosture",
        },
      ],
      Default: "Notify",
    },
    GuardAccountDefault: {
      Type: "Task",
      Comment:
        "Someone weakened the region's IMDS defaults: read them now and, with enforceAccountDefault in enforce mode, set HttpTokens back to required. If it fails, the alert still goes out and says so.",
      Resource: functionArn("GuardAccountDefault"),
      TimeoutSeconds: 60,
      Parameters: {
        "event.$": "$.event",
        "change.$": "$.accountDefaultChange",
      },
      ResultPath: "$.accountDefaultOutcome",
      Retry: lambdaRetry("GuardAccountDefault", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.accountDefaultOutcome",
          Next: "AlertAccountDefault",
        },
      ],
      Next: "AlertAccountDefault",
    },
    AlertAccountDefault: {
      Type: "Task",
      Comment: "The alert: the actor, the new value, what the guard read afterwards and what it did.",
      Resource: functionArn("Notify"),
      TimeoutSeconds: 60,
      Parameters: {
        alert: "account-default",
        "event.$": "$.event",
        "change.$": "$.accountDefaultChange",
        "outcome.$": "$.accountDefaultOutcome",
      },
      ResultPath: "$.notified",
      Retry: lambdaRetry("Notify", { guardErrorsMaxDelaySeconds: 60, lambdaAttempts: 4 }),
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.notifyFailure",
          Next: "FallbackHasEvent",
        },
      ],
      Next: "Done",
    },
    NeedsAccountPosture: {
      Type: "Choice",
      Comment:
        "A sweep brings the posture it read; a launch or a regression reads it here, for the report's root cause.",
      Choices: [
        {
          Variable: "$.accountPosture",
          IsPresent: true,
          Next: "ForEachBatch",
        },
      ],
      Default: "AssessAccount",
    },
    AssessAccount: {
      Type: "Task",
      Comment:
        "Read-only: the account's IMDS defaults (GetInstanceMetadataDefaults) in the event's account and region, cached per container. Attribution is advice: if it fails, the flow goes on without it.",
      Resource: functionArn("AssessAccount"),
      TimeoutSeconds: TASK_TIMEOUT_SECONDS,
      Parameters: {
        "account.$": "$.event.account",
        "region.$": "$.event.region",
        "eventId.$": "$.event.eventId",
      },
      ResultPath: "$.accountPosture",
      Retry: lambdaRetry("AssessAccount", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.postureFailure",
          Next: "ForEachBatch",
        },
      ],
      Next: "ForEachBatch",
    },
    ForEachBatch: {
      Type: "Map",
      Comment:
        "Distributed: each batch is a child execution with its own history, so a 1,000-instance launch stays far from the 25,000-event limit. Each batch stores its results in the ledger and returns only counts, so the state stays small; a failed batch does not fail the others (ToleratedFailurePercentage 100), and Notify reports its instances as errors.",
      ItemsPath: "$.batches",
      ItemSelector: {
        "eventId.$": "$.event.eventId",
        "account.$": "$.event.account",
        "region.$": "$.event.region",
        "ledgerKey.$": "$.dedupe.key",
        "batchIndex.$": "$$.Map.Item.Index",
        "trigger.$": "$.trigger",
        "settings.$": "$.settings",
        "startedAt.$": "$.startedAt",
        "instances.$": "$$.Map.Item.Value",
      },
      MaxConcurrency: 20,
      ItemProcessor: {
        ProcessorConfig: {
          Mode: "DISTRIBUTED",
          ExecutionType: "STANDARD",
        },
        StartAt: "Enforce",
        States: {
          Enforce: {
            Type: "Task",
            Comment:
              "Describe, then set HttpTokens=required where needed. Idempotent (it describes before it modifies), so a crash (Lambda.Unknown) may be retried: it gets $$.State.RetryCount, so a retry reports a change its crashed attempt made as the guard's. Throttled modifies stay in the `enforce` stage for the next round.",
            Resource: functionArn("Enforce"),
            TimeoutSeconds: TASK_TIMEOUT_SECONDS,
            Parameters: {
              "batch.$": "$",
              "retryCount.$": "$$.State.RetryCount",
            },
            Retry: lambdaRetry("Enforce", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
            Catch: [
              {
                ErrorEquals: ["States.ALL"],
                ResultPath: "$.failure",
                Next: "FinalizeBatch",
              },
            ],
            Next: "NextRound",
          },
          RouteApplied: {
            Type: "Choice",
            Comment: "Each round advances every instance that can move: applied → managed → probe sent → probe read.",
            Choices: [
              {
                Variable: "$.counts.awaitApplied",
                NumericGreaterThan: 0,
                Next: "CheckApplied",
              },
            ],
            Default: "RouteManaged",
          },
          CheckApplied: {
            Type: "Task",
            Comment: "Read-only: one DescribeInstances for the batch.",
            Resource: functionArn("CheckApplied"),
            TimeoutSeconds: TASK_TIMEOUT_SECONDS,
            Retry: lambdaRetry("CheckApplied", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
            Catch: [
              {
                ErrorEquals: ["States.ALL"],
                ResultPath: "$.failure",
                Next: "FinalizeBatch",
              },
            ],
            Next: "RouteManaged",
          },
          RouteManaged: {
            Type: "Choice",
            Comment: "Instances already online go on to the probe without waiting for slower ones.",
            Choices: [
              {
                Variable: "$.counts.awaitManaged",
                NumericGreaterThan: 0,
                Next: "CheckManaged",
              },
            ],
            Default: "RouteSend",
          },
          CheckManaged: {
            Type: "Task",
            Comment: "Read-only: DescribeInstanceInformation picks the platform and its probe.",
            Resource: functionArn("CheckManaged"),
            TimeoutSeconds: TASK_TIMEOUT_SECONDS,
            Retry: lambdaRetry("CheckManaged", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
            Catch: [
              {
                ErrorEquals: ["States.ALL"],
                ResultPath: "$.failure",
                Next: "FinalizeBatch",
              },
            ],
            Next: "RouteSend",
          },
          RouteSend: {
            Type: "Choice",
            Comment: "Send the probe to every instance that just came online (or whose send was throttled).",
            Choices: [
              {
                Variable: "$.counts.sendProbe",
                NumericGreaterThan: 0,
                Next: "SendProbe",
              },
            ],
            Default: "RouteProbe",
          },
          SendProbe: {
            Type: "Task",
            Comment:
              "One SendCommand per platform per 50 instances. Not retried on Lambda.Unknown: a crash after the send would run the probe twice; such a batch ends `error` instead. Throttled sends stay in `send-probe`.",
            Resource: functionArn("SendProbe"),
            TimeoutSeconds: TASK_TIMEOUT_SECONDS,
            Retry: lambdaRetry("SendProbe", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
            Catch: [
              {
                ErrorEquals: ["States.ALL"],
                ResultPath: "$.failure",
                Next: "FinalizeBatch",
              },
            ],
            Next: "RouteProbe",
          },
          RouteProbe: {
            Type: "Choice",
            Comment: "Read the results of probes already sent.",
            Choices: [
              {
                Variable: "$.counts.awaitProbe",
                NumericGreaterThan: 0,
                Next: "CheckProbe",
              },
            ],
            Default: "NextRound",
          },
          CheckProbe: {
            Type: "Task",
            Comment: "Read-only: GetCommandInvocation, then the verdict from what the probe saw.",
            Resource: functionArn("CheckProbe"),
            TimeoutSeconds: TASK_TIMEOUT_SECONDS,
            Retry: lambdaRetry("CheckProbe", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
            Catch: [
              {
                ErrorEquals: ["States.ALL"],
                ResultPath: "$.failure",
                Next: "FinalizeBatch",
              },
            ],
            Next: "NextRound",
          },
          NextRound: {
            Type: "Choice",
            Comment:
              "Polling is a loop of task → Choice → Wait; every stage is bounded by a deadline the steps enforce, so the loop ends.",
            Choices: [
              {
                Variable: "$.counts.enforce",
                NumericGreaterThan: 0,
                Next: "WaitBeforeEnforce",
              },
              {
                Or: [
                  {
                    Variable: "$.counts.awaitApplied",
                    NumericGreaterThan: 0,
                  },
                  {
                    Variable: "$.counts.awaitManaged",
                    NumericGreaterThan: 0,
                  },
                  {
                    Variable: "$.counts.sendProbe",
                    NumericGreaterThan: 0,
                  },
                  {
                    Variable: "$.counts.awaitProbe",
                    NumericGreaterThan: 0,
                  },
                ],
                Next: "WaitForProgress",
              },
            ],
            Default: "FinalizeBatch",
          },
          WaitBeforeEnforce: {
            Type: "Wait",
            Comment:
              "An instance not yet visible after RunInstances, or a throttled modify: let EC2 catch up or its bucket refill.",
            SecondsPath: "$.pollSeconds",
            Next: "Enforce",
          },
          WaitForProgress: {
            Type: "Wait",
            Comment:
              "The steps choose the interval from what is pending: a probe result is seconds away, an SSM registration a minute.",
            SecondsPath: "$.pollSeconds",
            Next: "RouteApplied",
          },
          FinalizeBatch: {
            Type: "Task",
            Comment:
              "Every instance leaves with exactly one verdict (unfinished ones become `error` with the failed step's cause), stored in the event ledger. An overwrite of the same item, so every retry is safe.",
            Resource: functionArn("FinalizeBatch"),
            TimeoutSeconds: TASK_TIMEOUT_SECONDS,
            Retry: lambdaRetry("FinalizeBatch", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 6 }),
            End: true,
            Catch: [
              {
                ErrorEquals: ["States.ALL"],
                ResultPath: "$.storeFailure",
                Next: "FinalizeWithoutLedger",
              },
            ],
          },
          FinalizeWithoutLedger: {
            Type: "Task",
            Comment:
              "The ledger could not store the verdicts after retries: return them inline (compact), so Notify still reports them.",
            Resource: functionArn("FinalizeBatch"),
            TimeoutSeconds: TASK_TIMEOUT_SECONDS,
            Retry: lambdaRetry("FinalizeBatch", { lambdaAttempts: 6 }),
            End: true,
          },
        },
      },
      ResultPath: "$.batchSummaries",
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.mapFailure",
          Next: "Notify",
        },
      ],
      Next: "NeedsAttribution",
      ToleratedFailurePercentage: 100,
    },
    NeedsAttribution: {
      Type: "Choice",
      Comment:
        "Started from EC2's state-change notification: the instances are enforced and proven; the report waits for the CloudTrail record's actor and launch template, until the attribution deadline.",
      Choices: [
        {
          And: [
            { Variable: "$.awaitAttribution.deadline", IsPresent: true },
            { Variable: "$.instanceClaims.claimed", IsPresent: true },
          ],
          Next: "ReadAttribution",
        },
      ],
      Default: "Notify",
    },
    ReadAttribution: {
      Type: "Task",
      Comment: "Read-only: has the CloudTrail record left its attribution on the claim yet?",
      Resource: functionArn("ClaimInstances"),
      TimeoutSeconds: 60,
      Parameters: {
        "keys.$": "$.instanceClaims.claimed",
        "deadline.$": "$.awaitAttribution.deadline",
      },
      ResultPath: "$.attribution",
      Retry: lambdaRetry("ClaimInstances", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.attributionFailure",
          Next: "Notify",
        },
      ],
      Next: "AttributionArrived",
    },
    AttributionArrived: {
      Type: "Choice",
      Choices: [
        {
          Variable: "$.attribution.done",
          BooleanEquals: true,
          Next: "Notify",
        },
      ],
      Default: "WaitForAttribution",
    },
    WaitForAttribution: {
      Type: "Wait",
      SecondsPath: "$.attribution.pollSeconds",
      Next: "ReadAttribution",
    },
    Notify: {
      Type: "Task",
      Comment:
        "One SNS message per event, with the results the batches stored. Retried on a crash too: a rare duplicate message beats a lost one. If it still fails (e.g. the message is refused), a minimal message says so.",
      Resource: functionArn("Notify"),
      TimeoutSeconds: TASK_TIMEOUT_SECONDS,
      Retry: lambdaRetry("Notify", { guardErrorsMaxDelaySeconds: 60, lambdaAttempts: 4 }),
      ResultPath: "$.notified",
      Next: "ShouldWatch",
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.notifyFailure",
          Next: "FallbackHasEvent",
        },
      ],
    },
    FallbackHasEvent: {
      Type: "Choice",
      Comment:
        "Pass the fallback only what it needs: the resolved event, or (if ResolveTargets failed) the raw one; never the whole state.",
      Choices: [
        {
          Variable: "$.event",
          IsPresent: true,
          Next: "NotifyFallback",
        },
      ],
      Default: "NotifyFallbackRawEvent",
    },
    NotifyFallback: {
      Type: "Task",
      Comment:
        "Last resort: the report could not be published; say so in a minimal message. If this fails too, the execution fails and the executions-failed alarm fires.",
      Resource: functionArn("Notify"),
      TimeoutSeconds: TASK_TIMEOUT_SECONDS,
      Parameters: {
        "notifyFailure.$": "$.notifyFailure",
        "event.$": "$.event",
      },
      ResultPath: "$.notified",
      Retry: lambdaRetry("Notify", { guardErrorsMaxDelaySeconds: 60, lambdaAttempts: 4 }),
      Next: "Done",
    },
    NotifyFallbackRawEvent: {
      Type: "Task",
      Comment: "As NotifyFallback, for an event ResolveTargets could not read.",
      Resource: functionArn("Notify"),
      TimeoutSeconds: TASK_TIMEOUT_SECONDS,
      Parameters: {
        "notifyFailure.$": "$.notifyFailure",
        "rawEvent.$": "$.rawEvent",
      },
      ResultPath: "$.notified",
      Retry: lambdaRetry("Notify", { guardErrorsMaxDelaySeconds: 60, lambdaAttempts: 4 }),
      Next: "Done",
    },
    ShouldWatch: {
      Type: "Choice",
      Comment: "Only a report of instances this execution switched to IMDSv2 has something to watch.",
      Choices: [
        {
          And: [
            {
              Variable: "$.notified.watch.count",
              IsPresent: true,
            },
            {
              Variable: "$.settings.watchRejectedSeconds",
              IsPresent: true,
            },
          ],
          Next: "ShouldWatchWindow",
        },
      ],
      Default: "Done",
    },
    ShouldWatchWindow: {
      Type: "Choice",
      Choices: [
        {
          And: [
            {
              Variable: "$.notified.watch.count",
              NumericGreaterThan: 0,
            },
            {
              Variable: "$.settings.watchRejectedSeconds",
              NumericGreaterThan: 0,
            },
          ],
          Next: "WatchWindow",
        },
      ],
      Default: "Done",
    },
    WatchWindow: {
      Type: "Wait",
      Comment:
        "Let software on the enforced instances run into IMDSv2 (and EC2 publish MetadataNoTokenRejected) before looking.",
      SecondsPath: "$.settings.watchRejectedSeconds",
      Next: "CheckRejected",
    },
    CheckRejected: {
      Type: "Task",
      Comment: "Read-only: MetadataNoTokenRejected since the first modify, per enforced instance.",
      Resource: functionArn("CheckRejected"),
      TimeoutSeconds: TASK_TIMEOUT_SECONDS,
      Parameters: {
        "event.$": "$.event",
        "watch.$": "$.notified.watch",
      },
      ResultPath: "$.rejected",
      Retry: lambdaRetry("CheckRejected", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.watchFailure",
          Next: "WatchFailed",
        },
      ],
      Next: "AnyRejected",
    },
    WatchFailed: {
      Type: "Fail",
      Comment:
        "The verdicts went out, but breakage could not be checked: fail the execution so the ExecutionsFailed alarm says so.",
      Error: "WatchFailed",
      Cause: "MetadataNoTokenRejected could not be read after enforcing.",
    },
    AnyRejected: {
      Type: "Choice",
      Choices: [
        {
          Variable: "$.rejected.count",
          NumericGreaterThan: 0,
          Next: "AlertRejected",
        },
      ],
      Default: "Done",
    },
    AlertRejected: {
      Type: "Task",
      Comment: "Software keeps calling IMDSv1 and is refused: alert with the counts and the exact rollback command.",
      Resource: functionArn("Notify"),
      TimeoutSeconds: TASK_TIMEOUT_SECONDS,
      Parameters: {
        alert: "rejected-calls",
        "event.$": "$.event",
        "rejected.$": "$.rejected",
      },
      ResultPath: "$.alerted",
      Retry: lambdaRetry("Notify", { guardErrorsMaxDelaySeconds: 60, lambdaAttempts: 4 }),
      Next: "Done",
    },
    Done: {
      Type: "Succeed",
    },
  },
};

/** The committed file's exact text: two-space JSON and a final newline. */
export function aslText(): string {
  return `${JSON.stringify(DEFINITION, null, 2)}\n`;
}
