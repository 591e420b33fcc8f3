import { EC2Client } from "@aws-sdk/client-ec2";
import type { SpokeAccess, SpokeTarget } from "../spoke-credentials.js";
import { clientsForTarget } from "../spoke-credentials.js";
import { clientConfig } from "./client-config.js";

/** Created once per Lambda container; its own module, so only the functions that use it bundle it. */
export const ec2 = new EC2Client(clientConfig);

/** The client for a batch's account and region: `ec2` in single-account mode, a spoke session's in organization mode. */
export function ec2ForTarget(access: SpokeAccess | undefined): (target: SpokeTarget | undefined) => Promise<EC2Client> {
  return clientsForTarget(ec2, access, (config) => new EC2Client({ ...clientConfig, ...config }));
}
