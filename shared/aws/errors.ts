import {
  type AwsCallError,
  NonRetryableAwsError,
  RetryableServiceError,
  RetryableThrottlingError,
} from "../domain/errors.js";

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

/**
 * Network-level failures: Node's error codes (on `code`) and the SDK's request-timeout names. AWS never saw the
 * request, or never answered it, so asking again is safe. The one list: the Lambdas' retry taxonomy and the audit
 * CLI's "cannot reach" message both read it.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "TimeoutError",
  "RequestTimeout",
]);

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

/** The network-level code of a failure (`ECONNREFUSED`, `TimeoutError`...), or undefined if it is not one. */
export function networkErrorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const nodeCode = (error as { code?: unknown }).code;
  if (typeof nodeCode === "string" && NETWORK_ERROR_CODES.has(nodeCode)) return nodeCode;
  const code = awsErrorCode(error);
  return code !== undefined && NETWORK_ERROR_CODES.has(code) ? code : undefined;
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
  if (networkErrorCode(error) !== undefined) return true;
  const code = awsErrorCode(error);
  return code === "InternalError" || code === "ServiceUnavailable" || code === "Unavailable";
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
 * retry by name. The API and the code are fields of the result (`api`, `code`) as well as words of its message.
 * Unknown errors become NonRetryableAwsError: retrying what we do not understand is how a remediator ends up
 * modifying an instance twice.
 *
 * @param api the AWS API that failed, as AWS names it (`GetMetricData`)
 * @param detail what the call was for, shown after the API (`MetadataNoToken`, `to the alert topic`)
 */
export function classifyAwsError(error: unknown, api: string, detail?: string): AwsCallError {
  const code = networkErrorCode(error) ?? awsErrorCode(error);
  const message = typeof (error as SdkErrorShape)?.message === "string" ? String((error as SdkErrorShape).message) : "";
  const text = `${api}${detail ? ` ${detail}` : ""}: ${code ?? "UnknownError"}${message ? `: ${message}` : ""}`;
  const options = { cause: error, api, ...(code ? { code } : {}) };
  if (isThrottling(error)) return new RetryableThrottlingError(text, options);
  if (isTransient(error)) return new RetryableServiceError(text, options);
  return new NonRetryableAwsError(text, options);
}
