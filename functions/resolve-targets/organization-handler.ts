import { organizations } from "../../shared/aws/clients/organizations.js";
import { directoryFor } from "../../shared/aws/organization-directory.js";
import { loadResolveTargetsConfig, type ResolveTargetsConfig } from "../../shared/runtime/config.js";
import { onColdStart } from "../../shared/runtime/lambda-handler.js";
import { createHandler } from "./handler.js";

/**
 * resolve-targets as the hub deploys it (serverless.yml picks it when organizationId is set): the same step, with
 * the organization read from Organizations unless its accounts are configured. A separate entry because the
 * Organizations client brings the AWS SDK, about 300 KiB that the single-account bundle would load and never call.
 */
export function createOrganizationHandler(config: ResolveTargetsConfig, now?: () => Date) {
  return createHandler(config, now, config.organization ? directoryFor(config.organization, organizations) : undefined);
}

export const handler = onColdStart(() => createOrganizationHandler(loadResolveTargetsConfig(process.env)));
