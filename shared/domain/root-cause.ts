import type { AccountPosture } from "./account-posture.js";
import { foundAllowingImdsV1 } from "./enforcement.js";
import type { InstanceResult, Origin } from "./model.js";
import { describeOwner, platformFixes } from "./platform-owner.js";

/** "launch template lt-0abc v7, Auto Scaling group web, AMI ami-0def (ImdsSupport unset)": plain text, unescaped. */
export function describeOrigin(origin: Origin): string {
  const parts: string[] = origin.owner ? [describeOwner(origin.owner)] : [];
  if (origin.launchTemplateId) {
    parts.push(
      `launch template ${origin.launchTemplateId}${origin.launchTemplateVersion ? ` v${origin.launchTemplateVersion}` : ""}`,
    );
  }
  if (origin.autoScalingGroup) parts.push(`Auto Scaling group ${origin.autoScalingGroup}`);
  if (origin.imageId) parts.push(`AMI ${origin.imageId} (ImdsSupport ${origin.imageImdsSupport ?? "unknown"})`);
  return parts.join(", ");
}

/** Did this instance allow IMDSv1 when the guard found it? Only those point at a source that needs fixing. */
export function allowedImdsV1(result: InstanceResult): boolean {
  return foundAllowingImdsV1(result.enforcement) || result.verdict === "held";
}

const LAUNCH_TEMPLATE_ID = /^lt-[0-9a-f]{8,17}$/;
/** AWS region names; anything else (a hand-started execution can say anything) is not put into a command. */
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/** The region for a command line: the real one, or a placeholder for the reader to fill in. */
export function commandRegion(region: string): string {
  return REGION.test(region) ? region : "<region>";
}

/**
 * A user-chosen name (an Auto Scaling group) for prose that Slack renders as markdown: only characters that cannot
 * start formatting, a link, a mention or a code span are kept.
 */
function quotedName(name: string): string {
  return `"${name.replace(/[^A-Za-z0-9 _.:/@+=,-]/g, "?").slice(0, 255)}"`;
}
const IMAGE_ID = /^ami-[0-9a-f]{8,17}$/;
const VERSION = /^\d{1,10}$/;

/**
 * How to fix where the IMDSv1 came from, so the next launch needs no remediation: the launch template, the AMI, the
 * account default. Only ids that match AWS's own formats are put into commands; anything else is described, not
 * spliced.
 */
export function sourceFixes(
  results: readonly InstanceResult[],
  eventRegion: string,
  posture?: AccountPosture,
): string[] {
  const region = commandRegion(eventRegion);
  const sources = results.filter(allowedImdsV1).map((r) => r.origin ?? {});
  if (sources.length === 0) return [];
  // The platforms that own their launch templates first: fixing their template where the guard would otherwise
  // point (or repointing their Auto Scaling group) is undone by the platform's next update.
  const platform = platformFixes(sources, region);
  const fixes: string[] = [...platform.fixes];
  const templates = new Map<string, { version?: string; hopLimit?: number; groups: Set<string> }>();
  for (const o of sources) {
    if (!o.launchTemplateId || !LAUNCH_TEMPLATE_ID.test(o.launchTemplateId)) continue;
    if (platform.coveredTemplates.has(o.launchTemplateId)) continue;
    const entry = templates.get(o.launchTemplateId) ?? {
      ...(o.launchTemplateVersion && VERSION.test(o.launchTemplateVersion) ? { version: o.launchTemplateVersion } : {}),
      ...(o.hopLimit !== undefined && Number.isInteger(o.hopLimit) ? { hopLimit: o.hopLimit } : {}),
      groups: new Set<string>(),
    };
    if (o.autoScalingGroup) entry.groups.add(o.autoScalingGroup);
    templates.set(o.launchTemplateId, entry);
  }
  for (const [id, { version, hopLimit, groups }] of templates) {
    // Values in --launch-template-data replace the source version's MetadataOptions as a whole, so the fix restates
    // what the instances run with today: the endpoint on, and their hop limit (containers need 2 under IMDSv2).
    const metadataOptions = JSON.stringify({
      HttpTokens: "required",
      HttpEndpoint: "enabled",
      ...(hopLimit !== undefined ? { HttpPutResponseHopLimit: hopLimit } : {}),
    });
    const groupText = groups.size
      ? `, then point Auto Scaling group(s) ${[...groups].map(quotedName).join(", ")} at the new version${mixedInstancesPolicyHint(id, groups, region)}`
      : "";
    fixes.push(
      `Launch template ${id}${version ? ` (version ${version})` : ""} launches with IMDSv1 allowed: \`aws ec2 create-launch-template-version --region ${region} --launch-template-id ${id}${version ? ` --source-version ${version}` : ""} --launch-template-data '{"MetadataOptions":${metadataOptions}}'\`${groupText}; check the template's other MetadataOptions (IPv6 endpoint, instance tags) carry over.`,
    );
  }
  const images = new Set(
    sources
      .filter(
        (o) =>
          o.imageId && IMAGE_ID.test(o.imageId) && o.imageImdsSupport !== "v2.0" && o.imageImdsSupport !== "unknown",
      )
      .map((o) => o.imageId as string),
  );
  for (const image of images) {
    fixes.push(
      `AMI ${image} does not declare ImdsSupport v2.0: \`aws ec2 modify-image-attribute --region ${region} --image-id ${image} --imds-support v2.0\` (one-way), or register your next image with \`--imds-support v2.0\`, so every launch from it requires IMDSv2.`,
    );
  }
  if (posture && posture.httpTokens !== "required") {
    fixes.push(
      posture.managedBy === "declarative-policy"
        ? `The account default in ${region} is HttpTokens=${posture.httpTokens} and is managed by a declarative policy: change it in AWS Organizations.`
        : `The account default in ${region} is HttpTokens=${posture.httpTokens}: \`aws ec2 modify-instance-metadata-defaults --region ${region} --http-tokens required\` (or deploy the guard with enforceAccountDefault=true) makes new launches IMDSv2-only with no exposure window.`,
    );
  }
  if (fixes.length === 0) {
    fixes.push(
      "These instances were launched without MetadataOptions.HttpTokens=required: set it where they are launched (the RunInstances call, its launch template, or the AMI's ImdsSupport).",
    );
  }
  return fixes;
}

/** Auto Scaling group names the guard will put into a command: no quotes, spaces or shell characters. */
const COMMAND_SAFE_GROUP = /^[A-Za-z0-9._:/@+=-]{1,255}$/;

/**
 * A group with a mixed instances policy launches from the template in that policy, not from its own
 * LaunchTemplate field: the command repoints the policy's template, leaving the properties it does not name as they are.
 */
function mixedInstancesPolicyHint(templateId: string, groups: ReadonlySet<string>, region: string): string {
  const [group] = [...groups].filter((g) => COMMAND_SAFE_GROUP.test(g));
  if (!group) return "";
  const policy = JSON.stringify({
    LaunchTemplate: { LaunchTemplateSpecification: { LaunchTemplateId: templateId, Version: "<new version>" } },
  });
  return ` (a group with a mixed instances policy takes it in the policy: \`aws autoscaling update-auto-scaling-group --region ${region} --auto-scaling-group-name ${group} --mixed-instances-policy '${policy}'\`, then check its overrides are unchanged)`;
}

/** The account's IMDS defaults in one line. */
export function describePosture(posture: AccountPosture): string {
  return `account default HttpTokens=${posture.httpTokens}, HttpTokensEnforced ${posture.httpTokensEnforced ? "on" : "off"}, managed by ${posture.managedBy}${posture.changedByGuard ? " (set to required by the guard in this run)" : ""}`;
}
