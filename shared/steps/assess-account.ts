import type { EC2Client } from "@aws-sdk/client-ec2";
import { readAccountPosture } from "../aws/account-defaults.js";
import type { AccountPosture } from "../domain/account-posture.js";

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
