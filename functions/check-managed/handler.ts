import { dynamoBatchLedger } from "../../shared/aws/batch-ledger.js";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { ssmForTarget } from "../../shared/aws/clients/ssm.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import type { BatchLedger } from "../../shared/domain/batch-slices.js";
import { loadLedgerTableName, loadOrganizationConfig } from "../../shared/runtime/config.js";
import { batchStepInAccount, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { checkManagedBatch } from "../../shared/steps/check-managed.js";

/** One poll of SSM registration for the batch, in its account and region; picks each instance's probe. */
export function createHandler(now: () => Date = () => new Date(), access?: SpokeAccess, ledger?: BatchLedger) {
  const ec2For = ec2ForTarget(access);
  const ssmFor = ssmForTarget(access);
  return batchStepInAccount(
    "CheckManaged",
    async (target) => ({ ec2: await ec2For(target), ssm: await ssmFor(target) }),
    (batch, clients) => checkManagedBatch(batch, { ...clients, logger, now }),
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
