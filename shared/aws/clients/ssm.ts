import { SSMClient } from "@aws-sdk/client-ssm";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const ssm = new SSMClient(clientConfig);
