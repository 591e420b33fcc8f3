import {
  type EC2Client,
  GetInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataDefaultsCommand,
} from "@aws-sdk/client-ec2";
import { z } from "zod";
import { classifyAwsError } from "./aws-errors.js";

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

/** Reads the account's IMDS defaults for the client's region. */
export async function readAccountPosture(ec2: EC2Client): Promise<AccountPosture> {
  try {
    const out = await ec2.send(new GetInstanceMetadataDefaultsCommand({}));
    const level = out.AccountLevel ?? {};
    return {
      httpTokens: level.HttpTokens ?? "no-preference",
      httpTokensEnforced: level.HttpTokensEnforced === "enabled",
      managedBy: level.ManagedBy ?? "account",
    };
  } catch (error) {
    throw classifyAwsError(error, "GetInstanceMetadataDefaults");
  }
}

/**
 * Sets the account default to HttpTokens=required, so new launches start on IMDSv2 with no exposure window; the
 * guard stays the proof and the net. Leaves a default managed by a declarative policy alone (EC2 would refuse).
 */
export async function requireTokensByDefault(ec2: EC2Client, posture: AccountPosture): Promise<AccountPosture> {
  if (posture.httpTokens === "required" || posture.managedBy === "declarative-policy") return posture;
  try {
    await ec2.send(new ModifyInstanceMetadataDefaultsCommand({ HttpTokens: "required" }));
  } catch (error) {
    throw classifyAwsError(error, "ModifyInstanceMetadataDefaults");
  }
  return { ...posture, httpTokens: "required", changedByGuard: true };
}

/**
 * Reads the posture at most once per `ttlMs` per container: a storm of events should not spend EC2's shared read
 * bucket asking the same question a thousand times. Each handler instance owns its cache.
 */
export function cachedPosture(ttlMs = 5 * 60_000): (ec2: EC2Client, now: Date) => Promise<AccountPosture> {
  let cached: { at: number; posture: AccountPosture } | undefined;
  return async (ec2, now) => {
    if (cached && now.getTime() - cached.at < ttlMs) return cached.posture;
    const posture = await readAccountPosture(ec2);
    cached = { at: now.getTime(), posture };
    return posture;
  };
}
