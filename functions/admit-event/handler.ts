import { dynamoBatchLedger } from "../../shared/aws/batch-ledger.js";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { sfn } from "../../shared/aws/clients/sfn.js";
import { executionArnOf, startNamedExecution } from "../../shared/aws/executions.js";
import { dynamoInstanceClaims, type InstanceClaims } from "../../shared/aws/instance-claims.js";
import { configuredDirectory, type OrganizationDirectory } from "../../shared/aws/organization-directory.js";
import { perAccountRegion, type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { resumeTask } from "../../shared/aws/task-tokens.js";
import { type AdmitEventConfig, loadAdmitEventConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { admitEvent } from "../../shared/steps/admit-event.js";
import { cachedPosture } from "../../shared/steps/assess-account.js";
import { resolveDelivery } from "../../shared/steps/resolve-targets.js";

/**
 * The intake, EventBridge's target: every event in, at most one execution out (shared/steps/admit-event.ts). This
 * entry is the single-account stack's: its only organization directory is a configured account list, so it bundles
 * no Organizations client; the hub deploys organization-handler.ts.
 */
export function createHandler(
  config: AdmitEventConfig,
  claims: InstanceClaims = dynamoInstanceClaims(dynamodb, config.ledgerTableName),
  directory: OrganizationDirectory | undefined = config.organization?.accounts
    ? configuredDirectory(config.organization.accounts)
    : undefined,
  access: SpokeAccess | undefined = spokeAccessFor(config.organization),
  now: () => Date = () => new Date(),
) {
  const ec2For = ec2ForTarget(access);
  const postureFor = perAccountRegion(() => cachedPosture());
  const attribution = { claims, now, resume: (token: string, outcome: unknown) => resumeTask(sfn, token, outcome) };
  return lambdaHandler(async (event: unknown) =>
    admitEvent(event, {
      resolve: (raw) => resolveDelivery(raw, config, now(), directory),
      claims,
      ec2For,
      posture: (target, ec2) => postureFor(target)(ec2, now()),
      start: (name, input) => startNamedExecution(sfn, config.stateMachineArn, name, input),
      executionArnOf: (name) => executionArnOf(config.stateMachineArn, name),
      attribution,
      ledger: dynamoBatchLedger(dynamodb, config.ledgerTableName),
      organization: config.organization !== undefined,
      logger,
      // As the state machine retries its tasks: 2 s doubling, capped, so five tries fit the function's timeout.
      retry: { firstDelayMs: 2_000, maxDelayMs: 20_000 },
      batchSize: config.batchSize,
    }),
  );
}

export const handler = onColdStart(() => createHandler(loadAdmitEventConfig(process.env)));
