/**
 * A small EventBridge event-pattern matcher for tests, so the rule in the packaged template can be checked against
 * real-shaped events without calling AWS (TestEventPattern is an API call). No maintained npm package does this
 * offline; AWS's own matcher (Event Ruler) is Java.
 *
 * It implements exactly the operators the guard's rule uses, with EventBridge's semantics:
 * - exact values (string, number, boolean, null): equal to the event value;
 * - `{ "prefix": "s" }`: the event value is a string starting with s;
 * - `{ "anything-but": v | [v...] | { "prefix": "s" } }`: the field is present, holds a string or number, and is not
 *   (one of) v / does not start with s;
 * - `{ "exists": true | false }`: the field is present (as a leaf) or absent;
 * - `"$or": [pattern, ...]` at any level: at least one of the sub-patterns matches at that level.
 * Fields are ANDed; the values in one field's array are ORed; when the event value is an array, the field matches
 * when any element does. A field the pattern names and the event lacks matches only `exists: false`: that is why a
 * rule on `userIdentity.arn` drops events that have no `arn`.
 *
 * Any other operator (numeric, suffix, wildcard, cidr, equals-ignore-case...) throws, so a test can never pass
 * because the matcher silently ignored part of a pattern.
 */
export function matchesEventPattern(pattern: unknown, event: unknown): boolean {
  if (!isObject(pattern)) throw new TypeError("An event pattern must be a JSON object");
  return matchObject(pattern, isObject(event) ? event : undefined, "");
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function matchObject(pattern: JsonObject, event: JsonObject | undefined, path: string): boolean {
  for (const [key, sub] of Object.entries(pattern)) {
    const here = path ? `${path}.${key}` : key;
    if (key === "$or") {
      if (!Array.isArray(sub) || sub.length < 2 || !sub.every(isObject)) {
        throw new TypeError(`${here}: $or takes an array of at least two patterns`);
      }
      if (!sub.some((alternative) => matchObject(alternative, event, path))) return false;
      continue;
    }
    const value = event?.[key];
    if (Array.isArray(sub)) {
      if (!matchLeaf(sub, value, here)) return false;
    } else if (isObject(sub)) {
      // A missing parent behaves like an empty object: only `exists: false` below it can still match.
      if (value !== undefined && !isObject(value)) return false;
      if (!matchObject(sub, value, here)) return false;
    } else {
      throw new TypeError(`${here}: a pattern field must be an array of matchers or a nested pattern`);
    }
  }
  return true;
}

function matchLeaf(matchers: unknown[], value: unknown, path: string): boolean {
  if (matchers.length === 0) throw new TypeError(`${path}: an empty matcher array matches nothing`);
  // Matchers apply to leaves only; EventBridge does not match them against an object.
  if (isObject(value)) return false;
  const present = value !== undefined && !(Array.isArray(value) && value.length === 0);
  const candidates: unknown[] = Array.isArray(value) ? value : [value];
  return matchers.some((matcher) => {
    if (isObject(matcher)) {
      const keys = Object.keys(matcher);
      if (keys.length !== 1) throw new TypeError(`${path}: a matcher object must have exactly one operator`);
      if ("exists" in matcher) {
        if (typeof matcher.exists !== "boolean") throw new TypeError(`${path}: exists takes true or false`);
        return matcher.exists === present;
      }
      // Checked even when the field is absent: an unsupported operator must throw whatever the event holds.
      if (!("prefix" in matcher) && !("anything-but" in matcher)) {
        throw new TypeError(`${path}: operator ${keys[0]} is not supported by this matcher`);
      }
      return present && candidates.some((candidate) => matchOperator(matcher, candidate, path));
    }
    if (!isScalar(matcher)) throw new TypeError(`${path}: unsupported matcher ${JSON.stringify(matcher)}`);
    return present && candidates.some((candidate) => candidate === matcher);
  });
}

function matchOperator(matcher: JsonObject, candidate: unknown, path: string): boolean {
  if ("prefix" in matcher) {
    const prefix = matcher.prefix;
    if (typeof prefix !== "string") throw new TypeError(`${path}: prefix takes a string`);
    return typeof candidate === "string" && candidate.startsWith(prefix);
  }
  if ("anything-but" in matcher) {
    const excluded = matcher["anything-but"];
    if (typeof candidate !== "string" && typeof candidate !== "number") return false;
    if (isObject(excluded)) {
      const keys = Object.keys(excluded);
      if (keys.length !== 1 || typeof excluded.prefix !== "string") {
        throw new TypeError(`${path}: anything-but supports only { prefix: string } as a nested operator`);
      }
      return typeof candidate === "string" && !candidate.startsWith(excluded.prefix);
    }
    const list: unknown[] = Array.isArray(excluded) ? excluded : [excluded];
    if (list.length === 0 || !list.every((v) => typeof v === "string" || typeof v === "number")) {
      throw new TypeError(`${path}: anything-but takes a string, a number, or a non-empty list of them`);
    }
    return !list.includes(candidate);
  }
  throw new TypeError(`${path}: operator ${Object.keys(matcher)[0]} is not supported by this matcher`);
}

function isScalar(value: unknown): value is string | number | boolean | null {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}
