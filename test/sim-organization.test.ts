import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { scenarioInstanceSchema } from "../local/runner/scenario.js";
import { SimOrganization } from "../local/sim/sim-organization.js";
import { organizationsDirectory } from "../shared/aws/organization-directory.js";
import { spokeCredentialCache } from "../shared/aws/spoke-credentials.js";
import { NonRetryableSpokeUnreachableError } from "../shared/domain/errors.js";

const A = "111100000000";
const B = "222200000000";
const NO_SPOKE = "333300000000";

describe("the simulated organization: an account is a wall, as in AWS", () => {
  let org: SimOrganization;
  beforeEach(() => {
    org = new SimOrganization(
      {
        id: "o-a1b2c3d4e5",
        hubAccount: "999900000000",
        hubRegion: "eu-west-1",
        accounts: [
          { id: A, name: "a", regions: ["eu-west-1", "us-east-1"], spoke: true },
          { id: B, name: "b", regions: ["eu-west-1"], spoke: true },
          { id: NO_SPOKE, name: "c", regions: ["eu-west-1"], spoke: false },
        ],
        allowedAccounts: [],
      },
      [
        scenarioInstanceSchema.parse({ id: "i-0aaaaaaaaaaaaaaa1", account: A, region: "us-east-1" }),
        scenarioInstanceSchema.parse({ id: "i-0bbbbbbbbbbbbbbb1", account: B, region: "eu-west-1" }),
      ],
    );
    org.install();
  });
  afterEach(() => org.restore());

  async function ec2As(account: string, region: string): Promise<EC2Client> {
    const access = spokeCredentialCache({ roleName: "imdsv2-guard-spoke" });
    const credentials = await access.credentialsFor({ account, region, eventId: "e-1" });
    return new EC2Client({ region, credentials });
  }

  it("shows a client holding account A's session A's instances, in the client's region only", async () => {
    const east = await ec2As(A, "us-east-1");
    const out = await east.send(new DescribeInstancesCommand({ InstanceIds: ["i-0aaaaaaaaaaaaaaa1"] }));
    expect(out.Reservations?.[0]?.Instances?.[0]?.InstanceId).toBe("i-0aaaaaaaaaaaaaaa1");
    const west = await ec2As(A, "eu-west-1");
    await expect(
      west.send(new DescribeInstancesCommand({ InstanceIds: ["i-0aaaaaaaaaaaaaaa1"] })),
    ).rejects.toMatchObject({
      name: "InvalidInstanceID.NotFound",
    });
  });

  it("answers InvalidInstanceID.NotFound to account A's session asking for account B's instance", async () => {
    const client = await ec2As(A, "eu-west-1");
    await expect(
      client.send(new DescribeInstancesCommand({ InstanceIds: ["i-0bbbbbbbbbbbbbbb1"] })),
    ).rejects.toMatchObject({
      name: "InvalidInstanceID.NotFound",
    });
  });

  it("denies AssumeRole where no spoke is deployed, and a client with unknown keys", async () => {
    await expect(ec2As(NO_SPOKE, "eu-west-1")).rejects.toBeInstanceOf(NonRetryableSpokeUnreachableError);
    const forged = new EC2Client({
      region: "eu-west-1",
      credentials: { accessKeyId: "ASIAFORGED", secretAccessKey: "x" },
    });
    await expect(forged.send(new DescribeInstancesCommand({}))).rejects.toMatchObject({
      name: "UnrecognizedClientException",
    });
    expect(org.assumeRoleCalls.map((c) => c.outcome)).toEqual(["AccessDenied"]);
  });

  it("lists the organization's accounts through Organizations, page by page", async () => {
    const directory = organizationsDirectory(new OrganizationsClient({ region: "us-east-1" }));
    expect((await directory.accounts()).map((a) => a.id)).toEqual(["999900000000", A, B, NO_SPOKE]);
    expect(await directory.membership(B)).toEqual({ status: "member", name: "b", ouIds: [] });
    expect(await directory.membership("444400000000")).toEqual({ status: "not-member" });
  });

  it("gives the hub's own clients the hub's static keys, and switches the instance metadata service off", () => {
    expect(process.env.AWS_EC2_METADATA_DISABLED).toBe("true");
    expect(process.env.AWS_ACCESS_KEY_ID).toBe("AKIASIMHUB0000000000");
  });
});
