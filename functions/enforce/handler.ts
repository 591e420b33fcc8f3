import * as z from "zod";
import { dynamoBatchLedger } from "../../shared/aws/batch-ledger.js";
import { cloudwatchForTarget } from "../../shared/aws/clients/cloudwatch.js";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { dynamoEnforceIntents, type EnforceIntents } from "../../shared/aws/enforce-intents.js";
import { imageSupportLookup } from "../../shared/aws/image-support.js";
import { perAccountRegion, type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { routeAfter } from "../../shared/domain/batch.js";
import { type BatchLedger, leaveSlice, openBatch } from "../../shared/domain/batch-slices.js";
import { batchInputSchema } from "../../shared/domain/model.js";
import { loadLedgerTableName, loadOrganizationConfig } from "../../shared/runtime/config.js";
import { inBatchAccount, lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { enforceBatch, FIRST_ATTEMPT } from "../../shared/steps/enforce.js";

/**
 * The state machine hands Enforce its batch with `$$.State.RetryCount`, so a retry after a crash can tell a change
 * an earlier attempt made from one it found. A bare batch (an execution still running on the definition from
 * before this field) is a first attempt.
 */
const attemptInputSchema = z.object({ batch: batchInputSchema, retryCount: z.number().int().min(0) });

function parseEnforceInput(input: unknown): z.infer<typeof attemptInputSchema> {
  const wrapped = typeof input === "object" && input !== null && "batch" in input;
  return wrapped
    ? parseStepInput(attemptInputSchema, input, "Enforce")
    : { batch: parseStepInput(batchInputSchema, input, "Enforce"), ...FIRST_ATTEMPT };
}

/**
 * Sets HttpTokens=required where needed (or says why not), in the batch's account and region. The AMI lookup is
 * cached per container and per account and region (AMIs are regional, and private ones per account). The intents
 * live in the hub's event ledger, read and written with the function's own role, also in organization mode.
 */
export function createHandler(
  intents: EnforceIntents,
  now: () => Date = () => new Date(),
  access?: SpokeAccess,
  ledger?: BatchLedger,
) {
  const ec2For = ec2ForTarget(access);
  const cloudwatchFor = cloudwatchForTarget(access);
  const imageSupportFor = perAccountRegion(imageSupportLookup);
  return lambdaHandler(async (input: unknown) => {
    const { batch: given, retryCount } = parseEnforceInput(input);
    // A new batch's first slice starts here with a pointer to its work list (shared/domain/batch-slices.ts).
    const batch = await openBatch(given, ledger);
    logger.appendKeys({ eventId: batch.eventId, instanceIds: batch.instances.map((i) => i.instanceId), retryCount });
    const enforced = await inBatchAccount(
      batch,
      async (target) => ({
        ec2: await ec2For(target),
        cloudwatch: await cloudwatchFor(target),
        imageSupport: imageSupportFor(target),
      }),
      (clients) => enforceBatch(batch, { ...clients, intents, logger, now }, { retryCount }),
      now,
    );
    return leaveSlice(routeAfter("enforce", enforced, now()), ledger);
  });
}

export const handler = onColdStart(() =>
  createHandler(
    dynamoEnforceIntents(dynamodb, loadLedgerTableName(process.env)),
    undefined,
    spokeAccessFor(loadOrganizationConfig(process.env)),
    dynamoBatchLedger(dynamodb, loadLedgerTableName(process.env)),
  ),
);
