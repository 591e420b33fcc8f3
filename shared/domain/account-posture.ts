import * as z from "zod";

/** The account's IMDS defaults in one region: what a launch gets when it does not say. */
export const accountPostureSchema = z.object({
  /** "required", "optional", or "no-preference" (EC2 then falls back to the AMI's ImdsSupport, else optional). */
  httpTokens: z.string(),
  /** When enabled, no instance can launch, or be switched back, with IMDSv1: rollback is impossible. */
  httpTokensEnforced: z.boolean(),
  /** "account", or "declarative-policy" when an AWS Organizations policy owns the defaults. */
  managedBy: z.string(),
  /** Set when the guard changed the default during this run (option enforceAccountDefault). */
  changedByGuard: z.boolean().optional(),
});
export type AccountPosture = z.infer<typeof accountPostureSchema>;
