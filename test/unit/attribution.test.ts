import { DescribeImagesCommand, EC2ServiceException, ModifyInstanceMetadataOptionsCommand } from "@aws-sdk/client-ec2";
import { beforeEach, describe, expect, it } from "vitest";
import { ec2 } from "../../shared/aws/clients/index.js";
import { imageSupportLookup } from "../../shared/aws/image-support.js";
import { type EnforceDeps, enforceBatch } from "../../shared/steps/enforce.js";
import {
  batchFactory,
  contractError,
  describes,
  ec2Instance,
  ec2Mock,
  enforceDeps,
  enforcing,
  ID_A,
  ID_B,
  ID_C,
  only,
  resetMocks,
  serviceError,
} from "./support.js";

const NOW = new Date("2026-11-28T10:00:30.000Z");
const batchOf = batchFactory({ eventId: "evt-gate" });
const ec2Error = (name: string, status: number) => serviceError(EC2ServiceException, name, status);

const AMI_UNSET = "ami-0a1b2c3d4e5f60001";
const AMI_V2 = "ami-0a1b2c3d4e5f60002";
const AMI_GONE = "ami-0a1b2c3d4e5f60003";
const LT = "lt-0a1b2c3d4e5f60718";

const FROM_ASG = [
  { Key: "aws:ec2launchtemplate:id", Value: LT },
  { Key: "aws:ec2launchtemplate:version", Value: "7" },
  { Key: "aws:autoscaling:groupName", Value: "web-asg" },
  { Key: "Name", Value: "web" },
];

function deps(imageSupport = imageSupportLookup()): EnforceDeps {
  return enforceDeps(() => NOW, imageSupport);
}

function images(...known: { id: string; imdsSupport?: "v2.0" }[]): void {
  ec2Mock.on(DescribeImagesCommand).resolves({
    Images: known.map(({ id, imdsSupport }) => ({ ImageId: id, ...(imdsSupport ? { ImdsSupport: imdsSupport } : {}) })),
  });
}

beforeEach(resetMocks);

describe("attribution: where an instance came from", () => {
  it("takes the launch template, its version and the Auto Scaling group from the tags EC2 puts on the instance", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { imageId: AMI_UNSET, tags: FROM_ASG }));
    images({ id: AMI_UNSET });

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger: "launch" }), deps());

    // Assess
    expect(only(out, ID_A).origin).toStrictEqual({
      launchTemplateId: LT,
      launchTemplateVersion: "7",
      autoScalingGroup: "web-asg",
      imageId: AMI_UNSET,
      imageImdsSupport: "unset",
      hopLimit: 2,
    });
  });

  it("reads each AMI's ImdsSupport with one DescribeImages filtered on image-id: v2.0, unset, or unknown when absent", async () => {
    // Prepare
    describes(
      ec2Instance(ID_A, { imageId: AMI_UNSET }),
      ec2Instance(ID_B, { imageId: AMI_V2 }),
      ec2Instance(ID_C, { imageId: AMI_GONE }),
    );
    images({ id: AMI_UNSET }, { id: AMI_V2, imdsSupport: "v2.0" });

    // Act
    const out = await enforceBatch(
      batchOf([enforcing(ID_A), enforcing(ID_B), enforcing(ID_C)], { trigger: "launch" }),
      deps(),
    );

    // Assess
    const calls = ec2Mock.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.ImageIds).toBeUndefined();
    expect(calls[0]?.Filters).toEqual([{ Name: "image-id", Values: [AMI_UNSET, AMI_V2, AMI_GONE] }]);
    expect(only(out, ID_A).origin).toStrictEqual({ imageId: AMI_UNSET, imageImdsSupport: "unset", hopLimit: 2 });
    expect(only(out, ID_B).origin).toStrictEqual({ imageId: AMI_V2, imageImdsSupport: "v2.0", hopLimit: 2 });
    expect(only(out, ID_C).origin).toStrictEqual({ imageId: AMI_GONE, imageImdsSupport: "unknown", hopLimit: 2 });
  });

  it("keeps the origin on the result of an instance that is decided at once", async () => {
    // Prepare
    describes(ec2Instance(ID_A, { imageId: AMI_UNSET, tags: FROM_ASG, state: "stopped" }));
    images({ id: AMI_UNSET });

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger: "launch" }), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      action: "set HttpTokens=required (was optional)",
      enforcedAt: NOW.toISOString(),
      origin: { launchTemplateId: LT, autoScalingGroup: "web-asg", imageImdsSupport: "unset" },
    });
  });

  it("asks nothing about images when no instance names one", async () => {
    // Prepare
    describes(ec2Instance(ID_A));

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger: "launch" }), deps());

    // Assess
    expect(ec2Mock.commandCalls(DescribeImagesCommand)).toHaveLength(0);
    expect(only(out, ID_A).origin).toStrictEqual({ hopLimit: 2 });
  });

  it.each([
    { label: "1", hopLimit: 1, expected: { hopLimit: 1 } },
    { label: "3", hopLimit: 3, expected: { hopLimit: 3 } },
    { label: "not given", hopLimit: null, expected: {} },
  ])(
    "keeps the instance's hop limit ($label) in its origin, for the launch template fix",
    async ({ hopLimit, expected }) => {
      // Prepare
      describes(ec2Instance(ID_A, { hopLimit }));

      // Act
      const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger: "launch" }), deps());

      // Assess
      expect(only(out, ID_A).origin).toStrictEqual(expected);
      expect(only(out, ID_A).stage).toBe("await-applied");
    },
  );

  it.each([
    { label: "AccessDenied", error: ec2Error("UnauthorizedOperation", 403) },
    { label: "throttled", error: contractError("ec2Throttled") },
  ])("still enforces when DescribeImages fails ($label), with the AMI's support unknown", async ({ error }) => {
    // Prepare
    describes(ec2Instance(ID_A, { imageId: AMI_UNSET, tags: FROM_ASG }));
    ec2Mock.on(DescribeImagesCommand).rejects(error);

    // Act
    const out = await enforceBatch(batchOf([enforcing(ID_A)], { trigger: "launch" }), deps());

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataOptionsCommand).map((c) => c.args[0].input)).toStrictEqual([
      { InstanceId: ID_A, HttpTokens: "required" },
    ]);
    expect(only(out, ID_A)).toMatchObject({
      stage: "await-applied",
      origin: { launchTemplateId: LT, imageId: AMI_UNSET, imageImdsSupport: "unknown" },
    });
    expect(out.throttledRounds).toBe(0);
  });
});

describe("imageSupportLookup: cached per container", () => {
  it("asks EC2 once for two batches launched from the same AMI", async () => {
    // Prepare
    const imageSupport = imageSupportLookup();
    describes(ec2Instance(ID_A, { imageId: AMI_UNSET }), ec2Instance(ID_B, { imageId: AMI_UNSET }));
    images({ id: AMI_UNSET });

    // Act
    const first = await enforceBatch(
      batchOf([enforcing(ID_A)], { trigger: "launch", eventId: "evt-1" }),
      deps(imageSupport),
    );
    const second = await enforceBatch(
      batchOf([enforcing(ID_B)], { trigger: "launch", eventId: "evt-2" }),
      deps(imageSupport),
    );

    // Assess
    expect(ec2Mock.commandCalls(DescribeImagesCommand)).toHaveLength(1);
    expect(only(first, ID_A).origin?.imageImdsSupport).toBe("unset");
    expect(only(second, ID_B).origin?.imageImdsSupport).toBe("unset");
  });

  it("asks only about the AMIs it has not seen, remembering absent ones as unknown", async () => {
    // Prepare
    const lookup = imageSupportLookup();
    images({ id: AMI_V2, imdsSupport: "v2.0" });

    // Act
    const first = await lookup(ec2, [AMI_V2, AMI_GONE, AMI_V2]);
    const second = await lookup(ec2, [AMI_GONE, AMI_UNSET, AMI_V2]);

    // Assess
    const asked = ec2Mock.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input.Filters?.[0]?.Values);
    expect(asked).toEqual([[AMI_V2, AMI_GONE], [AMI_UNSET]]);
    expect(first).toEqual(
      new Map([
        [AMI_V2, "v2.0"],
        [AMI_GONE, "unknown"],
      ]),
    );
    expect(second.get(AMI_GONE)).toBe("unknown");
    expect(second.get(AMI_V2)).toBe("v2.0");
  });

  it("keeps nothing from a failed lookup, so the next one asks again", async () => {
    // Prepare
    const lookup = imageSupportLookup();
    ec2Mock
      .on(DescribeImagesCommand)
      .rejectsOnce(contractError("ec2Throttled"))
      .resolves({ Images: [{ ImageId: AMI_V2, ImdsSupport: "v2.0" }] });

    // Act
    const failed = await lookup(ec2, [AMI_V2]).catch((error: unknown) => error);
    const retried = await lookup(ec2, [AMI_V2]);

    // Assess
    expect(failed).toMatchObject({
      name: "RetryableThrottlingError",
      message: expect.stringContaining("DescribeImages"),
    });
    expect(ec2Mock.commandCalls(DescribeImagesCommand)).toHaveLength(2);
    expect(retried.get(AMI_V2)).toBe("v2.0");
  });

  it("keeps separate lookups separate", async () => {
    // Prepare
    images({ id: AMI_UNSET });

    // Act
    await imageSupportLookup()(ec2, [AMI_UNSET]);
    await imageSupportLookup()(ec2, [AMI_UNSET]);

    // Assess
    expect(ec2Mock.commandCalls(DescribeImagesCommand)).toHaveLength(2);
  });
});
