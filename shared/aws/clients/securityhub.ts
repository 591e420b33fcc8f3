import { SecurityHubClient } from "@aws-sdk/client-securityhub";
import type { SpokeAccess, SpokeTarget } from "../spoke-credentials.js";
import { clientsForTarget } from "../spoke-credentials.js";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const securityhub = new SecurityHubClient(clientConfig);

/**
 * The client for an account and region: `securityhub` in single-account mode, a spoke session's in organization
 * mode, because a finding under the `product/ACCOUNT/default` ARN must be imported by its own account.
 */
export function securityhubForTarget(
  access: SpokeAccess | undefined,
): (target: SpokeTarget | undefined) => Promise<SecurityHubClient> {
  return clientsForTarget(securityhub, access, (config) => new SecurityHubClient({ ...clientConfig, ...config }));
}
