import { NonRetryableAwsError, RetryableServiceError, RetryableThrottlingError } from "../domain/errors.js";

/** Error codes with which EC2, SSM and SNS ask the caller to slow down. */
const THROTTLING_CODES = new Set([
  "RequestLimitExceeded",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  // The alerts topic is KMS-encrypted, so Publish can be throttled by KMS on the topic's behalf.
  "KMSThrottlingException",
  // DynamoDB (the event ledger) on a burst.
  "ProvisionedThroughputExceededException",
]);

/** Network-level failures (Node's error codes) that the SDK itself treats as transient. */
const NETWORK_ERROR_CODES = new Set(["ECONNRESET", "ETIMEDOUT", "ECONNREFUSED", "EPIPE", "EAI_AGAIN", "ENOTFOUND"]);

interface SdkErrorShape {
  name?: unknown;
  Code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
  $fault?: unknown;
}

/** The AWS error code of an SDK v3 exception (`name`, or `Code` on some EC2 errors), or undefined. */
export function awsErrorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as SdkErrorShape;
  if (typeof e.Code === "string") return e.Code;
  if (typeof e.name === "string") return e.name;
  return undefined;
}

export function isThrottling(error: unknown): boolean {
  const code = awsErrorCode(error);
  return code !== undefined && THROTTLING_CODES.has(code);
}

/** 5xx and network-level failures: AWS did not act on the request. */
export function isTransient(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  const code = awsErrorCode(error);
  const networkCode = (error as { code?: unknown }).code;
  if (typeof networkCode === "string" && NETWORK_ERROR_CODES.has(networkCode)) return true;
  return code === "InternalError" || code === "ServiceUnavailable" || code === "Unavailable" || code === "TimeoutError";
}

/**
 * Throttling or a 5xx: worth asking again next round. Safe even for ModifyInstanceMetadataOptions, whose 5xx leaves
 * it unknown whether the change was made, because Enforce describes before it modifies: a change that did go through
 * shows as `required` next round and is not made twice.
 */
export function isWorthRetryingNextRound(error: unknown): boolean {
  return isThrottling(error) || isTransient(error);
}

/**
 * Maps an SDK exception to the guard's error taxonomy, keeping the original as `cause`, so the state machine can
 * retry by name. Unknown errors become NonRetryableAwsError: retrying what we do not understand is how a remediator
 * ends up modifying an instance twice.
 */
export function classifyAwsError(error: unknown, during: string): Error {
  const code = awsErrorCode(error) ?? "UnknownError";
  const message = typeof (error as SdkErrorShape)?.message === "string" ? String((error as SdkErrorShape).message) : "";
  const text = `${during}: ${code}${message ? `: ${message}` : ""}`;
  if (isThrottling(error)) return new RetryableThrottlingError(text, { cause: error });
  if (isTransient(error)) return new RetryableServiceError(text, { cause: error });
  return new NonRetryableAwsError(text, { cause: error });
}
