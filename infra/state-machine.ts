import type { RoundStep } from "../shared/domain/batch.js";
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
  // It reads the defaults before it sets them, and setting HttpTokens=required twice is the same as once.
  GuardAccountDefault: true,
  // AwaitAttribution: it overwrites its waiter items and may resume the task; a second resume is refused, harmlessly.
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

/** The ledger's own transient errors, for the state machine's direct DynamoDB calls. */
const DYNAMODB_RETRY: Retrier[] = [
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
];

/** A CloudFormation DefinitionSubstitutions placeholder, filled at deploy time (and by the local runner). */
function placeholder(name: string): string {
  return `\${${name}}`;
}

/** The ARN of one of the guard's functions, as a placeholder. */
function functionArn(fn: StepFunction): string {
  return placeholder(`${fn}FunctionArn`);
}

/**
 * Where an event goes once it is resolved: the account-default alert, the batches (reading the account's posture
 * first unless the intake or a sweep brought it), or straight to the report. Shared by the two Choices that follow
 * resolving (Admitted for the intake's executions, RouteResolved for raw events), so each path pays for one Choice.
 */
const ROUTE_TO_WORK = [
  { Variable: "$.accountDefaultChange", IsPresent: true, Next: "GuardAccountDefault" },
  {
    And: [
      { Variable: "$.targetCount", NumericGreaterThan: 0 },
      { Variable: "$.accountPosture", IsPresent: true },
    ],
    Next: "ForEachBatch",
  },
  { Variable: "$.targetCount", NumericGreaterThan: 0, Next: "AssessAccount" },
];

/**
 * The stages the child's Route sends a batch to, in the order its Choice tests them. Each gets two branches, one
 * through its own Wait (when the steps chose a pause before it) and one straight to its task, so a stage added to
 * the round is one entry here rather than two branches and a Wait written by hand.
 */
const ROUND_STAGES: readonly { next: RoundStep; state: StepFunction; waitComment?: string }[] = [
  {
    next: "enforce",
    state: "Enforce",
    waitComment:
      "An instance not yet visible after RunInstances, or a throttled modify: let EC2 catch up or its bucket refill.",
  },
  { next: "check-applied", state: "CheckApplied" },
  { next: "check-managed", state: "CheckManaged" },
  { next: "send-probe", state: "SendProbe" },
  { next: "check-probe", state: "CheckProbe" },
];

/** Route's branches for the round's stages: the one that waits first, then the one that goes at once. */
function roundStageChoices() {
  return ROUND_STAGES.flatMap(({ next, state }) => [
    {
      And: [
        { Variable: "$.next", StringEquals: next },
        { Variable: "$.waitSeconds", NumericGreaterThan: 0 },
      ],
      Next: `WaitBefore${state}`,
    },
    { Variable: "$.next", StringEquals: next, Next: state },
  ]);
}

/** The Wait before each stage's task, for the pause the steps chose (`waitSeconds`). */
function roundStageWaits() {
  return Object.fromEntries(
    ROUND_STAGES.map(({ state, waitComment }) => [
      `WaitBefore${state}`,
      {
        Type: "Wait",
        ...(waitComment ? { Comment: waitComment } : {}),
        SecondsPath: "$.waitSeconds",
        Next: state,
      },
    ]),
  );
}

/** What the first task of a slice is given of its batch: the place (shared/domain/batch-slices.ts), no instances. */
const BATCH_PLACE = {
  "eventId.$": "$.eventId",
  "account.$": "$.account",
  "region.$": "$.region",
  "ledgerKey.$": "$.ledgerKey",
  "batchIndex.$": "$.item.batchIndex",
  "trigger.$": "$.trigger",
  "settings.$": "$.settings",
  "startedAt.$": "$.startedAt",
};

/** The Map over the batches, with its Express child workflow: one slice of one batch. */
function forEachBatch(itemsPath: string) {
  return {
    Type: "Map",
    Comment:
      "Distributed, with Express children: each batch runs in slices of at most a few minutes (Express stops at 5), billed by duration instead of by transition. Items are pointers (`{batchIndex, instances}`): the instances are in the ledger (work#<batchIndex>), so no state grows with the work (Step Functions fails a state over 256 KiB, uncatchably). A slice ends with its batch done (the child returns only counts; the results are in the ledger) or suspended (its progress is in the ledger, the child returns a pointer); the Map then runs again over what it returned, and a finished batch's child just hands its counts back. A failed batch does not fail the others (ToleratedFailurePercentage 99): its entry is then the failed child's execution record, which the next slice keeps as `failedChild` and Notify reports as `error` for the batch's instances. Only when every child of a slice failed does the Map fail (caught, to Notify): its result would then hold no `suspended` for the ResultSelector to read, and a path that selects nothing fails the execution uncatchably (States.Runtime).",
    ItemsPath: itemsPath,
    ItemSelector: {
      "eventId.$": "$.event.eventId",
      "account.$": "$.event.account",
      "region.$": "$.event.region",
      "ledgerKey.$": "$.dedupe.key",
      "trigger.$": "$.trigger",
      "settings.$": "$.settings",
      "startedAt.$": "$.startedAt",
      "item.$": "$$.Map.Item.Value",
    },
    MaxConcurrency: 20,
    ItemProcessor: {
      ProcessorConfig: {
        Mode: "DISTRIBUTED",
        ExecutionType: "EXPRESS",
      },
      StartAt: "WhichSlice",
      States: {
        WhichSlice: {
          Type: "Choice",
          Comment:
            "The first slice gets a pointer to the batch's work list; a later one gets what the batch's last slice returned: a pointer to its stored progress, its counts, or (its child failed) the failed child's execution record. Each item carries its own batchIndex: AWS does not document the order of a Distributed Map's results.",
          Choices: [
            { Variable: "$.item.counts", IsPresent: true, Next: "AlreadyFinished" },
            { Variable: "$.item.Error", IsPresent: true, Next: "FailedEarlier" },
            { Variable: "$.item.failedChild", IsPresent: true, Next: "AlreadyFailed" },
            { Variable: "$.item.suspended", IsPresent: true, Next: "ResumeBatch" },
            { Variable: "$.item.inline", IsPresent: true, Next: "InlineBatch" },
          ],
          Default: "NewBatch",
        },
        AlreadyFinished: {
          Type: "Pass",
          Comment: "Finished in an earlier slice: hand its counts back unchanged.",
          OutputPath: "$.item",
          End: true,
        },
        FailedEarlier: {
          Type: "Pass",
          Comment:
            "The batch's child failed in the slice before (AWS put its execution record in the Map's result): keep the record as `failedChild`, never hand it to a batch step, and say `suspended: false`, so the Map's ResultSelector always finds the field it reads even when every batch has failed. Notify reports the batch's instances as `error` with the record's Error and Cause.",
          InputPath: "$.item",
          Parameters: {
            "failedChild.$": "$",
            suspended: false,
          },
          End: true,
        },
        AlreadyFailed: {
          Type: "Pass",
          Comment: "Failed in an earlier slice and already kept as `failedChild`: hand it back unchanged.",
          OutputPath: "$.item",
          End: true,
        },
        NewBatch: {
          Type: "Pass",
          Comment: "A pointer to the batch's work list: Enforce reads the instances from the ledger.",
          Parameters: {
            ...BATCH_PLACE,
            stored: "work",
          },
          Next: "Enforce",
        },
        InlineBatch: {
          Type: "Pass",
          Comment:
            "The ledger refused the work list, so the pointer carries the batch's instances: run it from them. Its progress cannot be stored either, so it ends in this slice, its verdicts inline (FinalizeWithoutLedger).",
          Parameters: {
            ...BATCH_PLACE,
            "instances.$": "$.item.inline",
          },
          Next: "Enforce",
        },
        ResumeBatch: {
          Type: "Pass",
          Comment:
            "A pointer to the progress the previous slice stored, with where it was going next: the first task of this slice reads the batch from the ledger (no intrinsic re-parses its text). Without it the task fails, FinalizeBatch concludes the batch from its work list, and Notify reports it.",
          Parameters: {
            ...BATCH_PLACE,
            stored: "slice",
            "next.$": "$.item.next",
            "waitSeconds.$": "$.item.waitSeconds",
          },
          Next: "Route",
        },
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
          Next: "Route",
        },
        Route: {
          Type: "Choice",
          Comment:
            "The one Choice of each round: every step says where the batch goes next (routeAfter, shared/domain/batch.ts), at once or after a wait the steps chose from what is pending (a probe result is seconds away, an SSM registration a minute). Every stage is bounded by a deadline the steps enforce, so the loop ends.",
          Choices: [
            { Variable: "$.next", StringEquals: "finalize", Next: "FinalizeBatch" },
            { Variable: "$.next", StringEquals: "suspend", Next: "Suspended" },
            ...roundStageChoices(),
          ],
          Default: "FinalizeBatch",
        },
        ...roundStageWaits(),
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
          Next: "Route",
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
          Next: "Route",
        },
        SendProbe: {
          Type: "Task",
          Comment:
            "One SendCommand per platform per 50 instances. Not retried on Lambda.Unknown: a crash after the send would run the probe twice; such a batch ends `error` instead. Throttled sends stay in `send-probe`. The round ends here: the invocation cannot be read before it exists.",
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
          Next: "Route",
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
          Next: "Route",
        },
        Suspended: {
          Type: "Pass",
          Comment:
            "The slice's time is up (routeAfter): the step that said so stored the batch's progress in the ledger (slice#<batchIndex>). All the parent keeps of it: where it is, and where it goes next.",
          Parameters: {
            "batchIndex.$": "$.batchIndex",
            suspended: true,
            "next.$": "$.resume.next",
            "waitSeconds.$": "$.resume.waitSeconds",
          },
          End: true,
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
    ResultSelector: {
      "batches.$": "$",
      // Every child says whether its batch goes on: FinalizeBatch's counts carry `suspended: false`.
      "more.$": "States.ArrayContains($[*].suspended, true)",
    },
    ResultPath: "$.slice",
    Catch: [
      {
        ErrorEquals: ["States.ALL"],
        ResultPath: "$.mapFailure",
        Next: "Notify",
      },
    ],
    Next: "MoreSlices",
    // An integer (the ASL schema's type). Up to 100 batches a slice (a sweep execution has at most 20, a 5,000-instance
    // launch 100), one success keeps the Map under the threshold; every child failed is over it, and is caught.
    ToleratedFailurePercentage: 99,
  };
}

/** The definition, with CloudFormation's `${…}` placeholders (DefinitionSubstitutions) left in. */
export const DEFINITION = {
  Comment:
    "imdsv2-guard: enforce IMDSv2, wait until applied, prove it from inside each instance over SSM, report to SNS. This file is what the deploy, the local runner and the tests all execute.",
  StartAt: "Admitted",
  States: {
    Admitted: {
      Type: "Choice",
      Comment:
        "The intake (AdmitEvent, EventBridge's target) has resolved the event, claimed its instances and read the account's defaults, and starts the execution with the work (`admitted`): straight to it. Anything else (a sweep's request, an event started by hand) is a raw event and is resolved here.",
      Choices: [
        { Not: { Variable: "$.admitted", IsPresent: true }, Next: "ResolveTargets" },
        { Variable: "$.resolveFailure", IsPresent: true, Next: "Notify" },
        ...ROUTE_TO_WORK,
      ],
      Default: "Notify",
    },
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
      Next: "RouteResolved",
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
    RouteResolved: {
      Type: "Choice",
      Comment:
        "Failed calls and the guard's own calls need nothing; the rest goes to its work as in Admitted. A sweep names its executions, so a repeat of the same sweep starts nothing.",
      Choices: [
        { Variable: "$.notify", BooleanEquals: false, Next: "NothingToDo" },
        { Variable: "$.accountDefaultChange", IsPresent: true, Next: "GuardAccountDefault" },
        { Variable: "$.targetCount", NumericGreaterThan: 0, Next: "StoreWorkList" },
      ],
      Default: "Notify",
    },
    StoreWorkList: {
      Type: "Map",
      Comment:
        "ResolveTargets' work list goes to the ledger (work#<batchIndex>, as AdmitEvent writes it for the intake's executions), and the state keeps only the pointers: no later state holds the instances. Its values are instance ids and EC2's two HttpTokens values, which JsonToString renders exactly. If the ledger refuses it, the pointers keep their instances and the batches run from them.",
      ItemsPath: "$.batches",
      ItemSelector: {
        "ledgerKey.$": "$.dedupe.key",
        "expiresAt.$": "$.dedupe.expiresAt",
        "batch.$": "$$.Map.Item.Value",
      },
      MaxConcurrency: 10,
      ItemProcessor: {
        ProcessorConfig: { Mode: "INLINE" },
        StartAt: "StoreWorkItem",
        States: {
          StoreWorkItem: {
            Type: "Task",
            Resource: "arn:aws:states:::dynamodb:putItem",
            Parameters: {
              TableName: placeholder("EventLedgerTableName"),
              Item: {
                eventId: { "S.$": "$.ledgerKey" },
                item: { "S.$": "States.Format('work#{}', $.batch.batchIndex)" },
                instances: { "S.$": "States.JsonToString($.batch.inline)" },
                expiresAt: { "N.$": "$.expiresAt" },
              },
            },
            ResultPath: null,
            Retry: DYNAMODB_RETRY,
            Next: "StoredPointer",
          },
          StoredPointer: {
            Type: "Pass",
            Parameters: {
              "batchIndex.$": "$.batch.batchIndex",
              "instances.$": "$.batch.instances",
            },
            End: true,
          },
        },
      },
      ResultPath: "$.batches",
      Catch: [
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.workListFailure",
          Next: "RouteStored",
        },
      ],
      Next: "RouteStored",
    },
    RouteStored: {
      Type: "Choice",
      Comment: "As Admitted: the account's posture first, unless a sweep brought it.",
      Choices: ROUTE_TO_WORK,
      Default: "Notify",
    },
    NothingToDo: {
      Type: "Succeed",
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
    ForEachBatch: forEachBatch("$.batches"),
    MoreSlices: {
      Type: "Choice",
      Comment:
        "A batch still has work: run the Map again over what the slice returned (pointers, counts, failed-child records; the instances stay in the ledger, where Notify reads them). Every batch done: the report, or first the wait for the CloudTrail record's attribution.",
      Choices: [
        {
          Variable: "$.slice.more",
          BooleanEquals: true,
          Next: "NextSlice",
        },
        {
          Comment:
            "Started from EC2's state-change notification: the instances are enforced and proven; the report waits for the CloudTrail record's actor and launch template, until the attribution deadline.",
          And: [
            { Variable: "$.awaitAttribution.deadline", IsPresent: true },
            { Variable: "$.instanceClaims.claimed", IsPresent: true },
          ],
          Next: "AwaitAttribution",
        },
      ],
      Default: "Notify",
    },
    NextSlice: {
      Type: "Pass",
      InputPath: "$.slice.batches",
      ResultPath: "$.batches",
      Next: "ForEachBatch",
    },
    AwaitAttribution: {
      Type: "Task",
      Comment:
        "Started from EC2's state-change notification: the verdicts of the whole launch are in (the intake gathered its instances), and its one report waits for the CloudTrail record's actor and launch template. The function leaves this task's token under the report's ledger key (the state carries no claim keys, only their count) and returns; the record's intake resumes the task (SendTaskSuccess), or the function does at once if the record came first. Waiting costs no transition. At the timeout the report goes out without the actor.",
      Resource: "arn:aws:states:::lambda:invoke.waitForTaskToken",
      Parameters: {
        FunctionName: functionArn("ClaimInstances"),
        Payload: {
          "reportKey.$": "$.dedupe.key",
          "deadline.$": "$.awaitAttribution.deadline",
          "expiresAt.$": "$.dedupe.expiresAt",
          "taskToken.$": "$$.Task.Token",
        },
      },
      TimeoutSecondsPath: "$.awaitAttribution.seconds",
      ResultPath: "$.attribution",
      Retry: lambdaRetry("ClaimInstances", { guardErrorsMaxDelaySeconds: 30, lambdaAttempts: 4 }),
      Catch: [
        {
          ErrorEquals: ["States.Timeout"],
          Comment: "No record in time: the report says the actor is unknown.",
          ResultPath: "$.attributionWait",
          Next: "Notify",
        },
        {
          ErrorEquals: ["States.ALL"],
          ResultPath: "$.attributionFailure",
          Next: "Notify",
        },
      ],
      Next: "Notify",
    },
    Notify: {
      Type: "Task",
      Comment:
        "One SNS message per event, with the results the batches stored. First it books the watch after enforcing, a one-off EventBridge Scheduler schedule that runs CheckRejected after the window, so the execution ends here. Retried on a crash too: a rare duplicate message beats a lost one, and the schedule's name is the event's, so a retry books no second watch. If it still fails (e.g. the message is refused), a minimal message says so.",
      Resource: functionArn("Notify"),
      TimeoutSeconds: TASK_TIMEOUT_SECONDS,
      Retry: lambdaRetry("Notify", { guardErrorsMaxDelaySeconds: 60, lambdaAttempts: 4 }),
      ResultPath: "$.notified",
      End: true,
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
    Done: {
      Type: "Succeed",
    },
  },
};

/** The committed file's exact text: two-space JSON and a final newline. */
export function aslText(): string {
  return `${JSON.stringify(DEFINITION, null, 2)}\n`;
}
