import type { Logger } from "@aws-lambda-powertools/logger";
import type { EC2Client } from "@aws-sdk/client-ec2";
import * as z from "zod";
import { readAccountPosture, requireTokensByDefault } from "../aws/account-defaults.js";
import { type AccountDefaultOutcome, accountDefaultChangeSchema } from "../domain/account-default-change.js";
import { eventRefSchema } from "../domain/model.js";
import type { GuardAccountDefaultConfig } from "../runtime/config.js";

export const guardAccountDefaultInputSchema = z.object({
  event: eventRefSchema,
  change: accountDefaultChangeSchema,
});
export type GuardAccountDefaultInput = z.infer<typeof guardAccountDefaultInputSchema>;

export interface GuardAccountDefaultDeps {
  ec2: EC2Client;
  logger: Logger;
  config: GuardAccountDefaultConfig;
  now: () => Date;
}

/**
 * After someone weakened the region's IMDS defaults: read them as they are now (the call may have been undone
 * already), and with enforceAccountDefault in enforce mode set HttpTokens back to required, unless a declarative
 * policy owns the defaults. It reads before it writes, and setting `required` twice is the same as once, so a retry
 * after a crash is safe. HttpTokensEnforced is never switched on by the guard: it makes launches that do not require
 * IMDSv2 fail, which is for people to decide; the alert gives the command.
 */
export async function guardAccountDefault(
  input: GuardAccountDefaultInput,
  deps: GuardAccountDefaultDeps,
): Promise<AccountDefaultOutcome> {
  const observed = await readAccountPosture(deps.ec2);
  const observedAt = deps.now().toISOString();
  const base = { observed, observedAt };
  if (observed.httpTokens === "required") {
    return { ...base, restored: false, action: "The default already requires IMDSv2 again: nothing to set back." };
  }
  if (!deps.config.enforceAccountDefault) {
    return {
      ...base,
      restored: false,
      action: "Not set back: the guard is deployed with enforceAccountDefault=false, so it only reports.",
    };
  }
  if (deps.config.mode === "audit") {
    return { ...base, restored: false, action: "Not set back: the guard runs in audit mode." };
  }
  if (observed.managedBy === "declarative-policy") {
    return {
      ...base,
      restored: false,
      action: "Not set back: a declarative policy in AWS Organizations manages this default; change it there.",
    };
  }
  const restored = await requireTokensByDefault(deps.ec2, observed);
  deps.logger.info("Set the account default back to HttpTokens=required", { eventId: input.event.eventId });
  return {
    observed: restored,
    observedAt,
    restored: true,
    action: `The guard set the default back to HttpTokens=required (it was ${observed.httpTokens}).`,
  };
}
