import { awsErrorCode, isThrottling, NETWORK_ERROR_CODES, networkErrorCode } from "../shared/aws/errors.js";
import { AwsCallError } from "../shared/domain/errors.js";
import { StateMachineNotFoundError } from "./audit.js";

export const DOCS = 'see README "Audit the existing fleet" > "Troubleshooting"';

/**
 * `global` failures are the same in every region (no credentials, no region, credentials AWS refuses): the audit
 * stops with one line. The others belong to a region, and the other regions are still audited.
 */
export interface AuditFailure {
  kind:
    | "no-credentials"
    | "no-region"
    | "credentials-rejected"
    | "access-denied"
    | "region-not-enabled"
    | "unreachable"
    | "throttled"
    | "state-machine"
    | "aws-error"
    | "unexpected";
  global: boolean;
  code?: string;
  /** One line, no stack: what went wrong and what to do about it. */
  message: string;
}

const CREDENTIAL_PROVIDER_ERRORS = new Set(["CredentialsProviderError", "TokenProviderError"]);
const REJECTED_CREDENTIALS = new Set([
  "ExpiredToken",
  "ExpiredTokenException",
  "InvalidClientTokenId",
  "UnrecognizedClientException",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "IncompleteSignature",
]);
const ACCESS_DENIED = new Set(["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"]);
/** The IAM action behind each call the audit makes, for access-denied messages. */
const IAM_ACTIONS: Record<string, string> = {
  GetInstanceMetadataDefaults: "ec2:GetInstanceMetadataDefaults",
  DescribeInstances: "ec2:DescribeInstances",
  DescribeRegions: "ec2:DescribeRegions",
  GetMetricData: "cloudwatch:GetMetricData",
  ListStateMachines: "states:ListStateMachines",
  StartExecution: "states:StartExecution",
};

const SERVICES: Record<string, string> = { ec2: "EC2", cloudwatch: "CloudWatch", states: "Step Functions" };

/** Turns any error of the audit into one line a person can act on; never a stack trace. */
export function describeFailure(error: unknown): AuditFailure {
  if (error instanceof StateMachineNotFoundError)
    return { kind: "state-machine", global: false, message: error.message };
  const call = awsCall(error);
  const api = call?.api;
  const root = rootCause(error);
  const code = call?.code ?? networkErrorCode(root) ?? awsErrorCode(root);
  const detail = cleanMessage(root);
  const action = api ? IAM_ACTIONS[api] : undefined;
  const service = action ? SERVICES[action.split(":")[0] ?? ""] : undefined;

  if (code !== undefined && CREDENTIAL_PROVIDER_ERRORS.has(code)) {
    const generic = /could not load credentials from any providers/i.test(detail);
    const profile = process.env.AWS_PROFILE;
    return {
      kind: "no-credentials",
      global: true,
      code,
      message: !generic
        ? `AWS credentials could not be loaded: ${detail} — ${DOCS}`
        : profile
          ? `no AWS credentials found for AWS_PROFILE=${clipText(profile, 64)} (is that profile in ~/.aws/config, and logged in?) — ${DOCS}`
          : `no AWS credentials found (configure a profile, or set AWS_PROFILE / AWS_ACCESS_KEY_ID) — ${DOCS}`,
    };
  }
  if (/^region is missing/i.test(detail)) {
    return {
      kind: "no-region",
      global: true,
      message: `no AWS region configured: pass --regions (e.g. --regions eu-west-1, or all), or set AWS_REGION or a region in your profile — ${DOCS}`,
    };
  }
  if (code !== undefined && REJECTED_CREDENTIALS.has(code)) {
    return {
      kind: "credentials-rejected",
      global: true,
      code,
      message: `AWS rejected the credentials (${code}${detail ? `: ${detail}` : ""}); refresh them (e.g. aws sso login) — ${DOCS}`,
    };
  }
  if (code === "AuthFailure") {
    return {
      kind: "credentials-rejected",
      global: false,
      code,
      message: `AWS could not validate the credentials (AuthFailure): check them, and that the region is enabled for the account — ${DOCS}`,
    };
  }
  if (code === "OptInRequired") {
    return {
      kind: "region-not-enabled",
      global: false,
      code,
      message: `the region is not enabled for this account (OptInRequired)`,
    };
  }
  if (code !== undefined && ACCESS_DENIED.has(code)) {
    return {
      kind: "access-denied",
      global: false,
      code,
      message: `access denied to ${action ?? api ?? "an AWS API"} (${code}${detail ? `: ${detail}` : ""}) — ${DOCS}`,
    };
  }
  if (code !== undefined && NETWORK_ERROR_CODES.has(code)) {
    const where = endpointOf(root);
    return {
      kind: "unreachable",
      global: false,
      code,
      message: `cannot reach ${service ?? "AWS"}${where ? ` at ${where}` : ""} (${code}): check the region name, the network and any proxy`,
    };
  }
  if (isThrottling(root)) {
    return {
      kind: "throttled",
      global: false,
      code,
      message: `AWS throttled ${api ?? "the audit"} (${code}) even after retries: try again later, or fewer regions at once`,
    };
  }
  if (api !== undefined || hasAwsMetadata(root)) {
    return {
      kind: "aws-error",
      global: false,
      ...(code ? { code } : {}),
      message: `${api ?? "AWS"} failed: ${code ?? "error"}${detail ? `: ${detail}` : ""}`,
    };
  }
  return {
    kind: "unexpected",
    global: true,
    message: `unexpected error: ${detail || String(root)} (set IMDSV2_GUARD_DEBUG=1 to see the stack)`,
  };
}

/** The guard's record of the failed AWS call (shared/aws/errors.ts classifyAwsError), wherever it is in the chain. */
function awsCall(error: unknown): AwsCallError | undefined {
  let current = error;
  for (let depth = 0; depth < 10 && current !== undefined && current !== null; depth++) {
    if (current instanceof AwsCallError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 10; depth++) {
    const cause = (current as { cause?: unknown } | null)?.cause;
    if (cause === undefined || cause === null) return current;
    current = cause;
  }
  return current;
}

function endpointOf(error: unknown): string | undefined {
  const e = error as { address?: unknown; port?: unknown; hostname?: unknown } | null;
  if (typeof e?.address === "string") return typeof e.port === "number" ? `${e.address}:${e.port}` : e.address;
  return typeof e?.hostname === "string" ? e.hostname : undefined;
}

function hasAwsMetadata(error: unknown): boolean {
  return typeof error === "object" && error !== null && "$metadata" in error;
}

/**
 * The SDK message on one line, without EC2's encoded authorization message (kilobytes of base64 that
 * `aws sts decode-authorization-message` turns back into text), and short.
 */
function cleanMessage(error: unknown): string {
  const raw = error instanceof Error ? error.message : typeof error === "string" ? error : "";
  return clipText(raw.replace(/\s*Encoded authorization failure message:.*$/s, ""), 240);
}

function clipText(raw: string, max: number): string {
  const text = raw.replace(/\s+/g, " ").trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
