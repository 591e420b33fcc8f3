import { type EndpointReading, type ProbeReading, probeReadingSchema, type Verdict } from "./model.js";

export interface ProbeJudgement {
  verdict: Extract<Verdict, "pass" | "fail" | "unverified">;
  reason: string;
  warnings: string[];
}

type EndpointName = "IPv4" | "IPv6";

/** What one endpoint's answers prove on their own. */
type EndpointJudgement =
  | { kind: "silent" }
  | { kind: "fail"; reason: string }
  | { kind: "unverified"; reason: string }
  | { kind: "disabled" }
  | { kind: "refused"; tokenFlow: string | undefined };

const LISTING = "the listing";
const CREDENTIALS = "the credentials path (iam/security-credentials/)";

/**
 * Judges what the probe saw from inside the instance. The API's HttpTokens is not consulted on purpose: the point of
 * the probe is that only a refused IMDSv1 request proves IMDSv1 is off. Every endpoint that answered (IPv4, IPv6)
 * must refuse a token-less GET on both paths; one that did not answer at all proves nothing either way.
 */
export function judgeProbe(reading: ProbeReading): ProbeJudgement {
  if (reading.v1Credentials === undefined || reading.v6 === undefined) {
    // What is missing can only hide a refusal, never excuse an answer.
    if (reading.v1 === 200 || reading.v1Credentials === 200) {
      return {
        verdict: "fail",
        reason: `IMDSv1 still answers on IPv4: a GET without a token returned 200 for ${LISTING}.`,
        warnings: [],
      };
    }
    return {
      verdict: "unverified",
      reason: `The probe's answer lacks the credentials path or the IPv6 endpoint (IPv4 GET without a token: ${show(reading.v1)}); an older probe proves too little.`,
      warnings: [],
    };
  }
  const v4: EndpointReading = {
    v1: reading.v1,
    v1Credentials: reading.v1Credentials,
    token: reading.token,
    v2: reading.v2,
  };
  const endpoints: Array<[EndpointName, EndpointJudgement]> = [
    ["IPv4", judgeEndpoint(v4)],
    ["IPv6", judgeEndpoint(reading.v6)],
  ];

  const failed = endpoints.flatMap(([name, j]) => (j.kind === "fail" ? [`${name}: ${j.reason}`] : []));
  if (failed.length > 0) {
    return { verdict: "fail", reason: `IMDSv1 still answers on ${failed.join("; on ")}.`, warnings: [] };
  }
  const unproven = endpoints.flatMap(([name, j]) => (j.kind === "unverified" ? [`${name}: ${j.reason}`] : []));
  if (unproven.length > 0) {
    return { verdict: "unverified", reason: `${unproven.join("; ")}.`, warnings: [] };
  }
  const answering = endpoints.filter(([, j]) => j.kind !== "silent");
  if (answering.length === 0) {
    return {
      verdict: "unverified",
      reason:
        "Nothing answered at the metadata addresses, IPv4 or IPv6 (no HTTP client, a firewall rule, or a hop limit).",
      warnings: [],
    };
  }
  const silent = endpoints.filter(([, j]) => j.kind === "silent").map(([name]) => name);
  const proofs = answering.map(([name, j]) => describeRefusal(name, j));
  const warnings = answering.flatMap(([name, j]) =>
    j.kind === "refused" && j.tokenFlow !== undefined
      ? [
          `The IMDSv2 token flow did not complete on ${name} (${j.tokenFlow}): software on the instance may be unable to read its metadata.`,
        ]
      : [],
  );
  const silence = silent.length > 0 ? ` ${silent[0]} did not answer.` : "";
  return { verdict: "pass", reason: `${proofs.join(" ")}${silence}`, warnings };
}

function judgeEndpoint(e: EndpointReading): EndpointJudgement {
  if (e.v1 === null && e.v1Credentials === null && e.token === null && e.v2 === null) return { kind: "silent" };
  const answered200 = [
    [LISTING, e.v1],
    [CREDENTIALS, e.v1Credentials],
  ].filter(([, status]) => status === 200);
  if (answered200.length > 0) {
    return {
      kind: "fail",
      reason: `a GET without a token returned 200 for ${answered200.map(([path]) => path).join(" and ")}`,
    };
  }
  const redirected = [e.v1, e.v1Credentials, e.token].find(
    (status) => status !== null && status >= 300 && status < 400,
  );
  if (redirected !== undefined && redirected !== null) {
    return {
      kind: "unverified",
      reason: `the metadata endpoint answered with a redirect (HTTP ${redirected}), which the probe never follows, so what lies behind it is unknown`,
    };
  }
  const refusals = [e.v1, e.v1Credentials];
  if (!refusals.every((status) => status === 401 || status === 403)) {
    return {
      kind: "unverified",
      reason: `unexpected answer to a GET without a token: ${show(e.v1)} for ${LISTING}, ${show(e.v1Credentials)} for ${CREDENTIALS}`,
    };
  }
  if (refusals.includes(403) && e.token === 200) {
    return {
      kind: "unverified",
      reason: `a GET without a token got 403, but the token PUT answered 200 (GET with token ${show(e.v2)}), so the endpoint is not disabled and what refused is unknown`,
    };
  }
  if (refusals.every((status) => status === 403)) return { kind: "disabled" };
  const tokenFlowWorks = e.token === 200 && e.v2 === 200;
  return {
    kind: "refused",
    tokenFlow: tokenFlowWorks ? undefined : `token ${show(e.token)}, GET with token ${show(e.v2)}`,
  };
}

function describeRefusal(name: EndpointName, j: EndpointJudgement): string {
  if (j.kind === "disabled") {
    return `IMDS disabled on ${name}: it refuses every request (403) and issues no token, so IMDSv1 cannot leak credentials.`;
  }
  const flow = j.kind === "refused" && j.tokenFlow === undefined ? "; the IMDSv2 token flow works" : "";
  return `IMDSv1 refused (401) on ${name}, both paths${flow}.`;
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
