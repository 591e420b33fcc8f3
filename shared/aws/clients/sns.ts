import { SNSClient } from "@aws-sdk/client-sns";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const sns = new SNSClient(clientConfig);
