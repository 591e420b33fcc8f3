import { SSMClient } from "@aws-sdk/client-ssm";
import type { SpokeAccess, SpokeTarget } from "../spoke-credentials.js";
import { clientsForTarget } from "../spoke-credentials.js";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const ssm = new SSMClient(clientConfig);

/** The client for a batch's account and region: `ssm` in single-account mode, a spoke session's in organization mode. */
export function ssmForTarget(access: SpokeAccess | undefined): (target: SpokeTarget | undefined) => Promise<SSMClient> {
  return clientsForTarget(ssm, access, (config) => new SSMClient({ ...clientConfig, ...config }));
}
