import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { EndpointReading, ProbeReading } from "../../shared/domain/model.js";
import { judgeProbe } from "../../shared/domain/probe-verdict.js";

const SILENT: EndpointReading = { v1: null, v1Credentials: null, token: null, v2: null };

/** An IPv4 reading whose two token-less paths answered alike, with the IPv6 endpoint silent (AWS's default). */
function reading(v1: number | null, token: number | null, v2: number | null): ProbeReading {
  return { v1, v1Credentials: v1, token, v2, client: "curl", v6: SILENT };
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

  it.each([404, 500, 400, 0])("is unverified on an unexpected status %i without a token", (status) => {
    // Prepare
    const seen = reading(status, 200, 200);

    // Act
    const judgement = judgeProbe(seen);

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toContain(`unexpected answer to a GET without a token: HTTP ${status}`);
  });

  it.each([301, 302, 307, 308])("is unverified, naming the redirect, when a token-less GET answers %i", (status) => {
    // Prepare: the 401 behind the redirect is what a client that follows it would have read
    const seen = reading(status, 200, 200);

    // Act
    const judgement = judgeProbe(seen);

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toContain(`redirect (HTTP ${status})`);
  });

  it("is unverified when only the token PUT is redirected", () => {
    // Act
    const judgement = judgeProbe({ ...reading(401, 302, null) });

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toContain("redirect (HTTP 302)");
  });
});

describe("judgeProbe: IMDS disabled only when it is", () => {
  it.each([
    { v2: 200, shown: "GET with token HTTP 200" },
    { v2: 401, shown: "GET with token HTTP 401" },
    { v2: null, shown: "GET with token no answer" },
  ])("is unverified when IMDSv1 gets 403 but the token PUT succeeds (v2 $v2)", ({ v2, shown }) => {
    // Act
    const judgement = judgeProbe(reading(403, 200, v2));

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toContain("the token PUT answered 200");
    expect(judgement.reason).toContain(shown);
    expect(judgement.reason).not.toContain("IMDS disabled");
  });
});

describe("judgeProbe: the credentials path", () => {
  it("fails when only the credentials path answers without a token", () => {
    // Act
    const judgement = judgeProbe({ ...reading(401, 200, 200), v1Credentials: 200 });

    // Assess
    expect(judgement.verdict).toBe("fail");
    expect(judgement.reason).toContain("iam/security-credentials/");
    expect(judgement.reason).not.toContain("the listing");
  });

  it.each([null, 404, 500])("is unverified when the listing refuses but the credentials path gives %s", (creds) => {
    // Act
    const judgement = judgeProbe({ ...reading(401, 200, 200), v1Credentials: creds });

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toContain("iam/security-credentials/");
  });

  it("is unverified for a reading from an older probe, without the second path or IPv6", () => {
    // Act
    const judgement = judgeProbe({ v1: 401, token: 200, v2: 200, client: "curl" });

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toContain("older probe");
  });
});

describe("judgeProbe: both endpoints", () => {
  const REFUSING: EndpointReading = { v1: 401, v1Credentials: 401, token: 200, v2: 200 };
  const ANSWERING: EndpointReading = { v1: 200, v1Credentials: 200, token: 200, v2: 200 };

  it("passes when IPv4 does not answer but IPv6 refuses, and says so", () => {
    // Act
    const judgement = judgeProbe({ ...SILENT, client: "curl", v6: REFUSING });

    // Assess
    expect(judgement).toEqual({
      verdict: "pass",
      reason: expect.stringMatching(/IMDSv1 refused \(401\) on IPv6, both paths.*IPv4 did not answer\./),
      warnings: [],
    });
  });

  it("passes naming both when both refuse", () => {
    // Act
    const judgement = judgeProbe({ ...REFUSING, client: "curl", v6: REFUSING });

    // Assess
    expect(judgement.verdict).toBe("pass");
    expect(judgement.reason).toContain("on IPv4,");
    expect(judgement.reason).toContain("on IPv6,");
    expect(judgement.reason).not.toContain("did not answer");
  });

  it("fails when IPv6 answers IMDSv1 though IPv4 refuses", () => {
    // Act
    const judgement = judgeProbe({ ...REFUSING, client: "curl", v6: ANSWERING });

    // Assess
    expect(judgement.verdict).toBe("fail");
    expect(judgement.reason).toContain("IPv6: a GET without a token returned 200");
    expect(judgement.reason).not.toContain("IPv4:");
  });

  it("is unverified when IPv6 answers oddly, even though IPv4 refuses", () => {
    // Act
    const judgement = judgeProbe({ ...REFUSING, client: "curl", v6: { ...SILENT, v1: 500 } });

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toContain("IPv6: unexpected answer");
  });

  it("warns per endpoint when one endpoint's token flow breaks", () => {
    // Act
    const judgement = judgeProbe({ ...REFUSING, client: "curl", v6: { ...REFUSING, token: null, v2: null } });

    // Assess
    expect(judgement.verdict).toBe("pass");
    expect(judgement.warnings).toEqual([expect.stringContaining("on IPv6 (token no answer")]);
  });

  it("is unverified when neither endpoint answers", () => {
    // Act
    const judgement = judgeProbe({ ...SILENT, client: "curl", v6: SILENT });

    // Assess
    expect(judgement.verdict).toBe("unverified");
    expect(judgement.reason).toContain("IPv4 or IPv6");
  });
});

describe("the table of what the probe proves (docs/probe.md)", () => {
  /** The rows of the table in docs/probe.md, "From answers to a verdict": IPv4 statuses, IPv6 statuses, verdict. */
  function readmeRows(): Array<{ v4: EndpointReading; v6: EndpointReading; verdict: string; line: string }> {
    const readme = readFileSync("docs/probe.md", "utf8");
    const start = readme.indexOf("| IPv4 v1, v1Credentials, token, v2 |");
    const table = readme.slice(start, readme.indexOf("\n\n", start)).split("\n").slice(2);
    const endpoint = (cell: string): EndpointReading => {
      const [v1, v1Credentials, token, v2] = cell.split(",").map((s) => (s.trim() === "null" ? null : Number(s)));
      return { v1: v1 ?? null, v1Credentials: v1Credentials ?? null, token: token ?? null, v2: v2 ?? null };
    };
    return table.map((line) => {
      const [, v4 = "", v6 = "", verdict = ""] = line.split("|");
      return { v4: endpoint(v4), v6: endpoint(v6), verdict: verdict.trim().replaceAll("`", ""), line };
    });
  }

  it("has rows for every verdict the probe can give", () => {
    // Assess
    expect(new Set(readmeRows().map((row) => row.verdict))).toEqual(new Set(["pass", "fail", "unverified"]));
  });

  it.each(readmeRows().map((row) => [row.line, row] as const))("matches judgeProbe: %s", (_line, row) => {
    // Act
    const judgement = judgeProbe({ ...row.v4, client: "curl", v6: row.v6 });

    // Assess
    expect(judgement.verdict).toBe(row.verdict);
  });
});
