import { DynamoDBServiceException } from "@aws-sdk/client-dynamodb";
import { EC2ServiceException } from "@aws-sdk/client-ec2";
import { SSMServiceException } from "@aws-sdk/client-ssm";

/**
 * How AWS answers the calls the guard makes when things go wrong: one table that the simulated account
 * (local/sim/sim-account.ts, test/contract.test.ts) and the unit tests' mocks (test/unit/support.ts, which builds its
 * errors with `contractError`) are both held to. A row says what AWS sends (code, HTTP status, fault) and how the
 * guard must read it (shared/aws/errors.ts).
 */
export interface ErrorContract {
  service: "ec2" | "ssm" | "dynamodb";
  /** The APIs the guard calls that answer with it. */
  apis: readonly string[];
  code: string;
  httpStatus: number;
  /** What the guard must make of it: slow down and ask again, ask again, or neither. */
  guardReads: "throttling" | "transient" | "final";
  message: string;
  /** Where the row comes from. */
  source: string;
}

export const AWS_ERRORS = {
  ec2Throttled: {
    service: "ec2",
    apis: [
      "DescribeInstances",
      "DescribeImages",
      "GetInstanceMetadataDefaults",
      "ModifyInstanceMetadataOptions",
      "ModifyInstanceMetadataDefaults",
    ],
    code: "RequestLimitExceeded",
    // EC2 lists it among its server error codes ("accompanied by a 500-series HTTP response code"), and the SDKs
    // report it as 503 ("Status Code: 503; Error Code: RequestLimitExceeded").
    httpStatus: 503,
    guardReads: "throttling",
    message: "Request limit exceeded.",
    source:
      "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html (server error codes); cloudfoundry/bosh-aws-cpi-release#61, CloudSnorkel/cdk-github-runners#946",
  },
  ssmThrottled: {
    service: "ssm",
    apis: ["SendCommand", "GetCommandInvocation", "DescribeInstanceInformation"],
    code: "ThrottlingException",
    httpStatus: 400,
    guardReads: "throttling",
    message: "Rate exceeded",
    source: "https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html",
  },
  dynamodbThroughputExceeded: {
    service: "dynamodb",
    apis: ["PutItem", "Query"],
    code: "ProvisionedThroughputExceededException",
    httpStatus: 400,
    guardReads: "throttling",
    message:
      "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    source: "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html#API_PutItem_Errors",
  },
  dynamodbThrottled: {
    service: "dynamodb",
    apis: ["PutItem", "Query"],
    code: "ThrottlingException",
    httpStatus: 400,
    guardReads: "throttling",
    message: "Throughput exceeds the current throughput limit for your account.",
    source: "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html#API_PutItem_Errors",
  },
  ec2InstanceNotFound: {
    service: "ec2",
    // With InstanceIds; with an instance-id filter an instance EC2 does not show yet is simply absent.
    apis: ["DescribeInstances", "ModifyInstanceMetadataOptions"],
    code: "InvalidInstanceID.NotFound",
    httpStatus: 400,
    // Not retried as an error: Enforce waits for the instance as data (NOT_FOUND_GRACE_SECONDS).
    guardReads: "final",
    message: "The instance ID 'i-0a1b2c3d4e5f60001' does not exist",
    source: "https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html",
  },
  dynamodbConditionFailed: {
    service: "dynamodb",
    apis: ["PutItem"],
    code: "ConditionalCheckFailedException",
    httpStatus: 400,
    guardReads: "final",
    message: "The conditional request failed",
    source: "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html#API_PutItem_Errors",
  },
} as const satisfies Record<string, ErrorContract>;

export type ContractErrorName = keyof typeof AWS_ERRORS;

/** How the answers are paged: DescribeInstances by NextToken, DynamoDB Query by LastEvaluatedKey. */
export const AWS_PAGING = {
  describeInstances: { maxResultsMin: 5, maxResultsMax: 1000 },
  /** A Query page stops at 1 MB of items read, and carries LastEvaluatedKey when it stopped there. */
  query: { pageBytes: 1024 * 1024 },
} as const;

const EXCEPTIONS = {
  ec2: EC2ServiceException,
  ssm: SSMServiceException,
  dynamodb: DynamoDBServiceException,
} as const;

/** The row for this code of the service whose SDK throws `exception`'s kind, if the table has one. */
export function contractRowFor(exception: unknown, code: string): ErrorContract | undefined {
  const rows: ErrorContract[] = Object.values(AWS_ERRORS);
  return rows.find((row) => EXCEPTIONS[row.service] === exception && row.code === code);
}

/** The error a row describes, as that service's SDK client throws it. */
export function contractError(name: ContractErrorName, message?: string): Error {
  const row: ErrorContract = AWS_ERRORS[name];
  const Exception = EXCEPTIONS[row.service];
  return new Exception({
    name: row.code,
    $fault: row.httpStatus >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: row.httpStatus },
    message: message ?? row.message,
  });
}

/** What a contract compares of an error: its code, its HTTP status and its fault. */
export function shapeOf(error: unknown): { code: unknown; httpStatus: unknown; fault: unknown } {
  const e = error as { name?: unknown; $metadata?: { httpStatusCode?: unknown }; $fault?: unknown };
  return { code: e.name, httpStatus: e.$metadata?.httpStatusCode, fault: e.$fault };
}

/** The shape a row promises. */
export function expectedShape(name: ContractErrorName) {
  const row: ErrorContract = AWS_ERRORS[name];
  return { code: row.code, httpStatus: row.httpStatus, fault: row.httpStatus >= 500 ? "server" : "client" };
}
