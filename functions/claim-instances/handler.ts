import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { ec2 } from "../../shared/aws/clients/ec2.js";
import { dynamoInstanceClaims, type InstanceClaims } from "../../shared/aws/instance-claims.js";
import { loadLedgerTableName } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import {
  claimInstances,
  claimInstancesInputSchema,
  readAttribution,
  readAttributionInputSchema,
} from "../../shared/steps/claim-instances.js";

/**
 * The per-instance ledger: claims each instance occurrence for the execution (ClaimInstances), and, on the
 * state-change path, reads whether the CloudTrail record has left its attribution yet (ReadAttribution).
 */
export function createHandler(claims: InstanceClaims, now: () => Date = () => new Date()) {
  return lambdaHandler(async (input: unknown) => {
    if (typeof input === "object" && input !== null && "keys" in input) {
      const parsed = parseStepInput(readAttributionInputSchema, input, "ReadAttribution");
      return readAttribution(parsed, { claims, now });
    }
    const parsed = parseStepInput(claimInstancesInputSchema, input, "ClaimInstances");
    logger.appendKeys({ eventId: parsed.state.event.eventId });
    return claimInstances(parsed, { ec2, claims, logger });
  });
}

export const handler = onColdStart(() =>
  createHandler(dynamoInstanceClaims(dynamodb, loadLedgerTableName(process.env))),
);
