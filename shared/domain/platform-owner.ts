import type { Origin, PlatformOwner } from "./model.js";

/**
 * The platform that launched an instance, from the tags it puts on every instance it launches. The most specific
 * owner wins: an EKS managed node group also carries its Auto Scaling group's tags, and Karpenter's nodes EC2 Fleet's.
 */
export function platformOwnerOf(tag: (key: string) => string | undefined): PlatformOwner | undefined {
  const cluster = tag("eks:cluster-name");
  const nodegroup = tag("eks:nodegroup-name");
  if (cluster && nodegroup) return { kind: "eks-nodegroup", cluster, nodegroup };
  const nodePool = tag("karpenter.sh/nodepool");
  const nodeClass = tag("karpenter.k8s.aws/ec2nodeclass");
  if (nodePool || nodeClass) {
    return { kind: "karpenter", ...(nodePool ? { nodePool } : {}), ...(nodeClass ? { nodeClass } : {}) };
  }
  const environment = tag("elasticbeanstalk:environment-name");
  if (environment) return { kind: "elastic-beanstalk", environment };
  const fleetId = tag("aws:ec2:fleet-id");
  if (fleetId) return { kind: "ec2-fleet", fleetId };
  const requestId = tag("aws:ec2spot:fleet-request-id");
  if (requestId) return { kind: "spot-fleet", requestId };
  return undefined;
}

// AWS's and Kubernetes' own formats: a tag value that does not match is described, never put into a command.
const EKS_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
const KUBERNETES_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const BEANSTALK_ENVIRONMENT = /^[A-Za-z0-9][A-Za-z0-9-]{2,38}[A-Za-z0-9]$/;
const EC2_FLEET_ID = /^fleet-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SPOT_FLEET_ID = /^sfr-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LAUNCH_TEMPLATE_ID = /^lt-[0-9a-f]{8,17}$/;
const VERSION = /^\d{1,10}$/;
const UNSAFE = "(a tag value the guard will not put into a command)";

/** What a platform fix needs from the instances of one owner. */
interface Owned {
  owner: PlatformOwner;
  launchTemplateId?: string;
  launchTemplateVersion?: string;
  hopLimit?: number;
}

/**
 * Fixes where the platform keeps its launch template, one per owner: EKS (a new launch template version, rolled out
 * with update-nodegroup-version), Karpenter (the EC2NodeClass), Elastic Beanstalk (the DisableIMDSv1 option), EC2
 * Fleet and Spot Fleet (their launch template configs). Returns the launch templates it covered, so the generic
 * launch template fix does not also tell the reader to repoint an Auto Scaling group the platform owns.
 */
export function platformFixes(
  sources: readonly Origin[],
  region: string,
): { fixes: string[]; coveredTemplates: Set<string> } {
  const byOwner = new Map<string, Owned>();
  for (const o of sources) {
    if (!o.owner) continue;
    const key = JSON.stringify(o.owner);
    if (byOwner.has(key)) continue;
    byOwner.set(key, {
      owner: o.owner,
      ...(o.launchTemplateId && LAUNCH_TEMPLATE_ID.test(o.launchTemplateId)
        ? { launchTemplateId: o.launchTemplateId }
        : {}),
      ...(o.launchTemplateVersion && VERSION.test(o.launchTemplateVersion)
        ? { launchTemplateVersion: o.launchTemplateVersion }
        : {}),
      ...(o.hopLimit !== undefined && Number.isInteger(o.hopLimit) ? { hopLimit: o.hopLimit } : {}),
    });
  }
  const fixes: string[] = [];
  const coveredTemplates = new Set<string>();
  for (const owned of byOwner.values()) {
    const fix = platformFix(owned, region);
    fixes.push(fix);
    // Karpenter and Beanstalk regenerate their templates: a fix to the template itself would be overwritten.
    if (owned.launchTemplateId) coveredTemplates.add(owned.launchTemplateId);
  }
  return { fixes, coveredTemplates };
}

function newTemplateVersion(owned: Owned, region: string, hopLimit?: number): string {
  const id = owned.launchTemplateId ?? "<launch-template-id>";
  const metadataOptions = JSON.stringify({
    HttpTokens: "required",
    HttpEndpoint: "enabled",
    ...(hopLimit !== undefined ? { HttpPutResponseHopLimit: hopLimit } : {}),
  });
  return `aws ec2 create-launch-template-version --region ${region} --launch-template-id ${id}${owned.launchTemplateVersion ? ` --source-version ${owned.launchTemplateVersion}` : ""} --launch-template-data '{"MetadataOptions":${metadataOptions}}'`;
}

function platformFix(owned: Owned, region: string): string {
  const { owner } = owned;
  switch (owner.kind) {
    case "eks-nodegroup": {
      if (!EKS_NAME.test(owner.cluster) || !EKS_NAME.test(owner.nodegroup)) {
        return `An EKS managed node group ${UNSAFE} launches with IMDSv1 allowed: give it a launch template version with MetadataOptions HttpTokens=required and roll it out with aws eks update-nodegroup-version.`;
      }
      // Pods reach IMDS through one more hop: EKS nodes need a hop limit of 2 under IMDSv2 unless pods must not.
      const hop = owned.hopLimit ?? 2;
      const rollout = `aws eks update-nodegroup-version --region ${region} --cluster-name ${owner.cluster} --nodegroup-name ${owner.nodegroup} --launch-template id=${owned.launchTemplateId ?? "<launch-template-id>"},version=<new version>`;
      return owned.launchTemplateId
        ? `EKS managed node group ${owner.nodegroup} of cluster ${owner.cluster} launches with IMDSv1 allowed. EKS owns its Auto Scaling group and undoes changes made there: create a launch template version \`${newTemplateVersion(owned, region, hop)}\`, then roll it out \`${rollout}\` (nodes are replaced as EKS updates the group).`
        : `EKS managed node group ${owner.nodegroup} of cluster ${owner.cluster} launches with IMDSv1 allowed and no launch template of yours: create a launch template with MetadataOptions HttpTokens=required (hop limit 2 for pods), and a node group that uses it; EKS cannot switch an existing node group to a launch template.`;
    }
    case "karpenter": {
      const nodeClass = owner.nodeClass;
      if (!nodeClass || !KUBERNETES_NAME.test(nodeClass)) {
        return `Karpenter nodes ${nodeClass ? UNSAFE : "(no karpenter.k8s.aws/ec2nodeclass tag)"} launch with IMDSv1 allowed: set spec.metadataOptions.httpTokens: required in their EC2NodeClass; Karpenter owns its launch templates and regenerates them.`;
      }
      const pool = owner.nodePool && KUBERNETES_NAME.test(owner.nodePool) ? ` (NodePool ${owner.nodePool})` : "";
      return `Karpenter EC2NodeClass ${nodeClass}${pool} launches nodes with IMDSv1 allowed. Karpenter owns its launch templates and regenerates them, so set it in the EC2NodeClass: \`kubectl patch ec2nodeclass ${nodeClass} --type merge -p '{"spec":{"metadataOptions":{"httpTokens":"required"}}}'\` (Karpenter then replaces the drifted nodes).`;
    }
    case "elastic-beanstalk": {
      if (!BEANSTALK_ENVIRONMENT.test(owner.environment)) {
        return `An Elastic Beanstalk environment ${UNSAFE} launches with IMDSv1 allowed: set the option aws:autoscaling:launchconfiguration DisableIMDSv1=true on it.`;
      }
      return `Elastic Beanstalk environment ${owner.environment} launches with IMDSv1 allowed. Beanstalk owns its launch template, so set its option: \`aws elasticbeanstalk update-environment --region ${region} --environment-name ${owner.environment} --option-settings Namespace=aws:autoscaling:launchconfiguration,OptionName=DisableIMDSv1,Value=true\` (Beanstalk replaces the instances).`;
    }
    case "ec2-fleet": {
      if (!EC2_FLEET_ID.test(owner.fleetId)) {
        return `An EC2 Fleet ${UNSAFE} launches with IMDSv1 allowed: point its launch template config at a version with HttpTokens=required.`;
      }
      return `EC2 Fleet ${owner.fleetId} launches with IMDSv1 allowed: create a launch template version \`${newTemplateVersion(owned, region, owned.hopLimit)}\`, then point the fleet at it \`aws ec2 modify-fleet --region ${region} --fleet-id ${owner.fleetId} --launch-template-configs '[{"LaunchTemplateSpecification":{"LaunchTemplateId":"${owned.launchTemplateId ?? "<launch-template-id>"}","Version":"<new version>"}}]'\` (restate the fleet's overrides, which this replaces; only a maintain fleet can be modified).`;
    }
    case "spot-fleet": {
      if (!SPOT_FLEET_ID.test(owner.requestId)) {
        return `A Spot Fleet ${UNSAFE} launches with IMDSv1 allowed: point its launch template config at a version with HttpTokens=required.`;
      }
      return `Spot Fleet ${owner.requestId} launches with IMDSv1 allowed: create a launch template version \`${newTemplateVersion(owned, region, owned.hopLimit)}\`, then point the fleet at it \`aws ec2 modify-spot-fleet-request --region ${region} --spot-fleet-request-id ${owner.requestId} --launch-template-configs '[{"LaunchTemplateSpecification":{"LaunchTemplateId":"${owned.launchTemplateId ?? "<launch-template-id>"}","Version":"<new version>"}}]'\` (restate its overrides, which this replaces).`;
    }
  }
}

/** "EKS node group web of cluster prod": plain text, unescaped, for the origin line. */
export function describeOwner(owner: PlatformOwner): string {
  switch (owner.kind) {
    case "eks-nodegroup":
      return `EKS node group ${owner.nodegroup} of cluster ${owner.cluster}`;
    case "karpenter":
      return `Karpenter${owner.nodePool ? ` NodePool ${owner.nodePool}` : ""}${owner.nodeClass ? ` EC2NodeClass ${owner.nodeClass}` : ""}`;
    case "elastic-beanstalk":
      return `Elastic Beanstalk environment ${owner.environment}`;
    case "ec2-fleet":
      return `EC2 Fleet ${owner.fleetId}`;
    case "spot-fleet":
      return `Spot Fleet ${owner.requestId}`;
  }
}
