/**
 * Every error a step can throw, named by how the state machine treats it. The ASL's Retry and Catch clauses refer to
 * these `name`s, and test/asl.test.ts checks that every name used there exists here, so the two cannot drift.
 *
 * - Retryable*: the call did not take effect (throttled, not yet visible, 5xx); retrying is safe even on a mutating
 *   step, because AWS rejected the request before acting on it.
 * - NonRetryable*: retrying cannot help; the flow records the instance as `error` with this message.
 */

/** Which AWS call failed, and with which code: data for whoever explains the failure, so no one parses the message. */
export interface AwsCallFacts {
  /** The API, as AWS names it (`DescribeInstances`, `GetMetricData`...). */
  api?: string;
  /** The AWS error code (`UnauthorizedOperation`...) or Node's network code (`ECONNREFUSED`...). */
  code?: string;
}

/** An AWS call that failed, with the API and code as fields (shared/aws/errors.ts classifyAwsError builds these). */
export abstract class AwsCallError extends Error {
  readonly api: string | undefined;
  readonly code: string | undefined;
  constructor(message: string, options?: ErrorOptions & AwsCallFacts) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.api = options?.api;
    this.code = options?.code;
  }
}

/** EC2, SSM or SNS asked us to slow down (RequestLimitExceeded, ThrottlingException, ...). Retried with backoff. */
export class RetryableThrottlingError extends AwsCallError {
  override readonly name = "RetryableThrottlingError";
}

/** A 5xx or network failure before AWS acted on the request. Retried with backoff. */
export class RetryableServiceError extends AwsCallError {
  override readonly name = "RetryableServiceError";
}

/** The input of a step is not what the previous step promised. A bug or a tampered execution: never retried. */
export class NonRetryableInvalidInputError extends Error {
  override readonly name = "NonRetryableInvalidInputError";
}

/** AWS refused the request for a reason retrying cannot fix (AccessDenied, UnsupportedOperation, ...). */
export class NonRetryableAwsError extends AwsCallError {
  override readonly name = "NonRetryableAwsError";
}

/**
 * Organization mode: the spoke role in the event's account and region cannot be assumed (no spoke deployed, an SCP
 * denying the region, a trust that does not name this hub). Not retried: each instance ends `error` with this reason.
 */
export class NonRetryableSpokeUnreachableError extends Error {
  override readonly name = "NonRetryableSpokeUnreachableError";
}

/** A required setting is missing or invalid. Thrown at cold start so a bad deploy fails loudly, not per instance. */
export class NonRetryableConfigurationError extends Error {
  override readonly name = "NonRetryableConfigurationError";
}

/** Names the ASL may use in Retry/Catch. Lambda's own service errors are listed apart: they are not ours. */
export const GUARD_ERROR_NAMES = [
  "RetryableThrottlingError",
  "RetryableServiceError",
  "NonRetryableInvalidInputError",
  "NonRetryableAwsError",
  "NonRetryableConfigurationError",
  "NonRetryableSpokeUnreachableError",
] as const;

/** Errors raised by the Lambda service before our code ran; safe to retry on any step. */
export const LAMBDA_SERVICE_ERROR_NAMES = [
  "Lambda.ServiceException",
  "Lambda.AWSLambdaException",
  "Lambda.SdkClientException",
  "Lambda.TooManyRequestsException",
] as const;

/**
 * Our code crashed or hit the Lambda timeout part-way (Lambda.Unknown; Sandbox.Timedout in current runtimes): it may
 * have acted. Retried only on steps that are idempotent (they describe before they change anything, or only read).
 */
export const LAMBDA_CRASH_ERROR_NAMES = ["Lambda.Unknown", "Sandbox.Timedout"] as const;

/** Errors of the state machine's direct DynamoDB integrations (StoreWorkList), as Step Functions names them. */
export const DYNAMODB_ERROR_NAMES = [
  "DynamoDB.ConditionalCheckFailedException",
  "DynamoDB.ProvisionedThroughputExceededException",
  "DynamoDB.ThrottlingException",
  "DynamoDB.RequestLimitExceeded",
  "DynamoDB.InternalServerErrorException",
] as const;
