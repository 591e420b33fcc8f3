import * as z from "zod";
import { accountPostureSchema } from "./account-posture.js";

/**
 * A ModifyInstanceMetadataDefaults call that weakened the region's IMDS defaults, as its CloudTrail record shows it.
 * CloudTrail records the request (the new values), not the defaults before the call: the old value is never in it.
 */
export const accountDefaultChangeSchema = z.object({
  /** As requested: "optional", "no-preference" (then launches fall back to the AMI, else optional), "required". */
  httpTokens: z.string().optional(),
  /** As requested: "enabled", "disabled", "no-preference". */
  httpTokensEnforced: z.string().optional(),
  /** What the call weakened, in words, e.g. "HttpTokens set to optional". */
  weakened: z.array(z.string()).min(1),
});
export type AccountDefaultChange = z.infer<typeof accountDefaultChangeSchema>;

/** What the guard found and did after the call. */
export const accountDefaultOutcomeSchema = z.object({
  /** The defaults as the guard read them after the call (GetInstanceMetadataDefaults). */
  observed: accountPostureSchema,
  observedAt: z.string(),
  /** True when the guard set HttpTokens back to required. */
  restored: z.boolean(),
  /** Why it did, or why it did not, in one sentence. */
  action: z.string(),
});
export type AccountDefaultOutcome = z.infer<typeof accountDefaultOutcomeSchema>;

/**
 * Which parts of a requested change leave new launches able to use IMDSv1: HttpTokens other than required, or
 * HttpTokensEnforced switched off. A field the call did not set is unchanged, and so not weakened by it.
 */
export function weakenedDefaults(httpTokens: string | undefined, httpTokensEnforced: string | undefined): string[] {
  const weakened: string[] = [];
  if (httpTokens !== undefined && httpTokens !== "required") weakened.push(`HttpTokens set to ${httpTokens}`);
  if (httpTokensEnforced !== undefined && httpTokensEnforced !== "enabled") {
    weakened.push(`HttpTokensEnforced set to ${httpTokensEnforced}`);
  }
  return weakened;
}
