import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const cloudwatch = new CloudWatchClient(clientConfig);
