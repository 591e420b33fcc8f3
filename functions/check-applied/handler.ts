import { dynamoBatchLedger } from "../../shared/aws/batch-ledger.js";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import type { BatchLedger } from "../../shared/domain/batch-slices.js";
import { loadLedgerTableName, loadOrganizationConfig } from "../../shared/runtime/config.js";
import { batchStepInAccount, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { checkAppliedBatch } from "../../shared/steps/check-applied.js";

/** One poll of MetadataOptions.State for the batch, in its account and region. */
export function createHandler(now: () => Date = () => new Date(), access?: SpokeAccess, ledger?: BatchLedger) {
  const ec2For = ec2ForTarget(access);
  return batchStepInAccount(
    "CheckApplied",
    ec2For,
    (batch, ec2) => checkAppliedBatch(batch, { ec2, logger, now }),
    now,
    ledger,
  );
}

export const handler = onColdStart(() =>
  createHandler(
    undefined,
    spokeAccessFor(loadOrganizationConfig(process.env)),
    dynamoBatchLedger(dynamodb, loadLedgerTableName(process.env)),
  ),
);
