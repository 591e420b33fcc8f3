import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { SpokeAccess, SpokeTarget } from "../spoke-credentials.js";
import { clientsForTarget } from "../spoke-credentials.js";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const cloudwatch = new CloudWatchClient(clientConfig);

/** The client for a batch's account and region: `cloudwatch` in single-account mode, a spoke session's in organization mode. */
export function cloudwatchForTarget(
  access: SpokeAccess | undefined,
): (target: SpokeTarget | undefined) => Promise<CloudWatchClient> {
  return clientsForTarget(cloudwatch, access, (config) => new CloudWatchClient({ ...clientConfig, ...config }));
}
