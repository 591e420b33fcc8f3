import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { ec2, ec2ForTarget } from "../../shared/aws/clients/ec2.js";
import { organizations } from "../../shared/aws/clients/organizations.js";
import { securityhubForTarget } from "../../shared/aws/clients/securityhub.js";
import { sfn } from "../../shared/aws/clients/sfn.js";
import { sns } from "../../shared/aws/clients/sns.js";
import { dynamoEvidenceStore } from "../../shared/aws/evidence-store.js";
import { directoryFor, type OrganizationDirectory } from "../../shared/aws/organization-directory.js";
import { type SpokeAccess, spokeAccessFor } from "../../shared/aws/spoke-credentials.js";
import { loadSweepConfig, type SweepConfig } from "../../shared/runtime/config.js";
import { lambdaHandler, onColdStart } from "../../shared/runtime/lambda-handler.js";
import { logger } from "../../shared/runtime/logger.js";
import { sweep, sweepOrganization } from "../../shared/steps/sweep.js";

/**
 * Scheduled (daily by default): finds instances that still allow IMDSv1 and runs them through the state machine.
 * In organization mode (the hub) it covers every account and configured region, and publishes the posture report.
 */
export function createHandler(
  config: SweepConfig,
  now: () => Date = () => new Date(),
  access: SpokeAccess | undefined = spokeAccessFor(config.organization),
  directory: OrganizationDirectory | undefined = config.organization
    ? directoryFor(config.organization, organizations)
    : undefined,
) {
  const ec2For = ec2ForTarget(access);
  // The evidence records, so every doubt is proven again (issue 21); an older stack without a ledger has none.
  const securityHubFor = securityhubForTarget(access);
  const evidence = config.evidence
    ? {
        evidence: dynamoEvidenceStore(dynamodb, config.evidence.tableName, config.evidence.retentionDays),
        ...(config.securityHub
          ? { securityHubFor: (target: Parameters<typeof securityHubFor>[0]) => securityHubFor(target) }
          : {}),
      }
    : {};
  return lambdaHandler(async (scheduledEvent: unknown) => {
    const time = (scheduledEvent as { time?: unknown } | null)?.time;
    const scheduled = typeof time === "string" ? { time } : {};
    const organization = config.organization;
    if (organization && directory) {
      return sweepOrganization(
        {
          sfn,
          sns,
          logger,
          now,
          config: { ...config, organization },
          directory,
          ec2For: (target) => ec2For(target),
          ...evidence,
        },
        scheduled,
      );
    }
    return sweep({ ec2, sfn, logger, now, config, ...evidence }, scheduled);
  });
}

export const handler = onColdStart(() => createHandler(loadSweepConfig(process.env)));
