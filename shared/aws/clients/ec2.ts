import { EC2Client } from "@aws-sdk/client-ec2";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const ec2 = new EC2Client(clientConfig);
