import * as z from "zod";
import { ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { perAccountRegion, type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { loadOrganizationConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { parseStepInput } from "../../shared/runtime/step-input.js";
import { cachedPosture } from "../../shared/steps/assess-account.js";

/** The ASL passes the event's account, region and id; a caller that passes nothing means single-account mode. */
const assessAccountInputSchema = z.object({
  account: z.string().optional(),
  region: z.string().optional(),
  eventId: z.string().optional(),
});

/**
 * Reads the account's IMDS defaults for the report's root cause; read-only, cached for five minutes per container
 * and per account and region.
 */
export function createHandler(now: () => Date = () => new Date(), access?: SpokeAccess) {
  const ec2For = ec2ForTarget(access);
  const postureFor = perAccountRegion(() => cachedPosture());
  return lambdaHandler(async (input: unknown) => {
    const parsed = parseStepInput(assessAccountInputSchema, input ?? {}, "AssessAccount");
    const target =
      parsed.account && parsed.region
        ? { account: parsed.account, region: parsed.region, eventId: parsed.eventId ?? "assess-account" }
        : undefined;
    const result = await postureFor(target)(await ec2For(target), now());
    logger.info("Account posture", { ...result, account: parsed.account, region: parsed.region });
    return result;
  });
}

export const handler = onColdStart(() => createHandler(undefined, spokeAccessFor(loadOrganizationConfig(process.env))));
