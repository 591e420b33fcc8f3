import type { Context } from "aws-lambda";
import { createOrganizationHandler as createAdmitEvent } from "../../functions/admit-event/organization-handler.js";
import { createHandler as createAssessAccount } from "../../functions/assess-account/handler.js";
import { createHandler as createCheckApplied } from "../../functions/check-applied/handler.js";
import { createHandler as createCheckManaged } from "../../functions/check-managed/handler.js";
import { createHandler as createCheckProbe } from "../../functions/check-probe/handler.js";
import { createHandler as createCheckRejected } from "../../functions/check-rejected/handler.js";
import { createHandler as createClaimInstances } from "../../functions/claim-instances/handler.js";
import { createHandler as createEnforce } from "../../functions/enforce/handler.js";
import { createHandler as createFinalizeBatch } from "../../functions/finalize-batch/handler.js";
import { createHandler as createGuardAccountDefault } from "../../functions/guard-account-default/handler.js";
import { createHandler as createNotify } from "../../functions/notify/handler.js";
import { createOrganizationHandler as createResolveTargets } from "../../functions/resolve-targets/organization-handler.js";
import { createHandler as createSendProbe } from "../../functions/send-probe/handler.js";
import { dynamoBatchLedger } from "../../shared/aws/batch-ledger.js";
import { dynamodb, sfn } from "../../shared/aws/clients/index.js";
import { securityhubForTarget } from "../../shared/aws/clients/securityhub.js";
import { dynamoEnforceIntents } from "../../shared/aws/enforce-intents.js";
import { dynamoEvidenceStore } from "../../shared/aws/evidence-store.js";
import { dynamoInstanceClaims } from "../../shared/aws/instance-claims.js";
import { dynamoProbeSends } from "../../shared/aws/probe-sends.js";
import { dynamoResultStore } from "../../shared/aws/result-store.js";
import { spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { resumeTask } from "../../shared/aws/task-tokens.js";
import type { GuardAccountDefaultConfig, NotifyConfig, ResolveTargetsConfig } from "../../shared/runtime/config.js";
import { LOCAL_STACK_PROBE_DOCUMENT_PREFIX, SPOKE_PROBE_DOCUMENT_PREFIX } from "../sim/ssm-documents.js";

export type LambdaHandler = (event: unknown, context: Context) => Promise<unknown>;

/**
 * The deployed functions, keyed by the ASL placeholder that names each, built from the same handler modules. In
 * organization mode (`resolveTargets.organization` set) each function has its own spoke session cache, as each
 * deployed function's containers do.
 */
export function localFunctions(config: {
  resolveTargets: ResolveTargetsConfig;
  notify: NotifyConfig;
  ledgerTableName: string;
  stateMachineArn: string;
  guardAccountDefault: GuardAccountDefaultConfig;
  /** The evidence records' retention (issue 21). */
  evidenceRetentionDays: number;
}): Record<string, LambdaHandler> {
  const store = dynamoResultStore(dynamodb, config.ledgerTableName);
  const batches = dynamoBatchLedger(dynamodb, config.ledgerTableName);
  const access = () => spokeAccessFor(config.resolveTargets.organization);
  return {
    ResolveTargetsFunctionArn: createResolveTargets(config.resolveTargets),
    EnforceFunctionArn: createEnforce(
      dynamoEnforceIntents(dynamodb, config.ledgerTableName),
      undefined,
      access(),
      batches,
    ),
    CheckAppliedFunctionArn: createCheckApplied(undefined, access(), batches),
    CheckManagedFunctionArn: createCheckManaged(undefined, access(), batches),
    SendProbeFunctionArn: createSendProbe(
      dynamoProbeSends(dynamodb, config.ledgerTableName, () => new Date()),
      // The spokes' documents in organization mode, the stack's own otherwise (as the deployed environment says).
      config.resolveTargets.organization ? SPOKE_PROBE_DOCUMENT_PREFIX : LOCAL_STACK_PROBE_DOCUMENT_PREFIX,
      undefined,
      access(),
      batches,
    ),
    CheckProbeFunctionArn: createCheckProbe(undefined, access(), batches),
    FinalizeBatchFunctionArn: createFinalizeBatch(store, undefined, batches),
    NotifyFunctionArn: (() => {
      const securityHubFor = securityhubForTarget(access());
      return createNotify(config.notify, store, undefined, batches, {
        evidence: dynamoEvidenceStore(dynamodb, config.ledgerTableName, config.evidenceRetentionDays),
        securityHubFor: (target) => securityHubFor(target),
      });
    })(),
    AssessAccountFunctionArn: createAssessAccount(undefined, access()),
    CheckRejectedFunctionArn: createCheckRejected(config.notify, undefined, access()),
    GuardAccountDefaultFunctionArn: createGuardAccountDefault(config.guardAccountDefault, undefined, access()),
    ClaimInstancesFunctionArn: createClaimInstances(
      dynamoInstanceClaims(dynamodb, config.ledgerTableName),
      (token, outcome) => resumeTask(sfn, token, outcome),
    ),
    // Not a task of the state machine: EventBridge's target, which starts its executions.
    AdmitEventFunctionArn: createAdmitEvent({
      ...config.resolveTargets,
      ledgerTableName: config.ledgerTableName,
      stateMachineArn: config.stateMachineArn,
    }),
  };
}
