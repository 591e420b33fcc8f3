import { describe, expect, it } from "vitest";
import { matchesEventPattern } from "./event-pattern.js";

// Cases follow the examples of EventBridge's "Content filtering in event patterns" documentation.
describe("matchesEventPattern", () => {
  const event = {
    source: "aws.ec2",
    "detail-type": "AWS API Call via CloudTrail",
    detail: {
      state: "running",
      count: 5,
      flag: false,
      nothing: null,
      tags: ["a", "b"],
      empty: [],
      userIdentity: { type: "IAMUser", arn: "arn:aws:iam::123456789012:user/alice" },
    },
  };

  it("matches exact values, ORed within a field and ANDed across fields", () => {
    expect(matchesEventPattern({ source: ["aws.ec2"] }, event)).toBe(true);
    expect(matchesEventPattern({ source: ["aws.s3", "aws.ec2"] }, event)).toBe(true);
    expect(matchesEventPattern({ source: ["aws.s3"] }, event)).toBe(false);
    expect(matchesEventPattern({ source: ["aws.ec2"], "detail-type": ["Other"] }, event)).toBe(false);
    expect(matchesEventPattern({ detail: { count: [5], flag: [false], nothing: [null] } }, event)).toBe(true);
    expect(matchesEventPattern({ detail: { count: ["5"] } }, event)).toBe(false);
  });

  it("matches an array event value when any element matches", () => {
    expect(matchesEventPattern({ detail: { tags: ["b"] } }, event)).toBe(true);
    expect(matchesEventPattern({ detail: { tags: ["c"] } }, event)).toBe(false);
    expect(matchesEventPattern({ detail: { tags: [{ prefix: "a" }] } }, event)).toBe(true);
  });

  it("matches prefix on strings only", () => {
    expect(matchesEventPattern({ detail: { state: [{ prefix: "run" }] } }, event)).toBe(true);
    expect(matchesEventPattern({ detail: { state: [{ prefix: "stop" }] } }, event)).toBe(false);
    expect(matchesEventPattern({ detail: { count: [{ prefix: "5" }] } }, event)).toBe(false);
  });

  it("matches anything-but for values, lists and prefixes, never on a missing field", () => {
    expect(matchesEventPattern({ detail: { state: [{ "anything-but": "stopped" }] } }, event)).toBe(true);
    expect(matchesEventPattern({ detail: { state: [{ "anything-but": "running" }] } }, event)).toBe(false);
    expect(matchesEventPattern({ detail: { state: [{ "anything-but": ["stopped", "running"] }] } }, event)).toBe(false);
    expect(matchesEventPattern({ detail: { count: [{ "anything-but": 4 }] } }, event)).toBe(true);
    const notAlice = {
      detail: { userIdentity: { arn: [{ "anything-but": { prefix: "arn:aws:iam::123456789012:" } }] } },
    };
    expect(matchesEventPattern(notAlice, event)).toBe(false);
    const notBob = { detail: { userIdentity: { arn: [{ "anything-but": { prefix: "arn:aws:sts::" } }] } } };
    expect(matchesEventPattern(notBob, event)).toBe(true);
    expect(matchesEventPattern({ detail: { missing: [{ "anything-but": "x" }] } }, event)).toBe(false);
    expect(matchesEventPattern({ detail: { nothing: [{ "anything-but": "x" }] } }, event)).toBe(false);
  });

  it("matches exists against present and absent leaves", () => {
    expect(matchesEventPattern({ detail: { state: [{ exists: true }] } }, event)).toBe(true);
    expect(matchesEventPattern({ detail: { state: [{ exists: false }] } }, event)).toBe(false);
    expect(matchesEventPattern({ detail: { errorCode: [{ exists: false }] } }, event)).toBe(true);
    expect(matchesEventPattern({ detail: { errorCode: [{ exists: true }] } }, event)).toBe(false);
    expect(matchesEventPattern({ detail: { nothing: [{ exists: true }] } }, event)).toBe(true);
    expect(matchesEventPattern({ detail: { empty: [{ exists: true }] } }, event)).toBe(false);
    // Below a missing parent, only exists:false can match.
    expect(matchesEventPattern({ detail: { absent: { leaf: [{ exists: false }] } } }, event)).toBe(true);
    expect(matchesEventPattern({ detail: { absent: { leaf: ["x"] } } }, event)).toBe(false);
  });

  it("never matches a leaf matcher against an object", () => {
    expect(matchesEventPattern({ detail: { userIdentity: [{ exists: false }] } }, event)).toBe(false);
    expect(matchesEventPattern({ detail: { userIdentity: [{ exists: true }] } }, event)).toBe(false);
  });

  it("matches $or when at least one alternative matches, at the level it appears", () => {
    const pattern = {
      detail: { $or: [{ state: ["stopped"] }, { userIdentity: { type: ["IAMUser"] } }] },
    };
    expect(matchesEventPattern(pattern, event)).toBe(true);
    const neither = { detail: { $or: [{ state: ["stopped"] }, { count: [6] }] } };
    expect(matchesEventPattern(neither, event)).toBe(false);
    const andedWithSibling = { source: ["aws.s3"], $or: [{ source: ["aws.ec2"] }, { detail: { count: [5] } }] };
    expect(matchesEventPattern(andedWithSibling, event)).toBe(false);
  });

  it("shows why a rule on a field the event lacks drops the event", () => {
    const serviceCall = { detail: { userIdentity: { type: "AWSService", invokedBy: "ec2.amazonaws.com" } } };
    const onlyAnythingBut = { detail: { userIdentity: { arn: [{ "anything-but": { prefix: "arn:aws:sts::" } }] } } };
    expect(matchesEventPattern(onlyAnythingBut, serviceCall)).toBe(false);
    const withExistsBranch = {
      detail: {
        $or: [
          { userIdentity: { arn: [{ "anything-but": { prefix: "arn:aws:sts::" } }] } },
          { userIdentity: { arn: [{ exists: false }] } },
        ],
      },
    };
    expect(matchesEventPattern(withExistsBranch, serviceCall)).toBe(true);
  });

  it("refuses operators and shapes it does not implement instead of ignoring them", () => {
    expect(() => matchesEventPattern({ detail: { count: [{ numeric: [">", 1] }] } }, event)).toThrow(/numeric/);
    expect(() => matchesEventPattern({ detail: { state: [{ suffix: "ing" }] } }, event)).toThrow(/suffix/);
    expect(() => matchesEventPattern({ detail: { state: [{ "anything-but": { suffix: "x" } }] } }, event)).toThrow(
      /anything-but/,
    );
    expect(() => matchesEventPattern({ detail: { state: [{ prefix: "a", exists: true }] } }, event)).toThrow(
      /exactly one operator/,
    );
    expect(() => matchesEventPattern({ detail: { state: "running" } }, event)).toThrow(/array of matchers/);
    expect(() => matchesEventPattern({ $or: [{ source: ["aws.ec2"] }] }, event)).toThrow(/\$or/);
    expect(() => matchesEventPattern({ source: [] }, event)).toThrow(/empty/);
    expect(() => matchesEventPattern([], event)).toThrow(/JSON object/);
  });
});

/**
 * The rows of the operator table in "Comparison operators for use in event patterns in Amazon EventBridge" (Amazon
 * EventBridge User Guide) this matcher implements, each with the page's own rule syntax and an event it matches and
 * one it does not. No maintained npm package implements EventBridge's matching (AWS's Event Ruler is Java), so the
 * page is the reference; the rows it does not implement must be refused, never ignored.
 */
describe("the operator table of the EventBridge documentation", () => {
  it.each<[string, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>]>([
    [
      "And: Location is New York and Day is Monday",
      { Location: ["New York"], Day: ["Monday"] },
      { Location: "New York", Day: "Monday" },
      { Location: "New York", Day: "Tuesday" },
    ],
    [
      "Anything-but: state is any value besides initializing",
      { state: [{ "anything-but": "initializing" }] },
      { state: "running" },
      { state: "initializing" },
    ],
    [
      "Anything-but (begins with): Region is not in the US",
      { Region: [{ "anything-but": { prefix: "us-" } }] },
      { Region: "eu-west-1" },
      { Region: "us-east-1" },
    ],
    [
      "Begins with: Region is in the US",
      { Region: [{ prefix: "us-" }] },
      { Region: "us-east-1" },
      { Region: "eu-west-1" },
    ],
    ["Empty: LastName is empty", { LastName: [""] }, { LastName: "" }, { LastName: "Doe" }],
    ["Equals: Name is Alice", { Name: ["Alice"] }, { Name: "Alice" }, { Name: "alice" }],
    ["Exists: ProductName exists", { ProductName: [{ exists: true }] }, { ProductName: "x" }, { Other: "x" }],
    [
      "Does not exist: ProductName does not exist",
      { ProductName: [{ exists: false }] },
      { Other: "x" },
      { ProductName: "x" },
    ],
    [
      "Or: Location is New York or Day is Monday ($or)",
      { $or: [{ Location: ["New York"] }, { Day: ["Monday"] }] },
      { Location: "Boston", Day: "Monday" },
      { Location: "Boston", Day: "Tuesday" },
    ],
  ])("%s", (_, pattern, matching, other) => {
    expect(matchesEventPattern(pattern, matching)).toBe(true);
    expect(matchesEventPattern(pattern, other)).toBe(false);
  });

  it.each<[string, Record<string, unknown>]>([
    ["Ends with", { FileName: [{ suffix: ".png" }] }],
    ["Equals (ignore case)", { Name: [{ "equals-ignore-case": "alice" }] }],
    ["Numeric", { Price: [{ numeric: [">", 0, "<=", 5] }] }],
    ["IP address matching", { "source-ip": [{ cidr: "10.0.0.0/24" }] }],
    ["Wildcard", { FilePath: [{ wildcard: "*/lib/*" }] }],
    ["Anything-but (ends with)", { FileName: [{ "anything-but": { suffix: ".png" } }] }],
  ])("refuses the table's %s row instead of ignoring it", (_, pattern) => {
    expect(() => matchesEventPattern(pattern, { FileName: "a.png" })).toThrow(TypeError);
  });
});
