import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { clientConfig } from "./client-config.js";

/**
 * Created once per Lambda container; its own module, so only the functions that use it bundle it. Organizations is
 * a global service served from us-east-1 (in the aws partition), whatever region the hub runs in.
 */
export const organizations = new OrganizationsClient({ ...clientConfig, region: "us-east-1" });
