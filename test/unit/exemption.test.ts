import type { Tag } from "@aws-sdk/client-ec2";
import { describe, expect, it } from "vitest";
import { type Exemption, type ExemptionKeys, exemptionOf } from "../../shared/domain/exemption.js";

const NOW = new Date("2026-11-28T10:00:00.000Z");
const KEYS: ExemptionKeys = { exemptTagKey: "imdsv2-guard:exempt", exemptUntilTagKey: "imdsv2-guard:exempt-until" };
const REASON = "vendor agent needs IMDSv1";

function tags(exempt?: string, until?: string, ...others: Tag[]): Tag[] {
  return [
    { Key: "Name", Value: "web" },
    ...(exempt === undefined ? [] : [{ Key: KEYS.exemptTagKey, Value: exempt }]),
    ...(until === undefined ? [] : [{ Key: KEYS.exemptUntilTagKey, Value: until }]),
    ...others,
  ];
}

describe("exemptionOf: tag combinations", () => {
  it.each<{ label: string; tags: Tag[] | undefined; expected: Exemption }>([
    { label: "no tags at all", tags: undefined, expected: { status: "none" } },
    { label: "an empty tag list", tags: [], expected: { status: "none" } },
    { label: "unrelated tags", tags: tags(), expected: { status: "none" } },
    {
      label: "a key differing only in case",
      tags: [{ Key: "IMDSv2-Guard:Exempt", Value: REASON }],
      expected: { status: "none" },
    },
    { label: "the exempt tag alone", tags: tags(REASON), expected: { status: "active", reason: REASON } },
    { label: "an empty reason", tags: tags(""), expected: { status: "active", reason: "(no reason given)" } },
    { label: "a blank reason", tags: tags("   "), expected: { status: "active", reason: "(no reason given)" } },
    { label: "a padded reason", tags: tags(`  ${REASON} `), expected: { status: "active", reason: REASON } },
    {
      label: "an exempt-until ahead",
      tags: tags(REASON, "2026-12-31"),
      expected: { status: "active", reason: REASON, until: "2026-12-31" },
    },
    {
      label: "an exempt-until behind",
      tags: tags(REASON, "2026-11-27"),
      expected: { status: "lapsed", reason: REASON, until: "2026-11-27" },
    },
    {
      label: "an exempt-until behind and an empty reason",
      tags: tags("", "2026-01-01"),
      expected: { status: "lapsed", reason: "(no reason given)", until: "2026-01-01" },
    },
  ])("$label → $expected.status", ({ tags: given, expected }) => {
    // Prepare
    const now = NOW;

    // Act
    const exemption = exemptionOf(given, KEYS, now);

    // Assess
    expect(exemption).toStrictEqual(expected);
  });

  it.each([
    { label: "ahead", until: "2099-01-01" },
    { label: "behind", until: "2020-01-01" },
    { label: "not a date", until: "soon" },
  ])("grants nothing on an exempt-until tag $label without the exempt tag", ({ until }) => {
    // Prepare
    const given = tags(undefined, until);

    // Act
    const exemption = exemptionOf(given, KEYS, NOW);

    // Assess
    expect(exemption).toStrictEqual({ status: "none" });
  });
});

describe("exemptionOf: dates", () => {
  it.each([
    { now: "2026-11-28T00:00:00.000Z", status: "active" },
    { now: "2026-11-28T23:59:59.998Z", status: "active" },
    { now: "2026-11-28T23:59:59.999Z", status: "lapsed" },
    { now: "2026-11-29T00:00:00.000Z", status: "lapsed" },
  ])("reads a date-only exempt-until as the end of that day, UTC (at $now: $status)", ({ now, status }) => {
    // Prepare
    const given = tags(REASON, "2026-11-28");

    // Act
    const exemption = exemptionOf(given, KEYS, new Date(now));

    // Assess
    expect(exemption.status).toBe(status);
  });

  it.each([
    { until: "2026-11-28T09:59:59Z", status: "lapsed" },
    { until: "2026-11-28T10:00:00Z", status: "lapsed" },
    { until: "2026-11-28T10:00:01Z", status: "active" },
    { until: "2026-11-28T10:01Z", status: "active" },
    { until: "2026-11-28T10:00:00.500Z", status: "active" },
    { until: "2026-11-28T12:00:00+03:00", status: "lapsed" },
    { until: "2026-11-28T08:00:00-03:00", status: "active" },
  ])("reads a full timestamp as that moment: $until → $status", ({ until, status }) => {
    // Prepare
    const given = tags(REASON, until);

    // Act
    const exemption = exemptionOf(given, KEYS, NOW);

    // Assess
    expect(exemption).toStrictEqual({ status, reason: REASON, until });
  });

  it.each([
    "next sprint",
    "",
    "31/12/2026",
    "12/31/2026",
    "20261231",
    "2026-13-01",
    "2026-12-31T10:00:00",
    "2026-12-31 10:00:00Z",
    "1735603200",
    "2026-12-31; DROP TABLE",
  ])("keeps an exemption whose exempt-until is not an ISO date (%j), with a warning", (until) => {
    // Prepare
    const given = tags(REASON, until);

    // Act
    const exemption = exemptionOf(given, KEYS, NOW);

    // Assess
    expect(exemption).toStrictEqual({
      status: "active",
      reason: REASON,
      warning: `The ${KEYS.exemptUntilTagKey} tag is not an ISO date; the exemption holds until it is fixed.`,
    });
  });

  it.each(["2026-02-30"])(
    "treats an impossible calendar date (%s) as not a date, rather than rolling it into the next month",
    (until) => {
      // Prepare
      const given = tags(REASON, until);

      // Act
      const exemption = exemptionOf(given, KEYS, new Date("2026-03-01T12:00:00.000Z"));

      // Assess
      expect(exemption).toMatchObject({ status: "active", warning: expect.stringContaining("not an ISO date") });
    },
  );
});

describe("exemptionOf: custom keys", () => {
  const custom: ExemptionKeys = { exemptTagKey: "ops:keep-imdsv1", exemptUntilTagKey: "ops:keep-imdsv1-until" };

  it("honours the configured keys", () => {
    // Prepare
    const given: Tag[] = [
      { Key: "ops:keep-imdsv1", Value: REASON },
      { Key: "ops:keep-imdsv1-until", Value: "2026-11-01" },
    ];

    // Act
    const exemption = exemptionOf(given, custom, NOW);

    // Assess
    expect(exemption).toStrictEqual({ status: "lapsed", reason: REASON, until: "2026-11-01" });
  });

  it("ignores the default keys when others are configured", () => {
    // Prepare
    const given = tags(REASON, "2099-01-01");

    // Act
    const exemption = exemptionOf(given, custom, NOW);

    // Assess
    expect(exemption).toStrictEqual({ status: "none" });
  });

  it("does not let the default exempt-until key shorten a custom exemption", () => {
    // Prepare
    const given: Tag[] = [
      { Key: "ops:keep-imdsv1", Value: REASON },
      { Key: KEYS.exemptUntilTagKey, Value: "2020-01-01" },
    ];

    // Act
    const exemption = exemptionOf(given, custom, NOW);

    // Assess
    expect(exemption).toStrictEqual({ status: "active", reason: REASON });
  });

  it("names the configured exempt-until key in the warning", () => {
    // Prepare
    const given: Tag[] = [
      { Key: "ops:keep-imdsv1", Value: REASON },
      { Key: "ops:keep-imdsv1-until", Value: "Q3" },
    ];

    // Act
    const exemption = exemptionOf(given, custom, NOW);

    // Assess
    expect(exemption).toMatchObject({ status: "active", warning: expect.stringContaining("ops:keep-imdsv1-until") });
  });
});
