import * as z from "zod";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { sfn } from "../../shared/aws/clients/sfn.js";
import {
  attributionWaiterSchema,
  dynamoInstanceClaims,
  type InstanceClaims,
} from "../../shared/aws/instance-claims.js";
import { resumeTask } from "../../shared/aws/task-tokens.js";
import { loadLedgerTableName } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { type AttributionOutcome, awaitAttribution } from "../../shared/steps/claim-instances.js";

const awaitAttributionInputSchema = attributionWaiterSchema.extend({
  reportKey: z.string().min(1),
  expiresAt: z.coerce.number(),
});

/**
 * The state-change execution's AwaitAttribution step: the instances are claimed (by the intake, AdmitEvent) and
 * proven; the report waits for the CloudTrail record's actor. This leaves the task token beside the report's key, for
 * the record's intake to resume the report with, and resumes it at once when the record is already there.
 */
export function createHandler(
  claims: InstanceClaims,
  resume: (taskToken: string, outcome: AttributionOutcome) => Promise<boolean>,
  now: () => Date = () => new Date(),
) {
  return lambdaHandler(async (input: unknown) => {
    const { expiresAt, reportKey, ...waiter } = parseStepInput(awaitAttributionInputSchema, input, "AwaitAttribution");
    const outcome = await awaitAttribution(reportKey, waiter, { claims, now, resume, expiresAt });
    logger.info("Waiting for the CloudTrail record", outcome);
    return outcome;
  });
}

export const handler = onColdStart(() =>
  createHandler(dynamoInstanceClaims(dynamodb, loadLedgerTableName(process.env)), (token, outcome) =>
    resumeTask(sfn, token, outcome),
  ),
);
