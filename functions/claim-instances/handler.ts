import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { dynamoInstanceClaims, type InstanceClaims } from "../../shared/aws/instance-claims.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { loadLedgerTableName, loadOrganizationConfig } from "../../shared/runtime/config.js";
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
export function createHandler(claims: InstanceClaims, now: () => Date = () => new Date(), access?: SpokeAccess) {
  const ec2For = ec2ForTarget(access);
  return lambdaHandler(async (input: unknown) => {
    if (typeof input === "object" && input !== null && "keys" in input) {
      const parsed = parseStepInput(readAttributionInputSchema, input, "ReadAttribution");
      return readAttribution(parsed, { claims, now });
    }
    const parsed = parseStepInput(claimInstancesInputSchema, input, "ClaimInstances");
    logger.appendKeys({ eventId: parsed.state.event.eventId });
    // In organization mode the instances live in the event's account and region, read through its spoke role.
    const { account, region, eventId } = parsed.state.event;
    const ec2 = await ec2For(access ? { account, region, eventId } : undefined);
    return claimInstances(parsed, { ec2, claims, logger });
  });
}

export const handler = onColdStart(() =>
  createHandler(
    dynamoInstanceClaims(dynamodb, loadLedgerTableName(process.env)),
    undefined,
    spokeAccessFor(loadOrganizationConfig(process.env)),
  ),
);
