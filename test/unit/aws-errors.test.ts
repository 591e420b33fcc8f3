import { EC2ServiceException } from "@aws-sdk/client-ec2";
import { InvocationDoesNotExist, SSMServiceException } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { describeFailure } from "../../audit/failure.js";
import {
  awsErrorCode,
  classifyAwsError,
  isThrottling,
  isTransient,
  NETWORK_ERROR_CODES,
} from "../../shared/aws/errors.js";
import { GUARD_ERROR_NAMES, LAMBDA_CRASH_ERROR_NAMES, LAMBDA_SERVICE_ERROR_NAMES } from "../../shared/domain/errors.js";
import { contractError, serviceError } from "./support.js";

function ec2Error(name: string, status: number | undefined): EC2ServiceException {
  return serviceError(EC2ServiceException, name, status, `${name} happened`);
}

function ssmError(name: string, status: number): SSMServiceException {
  return serviceError(SSMServiceException, name, status, `${name} happened`);
}

describe("classifyAwsError", () => {
  it.each([
    { label: "EC2 RequestLimitExceeded (503)", error: contractError("ec2Throttled") },
    { label: "SSM ThrottlingException", error: contractError("ssmThrottled") },
    { label: "Throttling", error: ec2Error("Throttling", 400) },
    { label: "TooManyRequestsException", error: ec2Error("TooManyRequestsException", 429) },
    { label: "RequestThrottledException", error: ec2Error("RequestThrottledException", 400) },
  ])("maps $label to RetryableThrottlingError", ({ error }) => {
    // Prepare
    const during = "DescribeInstances";

    // Act
    const classified = classifyAwsError(error, during);

    // Assess
    expect(classified.name).toBe("RetryableThrottlingError");
    expect(classified.cause).toBe(error);
  });

  it.each([
    { label: "a 500", error: ec2Error("InternalError", 500) },
    { label: "a 502 of unknown name", error: ec2Error("BadGateway", 502) },
    { label: "a 503 ServiceUnavailable", error: ssmError("ServiceUnavailable", 503) },
    { label: "InternalError without status", error: ec2Error("InternalError", undefined) },
    { label: "a client TimeoutError", error: Object.assign(new Error("socket hang up"), { name: "TimeoutError" }) },
  ])("maps $label to RetryableServiceError", ({ error }) => {
    // Prepare
    const during = "SendCommand";

    // Act
    const classified = classifyAwsError(error, during);

    // Assess
    expect(classified.name).toBe("RetryableServiceError");
    expect(classified.cause).toBe(error);
  });

  it.each(["ECONNRESET", "ETIMEDOUT"])(
    "maps a network failure (%s) left after the SDK's own retries to RetryableServiceError",
    (code) => {
      // Prepare: what @smithy/node-http-handler rejects with; the SDK itself classifies these codes as transient.
      const error = Object.assign(new Error(`read ${code}`), { code, syscall: "read", $metadata: { attempts: 2 } });

      // Act
      const classified = classifyAwsError(error, "DescribeInstances");

      // Assess
      expect(classified.name).toBe("RetryableServiceError");
      expect(classified.cause).toBe(error);
    },
  );

  it("keeps one list of network failures, which both the Lambdas' retries and the audit CLI read", () => {
    // Prepare: each code as @smithy/node-http-handler rejects with it (Node's `code`), or as the SDK names a timeout.
    const failures = [...NETWORK_ERROR_CODES].map((code) =>
      code.startsWith("E")
        ? Object.assign(new Error(`connect ${code}`), { code, syscall: "connect", $metadata: { attempts: 3 } })
        : Object.assign(new Error("timed out"), { name: code }),
    );

    // Act
    const classified = failures.map((error) => classifyAwsError(error, "DescribeInstances"));
    const described = classified.map((error) => describeFailure(error));

    // Assess: EHOSTUNREACH (a route that went away) is retried like the others, and the audit calls each unreachable.
    expect([...NETWORK_ERROR_CODES]).toContain("EHOSTUNREACH");
    expect(classified.map((e) => e.name)).toEqual(failures.map(() => "RetryableServiceError"));
    expect(classified.map((e) => e.code)).toEqual([...NETWORK_ERROR_CODES]);
    expect(described.map((d) => d.kind)).toEqual(failures.map(() => "unreachable"));
    expect(described[0]?.message).toMatch(/^cannot reach EC2 \(ECONNRESET\)/);
  });

  it("carries the API and the code as fields, apart from the message", () => {
    // Prepare
    const error = ec2Error("UnauthorizedOperation", 403);

    // Act
    const classified = classifyAwsError(error, "GetMetricData", "MetadataNoToken");

    // Assess
    expect(classified).toMatchObject({
      name: "NonRetryableAwsError",
      api: "GetMetricData",
      code: "UnauthorizedOperation",
    });
    expect(classified.message).toBe(
      "GetMetricData MetadataNoToken: UnauthorizedOperation: UnauthorizedOperation happened",
    );
  });

  it.each([
    {
      label: "InvalidInstanceID.NotFound (Enforce waits for it as data, not by retrying)",
      error: contractError("ec2InstanceNotFound"),
    },
    { label: "UnauthorizedOperation", error: ec2Error("UnauthorizedOperation", 403) },
    { label: "AccessDeniedException", error: ssmError("AccessDeniedException", 400) },
    { label: "InvocationDoesNotExist", error: new InvocationDoesNotExist({ $metadata: {}, message: "" }) },
    { label: "a plain Error", error: new Error("boom") },
    { label: "a string", error: "boom" },
    { label: "null", error: null },
  ])("maps $label to NonRetryableAwsError", ({ error }) => {
    // Prepare
    const during = "GetCommandInvocation";

    // Act
    const classified = classifyAwsError(error, during);

    // Assess
    expect(classified.name).toBe("NonRetryableAwsError");
    expect(classified.cause).toBe(error);
    expect(classified).toBeInstanceOf(Error);
  });

  it("says what failed, with the AWS code and message", () => {
    // Prepare
    const error = ec2Error("UnauthorizedOperation", 403);

    // Act
    const classified = classifyAwsError(error, "ModifyInstanceMetadataOptions");

    // Assess
    expect(classified.message).toBe(
      "ModifyInstanceMetadataOptions: UnauthorizedOperation: UnauthorizedOperation happened",
    );
  });

  it("names an error it cannot read UnknownError", () => {
    // Prepare
    const error = 42;

    // Act
    const classified = classifyAwsError(error, "Publish");

    // Assess
    expect(classified.message).toBe("Publish: UnknownError");
  });

  it("only ever produces names the state machine knows", () => {
    // Prepare
    const errors = [
      contractError("ec2Throttled"),
      ec2Error("InternalError", 500),
      contractError("ec2InstanceNotFound"),
      ec2Error("UnauthorizedOperation", 403),
    ];

    // Act
    const names = errors.map((e) => classifyAwsError(e, "x").name);

    // Assess
    for (const name of names) expect(GUARD_ERROR_NAMES).toContain(name);
  });
});

describe("awsErrorCode / isThrottling / isTransient", () => {
  it("prefers an EC2 error's Code over its name", () => {
    // Prepare
    const error = Object.assign(new Error("x"), { name: "Error", Code: "RequestLimitExceeded" });

    // Act
    const code = awsErrorCode(error);

    // Assess
    expect(code).toBe("RequestLimitExceeded");
    expect(isThrottling(error)).toBe(true);
  });

  it.each([undefined, null, "RequestLimitExceeded", 503])("reads no code from %j", (value) => {
    // Prepare
    const error: unknown = value;

    // Act
    const code = awsErrorCode(error);

    // Assess
    expect(code).toBeUndefined();
    expect(isThrottling(error)).toBe(false);
    expect(isTransient(error)).toBe(false);
  });

  it("does not treat a 4xx as transient", () => {
    // Prepare
    const error = ec2Error("InvalidParameterValue", 400);

    // Act
    const transient = isTransient(error);

    // Assess
    expect(transient).toBe(false);
  });
});

describe("error names", () => {
  it("no longer has an error for instances not yet visible: Enforce handles them as data", () => {
    // Prepare
    const names: readonly string[] = GUARD_ERROR_NAMES;

    // Act
    const notYetVisible = names.filter((n) => n.includes("NotYetVisible"));

    // Assess
    expect(notYetVisible).toEqual([]);
    expect(names).toEqual([
      "RetryableThrottlingError",
      "RetryableServiceError",
      "NonRetryableInvalidInputError",
      "NonRetryableAwsError",
      "NonRetryableConfigurationError",
      "NonRetryableSpokeUnreachableError",
    ]);
  });

  it("keeps crashes (Lambda.Unknown, Sandbox.Timedout) apart from the errors Lambda raises before the code runs", () => {
    // Prepare
    const service: readonly string[] = LAMBDA_SERVICE_ERROR_NAMES;

    // Act
    const overlap = LAMBDA_CRASH_ERROR_NAMES.filter((n) => service.includes(n));

    // Assess
    expect(LAMBDA_CRASH_ERROR_NAMES).toEqual(["Lambda.Unknown", "Sandbox.Timedout"]);
    expect(overlap).toEqual([]);
    expect(service).toEqual([
      "Lambda.ServiceException",
      "Lambda.AWSLambdaException",
      "Lambda.SdkClientException",
      "Lambda.TooManyRequestsException",
    ]);
  });
});

describe("the mocks' errors and the contract table (test/contract/aws-contract.ts)", () => {
  it.each([
    {
      label: "EC2 RequestLimitExceeded as a 400",
      build: () => serviceError(EC2ServiceException, "RequestLimitExceeded", 400),
    },
    {
      label: "SSM ThrottlingException as a 503",
      build: () => serviceError(SSMServiceException, "ThrottlingException", 503),
    },
  ])("refuses to build $label, which AWS does not send", ({ build }) => {
    expect(build).toThrow(/test\/contract\/aws-contract\.ts/);
  });

  it("builds other codes as asked", () => {
    expect(serviceError(EC2ServiceException, "UnauthorizedOperation", 403).$metadata.httpStatusCode).toBe(403);
  });
});
