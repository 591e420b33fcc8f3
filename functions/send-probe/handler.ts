import { dynamoBatchLedger } from "../../shared/aws/batch-ledger.js";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { ssmForTarget } from "../../shared/aws/clients/ssm.js";
import { dynamoProbeSends, type ProbeSends } from "../../shared/aws/probe-sends.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import type { BatchLedger } from "../../shared/domain/batch-slices.js";
import { loadLedgerTableName, loadOrganizationConfig, loadProbeDocumentPrefix } from "../../shared/runtime/config.js";
import { batchStepInAccount, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { sendProbeBatch } from "../../shared/steps/send-probe.js";

/**
 * Sends the probe to the batch's online instances, in their account and region. The send markers are in the hub's
 * event ledger, in organization mode too: they guard this step, not the member account.
 */
export function createHandler(
  sends: ProbeSends,
  documentPrefix: string,
  now: () => Date = () => new Date(),
  access?: SpokeAccess,
  ledger?: BatchLedger,
) {
  const ssmFor = ssmForTarget(access);
  return batchStepInAccount(
    "SendProbe",
    ssmFor,
    (batch, ssm) => sendProbeBatch(batch, { ssm, sends, logger, now, documentPrefix }),
    now,
    ledger,
  );
}

export const handler = onColdStart(() =>
  createHandler(
    dynamoProbeSends(dynamodb, loadLedgerTableName(process.env), () => new Date()),
    loadProbeDocumentPrefix(process.env),
    undefined,
    spokeAccessFor(loadOrganizationConfig(process.env)),
    dynamoBatchLedger(dynamodb, loadLedgerTableName(process.env)),
  ),
);
