import { SFNClient } from "@aws-sdk/client-sfn";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const sfn = new SFNClient(clientConfig);
