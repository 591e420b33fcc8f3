import { describe, expect, it } from "vitest";
import type { ProbeReading } from "../../shared/domain/model.js";
import { judgeProbe } from "../../shared/domain/probe-verdict.js";

function reading(v1: number | null, token: number | null, v2: number | null): ProbeReading {
  return { v1, token, v2, client: "curl" };
}

describe("judgeProbe", () => {
  it("passes without warnings when IMDSv1 is refused and the IMDSv2 token flow works", () => {
    // Prepare
    const seen = reading(401, 200, 200);

    // Act
    const judgement = judgeProbe(seen);

    // Assess
    expect(judgement).toEqual({ verdict: "pass", reason: expect.stringContaining("401"), warnings: [] });
  });

  it.each([
    { token: 200, v2: 200 },
    { token: 401, v2: 200 },
    { token: null, v2: null },
    { token: 200, v2: 401 },
    { token: 403, v2: 403 },
  ])("fails whenever IMDSv1 answers 200 (token $token, v2 $v2)", ({ token, v2 }) => {
    // Prepare
    const seen = reading(200, token, v2);

    // Act
    const judgement = judgeProbe(seen);

    // Assess
    expect(judgement.verdict).toBe("fail");
    expect(judgement.reason).toContain("IMDSv1 still answers");
    expect(judgement.warnings).toEqual([]);
  });

  it.each([
    { token: 403, v2: 403 },
    { token: null, v2: null },
  ])("passes noting that IMDS is disabled when IMDSv1 gets 403 (token $token, v2 $v2)", ({ token, v2 }) => {
    // Prepare
    const seen = reading(403, token, v2);

    // Act
    const judgement = judgeProbe(seen);

    // Assess
    expect(judgement.verdict).toBe("pass");
    expect(judgement.reason).toContain("IMDS disabled");
    expect(judgement.warnings).toEqual([]);
  });

  it.each([
    { token: null, v2: null, shown: ["token no answer", "GET with token no answer"] },
    { token: 403, v2: null, shown: ["token HTTP 403", "GET with token no answer"] },
    { token: 200, v2: 401, shown: ["token HTTP 200", "GET with token HTTP 401"] },
    { token: 200, v2: null, shown: ["token HTTP 200", "GET with token no answer"] },
    { token: 500, v2: 500, shown: ["token HTTP 500", "GET with token HTTP 500"] },
  ])(
    "passes with a warning when IMDSv1 is refused but the token flow breaks (token $token, v2 $v2)",
    ({ token, v2, shown }) => {
      // Prepare
      const seen = reading(401, token, v2);

      // Act
      const judgement = judgeProbe(seen);

      // Assess
      expect(judgement.verdict).toBe("pass");
      expect(judgement.reason).toContain("IMDSv1 refused (401)");
      expect(judgement.warnings).toHaveLength(1);
      for (const part of shown) expect(judgement.warnings[0]).toContain(part);
    },
  );

  it("is unverified when nothing answered the GET without a token", () => {
    // Prepare
    const seen = reading(null, null, null);

    // Act
    const judgement = judgeProbe(seen);

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toContain("Nothing answered");
    expect(judgement.warnings).toEqual([]);
  });

  it.each([404, 500, 400, 302, 0])("is unverified on an unexpected status %i without a token", (status) => {
    // Prepare
    const seen = reading(status, 200, 200);

    // Act
    const judgement = judgeProbe(seen);

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toBe(`Unexpected answer to a GET without a token: HTTP ${status}.`);
  });
});
