import { type ProbeReading, probeReadingSchema, type Verdict } from "./model.js";

export interface ProbeJudgement {
  verdict: Extract<Verdict, "pass" | "fail" | "unverified">;
  reason: string;
  warnings: string[];
}

/**
 * Judges what the probe saw from inside the instance. The API's HttpTokens is not consulted on purpose: the point of
 * the probe is that only a refused IMDSv1 request proves IMDSv1 is off.
 */
export function judgeProbe(reading: ProbeReading): ProbeJudgement {
  const { v1, token, v2 } = reading;
  if (v1 === 200) {
    return { verdict: "fail", reason: "IMDSv1 still answers: a GET without a token returned 200.", warnings: [] };
  }
  if (v1 === 403) {
    return {
      verdict: "pass",
      reason: "IMDS disabled: the metadata endpoint refuses every request (403), so IMDSv1 cannot leak credentials.",
      warnings: [],
    };
  }
  if (v1 === 401) {
    if (token === 200 && v2 === 200) {
      return { verdict: "pass", reason: "IMDSv1 refused (401); the IMDSv2 token flow works.", warnings: [] };
    }
    return {
      verdict: "pass",
      reason: "IMDSv1 refused (401).",
      warnings: [
        `The IMDSv2 token flow did not complete (token ${show(token)}, GET with token ${show(v2)}): software on the instance may be unable to read its metadata.`,
      ],
    };
  }
  if (v1 === null) {
    return {
      verdict: "unverified",
      reason: "Nothing answered at the metadata address (no HTTP client, a firewall rule, or a hop limit).",
      warnings: [],
    };
  }
  return { verdict: "unverified", reason: `Unexpected answer to a GET without a token: HTTP ${v1}.`, warnings: [] };
}

function show(status: number | null): string {
  return status === null ? "no answer" : `HTTP ${status}`;
}

/**
 * The probe prints one line of JSON; anything else on stdout (a login banner, a profile script's echo) is ignored.
 * The last line that parses as a reading wins.
 */
export function parseProbeOutput(stdout: string): ProbeReading | undefined {
  const lines = stdout.split(/\r?\n/).reverse();
  for (const line of lines) {
    const trimmed = line.trim();
    if (!trimmed.startsWith("{")) continue;
    try {
      const parsed = probeReadingSchema.safeParse(JSON.parse(trimmed));
      if (parsed.success) return parsed.data;
    } catch {
      // not JSON: keep looking
    }
  }
  return undefined;
}
