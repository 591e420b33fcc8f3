import { dynamoBatchLedger } from "../../shared/aws/batch-ledger.js";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { ssmForTarget } from "../../shared/aws/clients/ssm.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import type { BatchLedger } from "../../shared/domain/batch-slices.js";
import { loadLedgerTableName, loadOrganizationConfig } from "../../shared/runtime/config.js";
import { batchStepInAccount, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { checkProbeBatch } from "../../shared/steps/check-probe.js";

/** Reads the probe's results, in the batch's account and region, and turns them into verdicts. */
export function createHandler(now: () => Date = () => new Date(), access?: SpokeAccess, ledger?: BatchLedger) {
  const ssmFor = ssmForTarget(access);
  return batchStepInAccount(
    "CheckProbe",
    ssmFor,
    (batch, ssm) => checkProbeBatch(batch, { ssm, logger, now }),
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
