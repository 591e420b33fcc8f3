/** An EC2 tag as the SDK returns it; declared here so the domain needs no AWS SDK. */
export interface Tag {
  Key?: string | undefined;
  Value?: string | undefined;
}

export type Exemption =
  | { status: "none" }
  | { status: "active"; reason: string; until?: string; warning?: string }
  | { status: "lapsed"; reason: string; until: string };

export interface ExemptionKeys {
  exemptTagKey: string;
  exemptUntilTagKey: string;
}

/**
 * Reads an instance's exemption from its tags. The exemption tag's value is the reason; the optional exempt-until
 * tag (an ISO date) makes it expire, so "we'll fix it next sprint" does not become forever. An exempt-until that is
 * not a date keeps the exemption (the guard must not break an app over a typo) and says so.
 */
export function exemptionOf(tags: readonly Tag[] | undefined, keys: ExemptionKeys, now: Date): Exemption {
  const value = (key: string) => tags?.find((t) => t.Key === key)?.Value;
  const reasonTag = value(keys.exemptTagKey);
  const untilTag = value(keys.exemptUntilTagKey);
  // The exempt-until tag only qualifies an exemption; on its own it exempts nothing.
  if (reasonTag === undefined) return { status: "none" };
  const reason = reasonTag.trim() || "(no reason given)";
  if (untilTag === undefined) return { status: "active", reason };
  const until = parseUntil(untilTag);
  if (until === undefined) {
    return {
      status: "active",
      reason,
      warning: `The ${keys.exemptUntilTagKey} tag is not an ISO date; the exemption holds until it is fixed.`,
    };
  }
  if (now.getTime() >= until.getTime()) return { status: "lapsed", reason, until: untilTag };
  return { status: "active", reason, until: untilTag };
}

/** `2026-12-31` means the end of that day (UTC); a full timestamp means that moment. */
function parseUntil(text: string): Date | undefined {
  const trimmed = text.trim();
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(trimmed);
  if (!dateOnly && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(trimmed))
    return undefined;
  const parsed = new Date(dateOnly ? `${trimmed}T23:59:59.999Z` : trimmed);
  if (Number.isNaN(parsed.getTime())) return undefined;
  // `new Date` rolls 2026-02-30 over to March 2nd; a date that does not round-trip is not a date.
  if (dateOnly && parsed.toISOString().slice(0, 10) !== trimmed) return undefined;
  return parsed;
}
