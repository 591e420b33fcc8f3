/**
 * How AWS delivers a scenario's events to the guard's rule targets: what CloudTrail does to an oversized record
 * before EventBridge sees it, and what EventBridge refuses.
 *
 * | Behaviour | AWS documentation page |
 * | --- | --- |
 * | A CloudTrail record field (`requestParameters`, `responseElements`) over the maximum field size is truncated: the field is replaced by `{ "omitted": true }` | "CloudTrail record contents for management, data, and network activity events" (AWS CloudTrail User Guide) |
 * | An event whose entry exceeds 256 KB (Time 14 bytes, plus the UTF-8 bytes of Source, DetailType, Detail and each Resources entry) is refused | "Amazon EventBridge quotas"; "Calculating Amazon EventBridge PutEvents event entry size"; "PutEvents" |
 *
 * CloudTrail's page states that it truncates and how the truncated field shows; the size limit itself is 100 KB per
 * field (the figure AWS re:Post answers quote from that page); the simulation counts it as 100,000 bytes, the stricter
 * reading.
 */

/** CloudTrail's maximum size of one record field, in bytes of its JSON. */
export const CLOUDTRAIL_MAX_FIELD_BYTES = 100_000;
/** EventBridge's largest event entry. */
export const EVENTBRIDGE_MAX_ENTRY_BYTES = 262_144;

const TRUNCATED_FIELDS = ["requestParameters", "responseElements"] as const;

export type Delivery = { event: unknown; truncated: string[] } | { refused: string };

/** The event as AWS delivers it to a rule's target, or why AWS would not deliver it. */
export function deliverAsAws(event: unknown): Delivery {
  const { event: recorded, truncated } = truncateCloudTrailRecord(event);
  const size = eventBridgeEntryBytes(recorded);
  if (size > EVENTBRIDGE_MAX_ENTRY_BYTES) {
    return {
      refused: `EventBridge refuses an event of ${size} bytes: an entry is at most ${EVENTBRIDGE_MAX_ENTRY_BYTES} bytes`,
    };
  }
  return { event: recorded, truncated };
}

/** A CloudTrail record ("AWS API Call via CloudTrail") with each oversized field replaced as CloudTrail replaces it. */
export function truncateCloudTrailRecord(event: unknown): { event: unknown; truncated: string[] } {
  const envelope = event as { "detail-type"?: unknown; detail?: unknown } | null;
  if (envelope?.["detail-type"] !== "AWS API Call via CloudTrail" || !isObject(envelope.detail)) {
    return { event, truncated: [] };
  }
  const detail: Record<string, unknown> = { ...envelope.detail };
  const truncated: string[] = [];
  for (const field of TRUNCATED_FIELDS) {
    const value = detail[field];
    if (value === undefined || value === null) continue;
    if (Buffer.byteLength(JSON.stringify(value), "utf8") > CLOUDTRAIL_MAX_FIELD_BYTES) {
      detail[field] = { omitted: true };
      truncated.push(field);
    }
  }
  return truncated.length ? { event: { ...envelope, detail }, truncated } : { event, truncated };
}

/** The size EventBridge counts for an event's PutEvents entry ("Calculating ... PutEvents event entry size"). */
export function eventBridgeEntryBytes(event: unknown): number {
  const e = isObject(event) ? event : {};
  const bytes = (v: unknown) => (typeof v === "string" ? Buffer.byteLength(v, "utf8") : 0);
  let size = e.time !== undefined ? 14 : 0;
  size += bytes(e.source) + bytes(e["detail-type"]);
  if (e.detail !== undefined) size += Buffer.byteLength(JSON.stringify(e.detail), "utf8");
  if (Array.isArray(e.resources)) for (const r of e.resources) size += bytes(r);
  return size;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
