import * as z from "zod";

/**
 * What Enforce did to one instance, as data. The watch after enforcing and the root cause decide from `kind`; the
 * sentence people read is derived from it by `describeEnforcement`, in one place.
 */
export const ENFORCEMENT_KINDS = [
  /** The guard set HttpTokens=required. */
  "set-required",
  /** Audit mode: the guard would have set it. */
  "would-set-required",
  /** HttpTokens was required before the guard acted (or someone else made it so). */
  "already-required",
  /** The IMDS endpoint is off: there is no HttpTokens to set. */
  "endpoint-disabled",
  "exempt",
  /** The safety gate held it: IMDSv1 was in use. */
  "held",
] as const;
export const enforcementKindSchema = z.enum(ENFORCEMENT_KINDS);
export type EnforcementKind = z.infer<typeof enforcementKindSchema>;

/**
 * How the guard knows its modify took effect:
 * - `answered`: EC2 answered the call with success;
 * - `answered-with-error`: EC2 answered with a 5xx, and the next describe showed the change in place;
 * - `intent-recorded`: an earlier run of this step stored in the ledger that it was about to call, stopped before
 *   reporting (crash, timeout, or a duplicate run of the same work), and the instance is `required` now;
 * - `attempt-stopped-after-call`: an earlier attempt of this step stopped (crash, timeout) after the guard had
 *   decided to call, the instance was recorded as `optional` before, and it is `required` now (the fallback when
 *   no intent could be stored);
 * - `reasserted`: the triggering event recorded `optional`, the describe already showed `required` (which may lag a
 *   change: EC2 is eventually consistent), and EC2 answered the guard's call to set it again with success.
 */
export const ENFORCEMENT_EVIDENCE = [
  "answered",
  "answered-with-error",
  "intent-recorded",
  "attempt-stopped-after-call",
  "reasserted",
] as const;

export const enforcementSchema = z.object({
  kind: enforcementKindSchema,
  /** HttpTokens before the guard acted, as the guard knows it ("optional", "required", "unknown"). */
  was: z.string().max(32).optional(),
  evidence: z.enum(ENFORCEMENT_EVIDENCE).optional(),
  /** already-required: the triggering event recorded `optional`, so someone other than the guard changed it since. */
  changedSinceEvent: z.boolean().optional(),
});
export type Enforcement = z.infer<typeof enforcementSchema>;

/** The sentence shown to people, derived from the data. */
export function describeEnforcement(enforcement: Enforcement): string {
  const was = enforcement.was ?? "unknown";
  switch (enforcement.kind) {
    case "set-required":
      switch (enforcement.evidence) {
        case "answered-with-error":
          return `set HttpTokens=required (was ${was}; EC2 answered the call with an error, but the change took)`;
        case "intent-recorded":
          return `set HttpTokens=required (was ${was}; the guard recorded the call before making it, its Lambda stopped before reporting, and the change is in place)`;
        case "attempt-stopped-after-call":
          return `set HttpTokens=required (was ${was}; the guard's Lambda stopped after the call, and the change is in place)`;
        case "reasserted":
          return `set HttpTokens=required (the event recorded ${was}; EC2's describe already showed required, which can lag a change, so the guard set it again)`;
        default:
          return `set HttpTokens=required (was ${was})`;
      }
    case "would-set-required":
      return `audit: would set HttpTokens=required (now ${was})`;
    case "already-required":
      return enforcement.changedSinceEvent
        ? "none: HttpTokens was already required (changed since the event recorded optional, not by the guard)"
        : "none: HttpTokens was already required";
    case "endpoint-disabled":
      return "none: the IMDS endpoint is disabled, so there is no HttpTokens to set";
    case "exempt":
      return "none: exempt";
    case "held":
      return "none: held";
  }
}

/** The guard changed this instance: what the watch for refused IMDSv1 calls after enforcing covers. */
export function guardSetRequired(enforcement: Enforcement | undefined): boolean {
  return enforcement?.kind === "set-required";
}

/** The instance allowed IMDSv1 when the guard found it: only those point at a source that needs fixing. */
export function foundAllowingImdsV1(enforcement: Enforcement | undefined): boolean {
  return (
    enforcement?.kind === "set-required" || enforcement?.kind === "would-set-required" || enforcement?.kind === "held"
  );
}
