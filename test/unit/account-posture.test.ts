import {
  EC2ServiceException,
  GetInstanceMetadataDefaultsCommand,
  ModifyInstanceMetadataDefaultsCommand,
} from "@aws-sdk/client-ec2";
import { beforeEach, describe, expect, it } from "vitest";
import { readAccountPosture, requireTokensByDefault } from "../../shared/aws/account-defaults.js";
import { ec2 } from "../../shared/aws/clients/index.js";
import { type AccountPosture, accountPostureSchema } from "../../shared/domain/account-posture.js";
import { cachedPosture } from "../../shared/steps/assess-account.js";
import { contractError, ec2Mock, resetMocks, serviceError } from "./support.js";

const NOW = new Date("2026-11-28T10:00:00.000Z");

function ec2Error(name: string, status: number): EC2ServiceException {
  return serviceError(EC2ServiceException, name, status);
}

const msAfterNow = (ms: number) => new Date(NOW.getTime() + ms);

beforeEach(resetMocks);

describe("readAccountPosture", () => {
  it.each([
    {
      label: "required, enforced, by a declarative policy",
      accountLevel: { HttpTokens: "required", HttpTokensEnforced: "enabled", ManagedBy: "declarative-policy" },
      expected: { httpTokens: "required", httpTokensEnforced: true, managedBy: "declarative-policy" },
    },
    {
      label: "optional, not enforced, by the account",
      accountLevel: { HttpTokens: "optional", HttpTokensEnforced: "disabled", ManagedBy: "account" },
      expected: { httpTokens: "optional", httpTokensEnforced: false, managedBy: "account" },
    },
    {
      label: "no HttpTokens set",
      accountLevel: {},
      expected: { httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account" },
    },
    {
      label: "no AccountLevel at all",
      accountLevel: undefined,
      expected: { httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account" },
    },
  ] as const)("maps $label", async ({ accountLevel, expected }) => {
    // Prepare
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves(accountLevel ? { AccountLevel: accountLevel } : {});

    // Act
    const posture = await readAccountPosture(ec2);

    // Assess
    expect(posture).toStrictEqual(expected);
    expect(accountPostureSchema.parse(posture)).toEqual(expected);
    expect(ec2Mock.commandCalls(GetInstanceMetadataDefaultsCommand)).toHaveLength(1);
  });

  it.each([
    { code: "RequestLimitExceeded", status: 503, expected: "RetryableThrottlingError" },
    { code: "InternalError", status: 500, expected: "RetryableServiceError" },
    { code: "UnauthorizedOperation", status: 403, expected: "NonRetryableAwsError" },
  ])("throws $expected when EC2 answers $code", async ({ code, status, expected }) => {
    // Prepare
    const cause = ec2Error(code, status);
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).rejects(cause);

    // Act
    const run = readAccountPosture(ec2);

    // Assess
    await expect(run).rejects.toMatchObject({
      name: expected,
      message: expect.stringContaining("GetInstanceMetadataDefaults"),
      cause,
    });
  });
});

describe("requireTokensByDefault", () => {
  it.each(["optional", "no-preference"])("sets HttpTokens=required when the default is %s", async (httpTokens) => {
    // Prepare
    ec2Mock.on(ModifyInstanceMetadataDefaultsCommand).resolves({ Return: true });
    const posture: AccountPosture = { httpTokens, httpTokensEnforced: false, managedBy: "account" };

    // Act
    const changed = await requireTokensByDefault(ec2, posture);

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataDefaultsCommand).map((c) => c.args[0].input)).toStrictEqual([
      { HttpTokens: "required" },
    ]);
    expect(changed).toStrictEqual({
      httpTokens: "required",
      httpTokensEnforced: false,
      managedBy: "account",
      changedByGuard: true,
    });
  });

  it("changes nothing when the default is already required", async () => {
    // Prepare
    const posture: AccountPosture = { httpTokens: "required", httpTokensEnforced: false, managedBy: "account" };

    // Act
    const out = await requireTokensByDefault(ec2, posture);

    // Assess
    expect(ec2Mock.commandCalls(ModifyInstanceMetadataDefaultsCommand)).toHaveLength(0);
    expect(out).toBe(posture);
  });

  it.each(["optional", "no-preference"])(
    "never touches a %s default managed by a declarative policy",
    async (httpTokens) => {
      // Prepare
      const posture: AccountPosture = { httpTokens, httpTokensEnforced: false, managedBy: "declarative-policy" };

      // Act
      const out = await requireTokensByDefault(ec2, posture);

      // Assess
      expect(ec2Mock.commandCalls(ModifyInstanceMetadataDefaultsCommand)).toHaveLength(0);
      expect(out).toBe(posture);
    },
  );

  it("throws the classified error, naming the call, when the change is refused", async () => {
    // Prepare
    const cause = ec2Error("UnauthorizedOperation", 403);
    ec2Mock.on(ModifyInstanceMetadataDefaultsCommand).rejects(cause);
    const posture: AccountPosture = { httpTokens: "optional", httpTokensEnforced: false, managedBy: "account" };

    // Act
    const run = requireTokensByDefault(ec2, posture);

    // Assess
    await expect(run).rejects.toMatchObject({
      name: "NonRetryableAwsError",
      message: expect.stringContaining("ModifyInstanceMetadataDefaults"),
      cause,
    });
  });
});

describe("cachedPosture", () => {
  it("reads once within the TTL and again once it has passed", async () => {
    // Prepare
    ec2Mock
      .on(GetInstanceMetadataDefaultsCommand)
      .resolvesOnce({ AccountLevel: { HttpTokens: "optional" } })
      .resolves({ AccountLevel: { HttpTokens: "required" } });
    const posture = cachedPosture(60_000);

    // Act
    const first = await posture(ec2, NOW);
    const within = await posture(ec2, msAfterNow(59_999));
    const expired = await posture(ec2, msAfterNow(60_000));
    const cachedAgain = await posture(ec2, msAfterNow(100_000));

    // Assess
    expect(ec2Mock.commandCalls(GetInstanceMetadataDefaultsCommand)).toHaveLength(2);
    expect(first.httpTokens).toBe("optional");
    expect(within.httpTokens).toBe("optional");
    expect(expired.httpTokens).toBe("required");
    expect(cachedAgain.httpTokens).toBe("required");
  });

  it("keeps for five minutes by default", async () => {
    // Prepare
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: { HttpTokens: "optional" } });
    const posture = cachedPosture();

    // Act
    await posture(ec2, NOW);
    await posture(ec2, msAfterNow(5 * 60_000 - 1));
    const callsWithin = ec2Mock.commandCalls(GetInstanceMetadataDefaultsCommand).length;
    await posture(ec2, msAfterNow(5 * 60_000));

    // Assess
    expect(callsWithin).toBe(1);
    expect(ec2Mock.commandCalls(GetInstanceMetadataDefaultsCommand)).toHaveLength(2);
  });

  it("caches nothing after a failed read", async () => {
    // Prepare
    ec2Mock
      .on(GetInstanceMetadataDefaultsCommand)
      .rejectsOnce(contractError("ec2Throttled"))
      .resolves({ AccountLevel: { HttpTokens: "required" } });
    const posture = cachedPosture();

    // Act
    const failed = await posture(ec2, NOW).catch((error: unknown) => error);
    const retried = await posture(ec2, msAfterNow(1000));

    // Assess
    expect(failed).toMatchObject({ name: "RetryableThrottlingError" });
    expect(retried.httpTokens).toBe("required");
    expect(ec2Mock.commandCalls(GetInstanceMetadataDefaultsCommand)).toHaveLength(2);
  });

  it("gives each cache its own memory", async () => {
    // Prepare
    ec2Mock.on(GetInstanceMetadataDefaultsCommand).resolves({ AccountLevel: { HttpTokens: "optional" } });

    // Act
    await cachedPosture()(ec2, NOW);
    await cachedPosture()(ec2, NOW);

    // Assess
    expect(ec2Mock.commandCalls(GetInstanceMetadataDefaultsCommand)).toHaveLength(2);
  });
});
