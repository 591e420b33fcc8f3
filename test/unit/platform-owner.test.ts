import { describe, expect, it } from "vitest";
import type { InstanceResult, Origin } from "../../shared/domain/model.js";
import { describeOwner, platformOwnerOf } from "../../shared/domain/platform-owner.js";
import { describeOrigin, sourceFixes } from "../../shared/domain/root-cause.js";

const REGION = "eu-west-1";
const LT = "lt-0a1b2c3d4e5f60718";
const tags = (t: Record<string, string>) => (key: string) => t[key];

function enforced(origin: Origin): InstanceResult {
  return {
    instanceId: "i-0a1b2c3d4e5f60001",
    verdict: "pass",
    reason: "pass",
    warnings: [],
    action: "set HttpTokens=required (was optional)",
    enforcement: { kind: "set-required", was: "optional" },
    origin,
  };
}

function codeSpans(text: string): string[] {
  return [...text.matchAll(/`([^`]*)`/g)].map((m) => m[1] ?? "");
}

describe("platformOwnerOf: who owns the launch template, from the instance's tags", () => {
  it.each([
    [
      { "eks:cluster-name": "prod", "eks:nodegroup-name": "ng-1", "aws:autoscaling:groupName": "eks-ng-1-abc" },
      "eks-nodegroup",
    ],
    [
      {
        "karpenter.sh/nodepool": "default",
        "karpenter.k8s.aws/ec2nodeclass": "default",
        "aws:ec2:fleet-id": "fleet-x",
      },
      "karpenter",
    ],
    [
      { "elasticbeanstalk:environment-name": "shop-prod", "aws:autoscaling:groupName": "awseb-e-abc" },
      "elastic-beanstalk",
    ],
    [{ "aws:ec2:fleet-id": "fleet-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d" }, "ec2-fleet"],
    [{ "aws:ec2spot:fleet-request-id": "sfr-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d" }, "spot-fleet"],
  ])("reads %j as %s (the most specific owner wins)", (t, kind) => {
    expect(platformOwnerOf(tags(t))?.kind).toBe(kind);
  });

  it("finds no owner for a plain Auto Scaling group", () => {
    expect(platformOwnerOf(tags({ "aws:autoscaling:groupName": "web" }))).toBeUndefined();
  });
});

describe("sourceFixes: at the platform's own source", () => {
  it("EKS: a new launch template version rolled out with update-nodegroup-version, never 'repoint the group'", () => {
    const fixes = sourceFixes(
      [
        enforced({
          owner: { kind: "eks-nodegroup", cluster: "prod", nodegroup: "ng-1" },
          launchTemplateId: LT,
          launchTemplateVersion: "3",
          autoScalingGroup: "eks-ng-1-abc",
          hopLimit: 2,
        }),
      ],
      REGION,
    );
    expect(fixes).toHaveLength(1);
    const [fix = ""] = fixes;
    expect(codeSpans(fix)).toEqual([
      `aws ec2 create-launch-template-version --region ${REGION} --launch-template-id ${LT} --source-version 3 --launch-template-data '{"MetadataOptions":{"HttpTokens":"required","HttpEndpoint":"enabled","HttpPutResponseHopLimit":2}}'`,
      `aws eks update-nodegroup-version --region ${REGION} --cluster-name prod --nodegroup-name ng-1 --launch-template id=${LT},version=<new version>`,
    ]);
    expect(fix).not.toContain("point Auto Scaling group");
  });

  it("Karpenter: metadataOptions.httpTokens required in the EC2NodeClass, not the template Karpenter regenerates", () => {
    const fixes = sourceFixes(
      [enforced({ owner: { kind: "karpenter", nodePool: "default", nodeClass: "general" }, launchTemplateId: LT })],
      REGION,
    );
    expect(fixes).toHaveLength(1);
    expect(codeSpans(fixes[0] ?? "")).toEqual([
      `kubectl patch ec2nodeclass general --type merge -p '{"spec":{"metadataOptions":{"httpTokens":"required"}}}'`,
    ]);
    expect(fixes[0]).toContain("NodePool default");
  });

  it("Elastic Beanstalk: the DisableIMDSv1 option setting", () => {
    const fixes = sourceFixes([enforced({ owner: { kind: "elastic-beanstalk", environment: "shop-prod" } })], REGION);
    expect(codeSpans(fixes[0] ?? "")).toEqual([
      `aws elasticbeanstalk update-environment --region ${REGION} --environment-name shop-prod --option-settings Namespace=aws:autoscaling:launchconfiguration,OptionName=DisableIMDSv1,Value=true`,
    ]);
  });

  it("EC2 Fleet and Spot Fleet: their launch template config", () => {
    const fleet = "fleet-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";
    const spot = "sfr-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";
    const fixes = sourceFixes(
      [
        enforced({ owner: { kind: "ec2-fleet", fleetId: fleet }, launchTemplateId: LT }),
        enforced({ owner: { kind: "spot-fleet", requestId: spot }, launchTemplateId: "lt-0a1b2c3d4e5f60719" }),
      ],
      REGION,
    );
    expect(fixes).toHaveLength(2);
    expect(codeSpans(fixes[0] ?? "")[1]).toBe(
      `aws ec2 modify-fleet --region ${REGION} --fleet-id ${fleet} --launch-template-configs '[{"LaunchTemplateSpecification":{"LaunchTemplateId":"${LT}","Version":"<new version>"}}]'`,
    );
    expect(codeSpans(fixes[1] ?? "")[1]).toContain(
      `aws ec2 modify-spot-fleet-request --region ${REGION} --spot-fleet-request-id ${spot}`,
    );
  });

  it.each([
    { kind: "eks-nodegroup" as const, cluster: "prod; rm -rf /", nodegroup: "ng" },
    { kind: "karpenter" as const, nodeClass: "x'$(id)" },
    { kind: "elastic-beanstalk" as const, environment: "env`whoami`" },
    { kind: "ec2-fleet" as const, fleetId: "fleet-1 && curl evil" },
    { kind: "spot-fleet" as const, requestId: "sfr-$(id)" },
  ])("never puts a hostile tag value into a command ($kind)", (owner) => {
    const fixes = sourceFixes([enforced({ owner, launchTemplateId: LT })], REGION);
    const text = fixes.join("\n");
    for (const bad of ["rm -rf", "$(id)", "`whoami`", "curl evil", "'$("]) expect(text).not.toContain(bad);
    expect(text).toContain("a tag value the guard will not put into a command");
  });

  it("names the owner in the origin line", () => {
    const owner = { kind: "eks-nodegroup" as const, cluster: "prod", nodegroup: "ng-1" };
    expect(describeOwner(owner)).toBe("EKS node group ng-1 of cluster prod");
    expect(describeOrigin({ owner, launchTemplateId: LT })).toBe(
      `EKS node group ng-1 of cluster prod, launch template ${LT}`,
    );
  });
});
