import { organizations } from "../../shared/aws/clients/organizations.js";
import { directoryFor } from "../../shared/aws/organization-directory.js";
import { type AdmitEventConfig, loadAdmitEventConfig } from "../../shared/runtime/config.js";
import { onColdStart } from "../../shared/runtime/lambda-handler.js";
import { createHandler } from "./handler.js";

/**
 * The intake as the hub deploys it (serverless.yml picks it when organizationId is set): the same step, with the
 * organization read from Organizations unless its accounts are configured.
 */
export function createOrganizationHandler(config: AdmitEventConfig, now?: () => Date) {
  // The ledger's claims and the spoke access are the single-account entry's defaults; only the directory differs.
  return createHandler(
    config,
    undefined,
    config.organization ? directoryFor(config.organization, organizations) : undefined,
    undefined,
    now,
  );
}

export const handler = onColdStart(() => createOrganizationHandler(loadAdmitEventConfig(process.env)));
