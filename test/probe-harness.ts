import { connect } from "node:net";
import { expect } from "vitest";
import * as z from "zod";
import {
  type ImdsEmulatorMode,
  type ImdsOptionsView,
  type RunningImdsEmulator,
  type RunningTokenCollector,
  startImdsEmulator,
  startTokenCollector,
} from "../local/sim/imds-emulator.js";
import type { ProbeEndpoints } from "../local/sim/probe-endpoints.js";
import type { ProbeRun } from "../local/sim/run-linux-probe.js";
import type { EndpointReading } from "../shared/domain/model.js";

const status = z.number().int().nullable();
const endpointSchema = z.strictObject({ v1: status, v1Credentials: status, token: status, v2: status });
/** The contract with the verdict code, for both probes: exactly these keys, statuses as integers or null. */
export const readingSchema = z.strictObject({
  v1: status,
  v1Credentials: status,
  token: status,
  v2: status,
  client: z.string(),
  v6: endpointSchema,
  answered: z.array(z.enum(["ipv4", "ipv6"])),
});
export type StrictReading = z.infer<typeof readingSchema>;

/** Exactly one line of JSON (LF or CRLF), exit code 0. */
export function readingOf(run: ProbeRun): StrictReading {
  expect(run.exitCode, run.stderr).toBe(0);
  expect(run.stdout).toMatch(/^[^\n]+\r?\n$/);
  return readingSchema.parse(JSON.parse(run.stdout));
}

const CLOSED_PORT = 1;

/**
 * A loopback port where nothing listens, so every connection is refused at once. Port 1, not a freed ephemeral port:
 * concurrent tests start emulators on ephemeral ports, and one of them could take a freed port mid-run.
 */
export async function closedPortUrl(host: "127.0.0.1" | "::1"): Promise<string> {
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect({ host, port: CLOSED_PORT });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
  if (!refused) throw new Error(`something listens on ${host} port ${CLOSED_PORT}; the refused cases need it closed`);
  return host === "::1" ? `http://[::1]:${CLOSED_PORT}` : `http://127.0.0.1:${CLOSED_PORT}`;
}

/** What one endpoint of a scenario is: an emulator in some mode and with some options, or nothing listening. */
type EndpointSetup = { mode: ImdsEmulatorMode; options: ImdsOptionsView } | "closed";

const REQUIRED: ImdsOptionsView = { httpTokens: "required", httpEndpoint: "enabled" };
const OPTIONAL: ImdsOptionsView = { httpTokens: "optional", httpEndpoint: "enabled" };
const DISABLED: ImdsOptionsView = { httpTokens: "required", httpEndpoint: "disabled" };

const SILENT: EndpointReading = { v1: null, v1Credentials: null, token: null, v2: null };

/**
 * Every mode a probe is tested in: what the IPv4 and IPv6 endpoints are, what every client reads (each has the full
 * token flow), and the verdict.
 */
export interface ProbeCase {
  name: string;
  v4: EndpointSetup;
  v6: EndpointSetup;
  expected: { v4: EndpointReading; v6: EndpointReading };
  verdict: "pass" | "fail" | "unverified";
  /** A part of the verdict's reason. */
  reason: string;
}

export const PROBE_CASES: ProbeCase[] = [
  {
    name: "optional",
    v4: { mode: "follows-options", options: OPTIONAL },
    v6: "closed",
    expected: { v4: { v1: 200, v1Credentials: 200, token: 200, v2: 200 }, v6: SILENT },
    verdict: "fail",
    reason: "IMDSv1 still answers",
  },
  {
    name: "required",
    v4: { mode: "follows-options", options: REQUIRED },
    v6: "closed",
    expected: { v4: { v1: 401, v1Credentials: 401, token: 200, v2: 200 }, v6: SILENT },
    verdict: "pass",
    reason: "IMDSv1 refused (401) on IPv4",
  },
  {
    name: "disabled",
    v4: { mode: "follows-options", options: DISABLED },
    v6: "closed",
    expected: { v4: { v1: 403, v1Credentials: 403, token: 403, v2: null }, v6: SILENT },
    verdict: "pass",
    reason: "IMDS disabled",
  },
  {
    name: "refused (nothing listens)",
    v4: "closed",
    v6: "closed",
    expected: { v4: SILENT, v6: SILENT },
    verdict: "unverified",
    reason: "Nothing answered",
  },
  {
    name: "hung",
    v4: { mode: "hang", options: REQUIRED },
    v6: { mode: "hang", options: REQUIRED },
    expected: { v4: SILENT, v6: SILENT },
    verdict: "unverified",
    reason: "Nothing answered",
  },
  {
    name: "trickle",
    v4: { mode: "trickle", options: REQUIRED },
    v6: { mode: "trickle", options: REQUIRED },
    // The 200 header came at once: a token-less GET was answered, however slowly; the probe moves on at 3 s.
    expected: { v4: { ...SILENT, v1: 200 }, v6: { ...SILENT, v1: 200 } },
    verdict: "fail",
    reason: "IMDSv1 still answers",
  },
  {
    name: "redirect",
    v4: { mode: "redirect", options: REQUIRED },
    v6: "closed",
    expected: { v4: { v1: 302, v1Credentials: 302, token: 200, v2: 302 }, v6: SILENT },
    verdict: "unverified",
    reason: "redirect (HTTP 302)",
  },
  {
    name: "500",
    v4: { mode: "error-500", options: REQUIRED },
    v6: "closed",
    expected: { v4: { v1: 500, v1Credentials: 500, token: 500, v2: null }, v6: SILENT },
    verdict: "unverified",
    reason: "unexpected answer",
  },
  {
    name: "garbage",
    v4: { mode: "garbage", options: REQUIRED },
    v6: { mode: "garbage", options: REQUIRED },
    expected: { v4: SILENT, v6: SILENT },
    verdict: "unverified",
    reason: "Nothing answered",
  },
  {
    name: "IPv6 only, refusing",
    v4: "closed",
    v6: { mode: "follows-options", options: REQUIRED },
    expected: { v4: SILENT, v6: { v1: 401, v1Credentials: 401, token: 200, v2: 200 } },
    verdict: "pass",
    reason: "on IPv6,",
  },
  {
    name: "IPv6 answering IMDSv1",
    v4: { mode: "follows-options", options: REQUIRED },
    v6: { mode: "follows-options", options: OPTIONAL },
    expected: {
      v4: { v1: 401, v1Credentials: 401, token: 200, v2: 200 },
      v6: { v1: 200, v1Credentials: 200, token: 200, v2: 200 },
    },
    verdict: "fail",
    reason: "IPv6: a GET without a token returned 200",
  },
  {
    name: "second path served to anyone",
    v4: { mode: "gates-listing-only", options: REQUIRED },
    v6: "closed",
    expected: { v4: { v1: 401, v1Credentials: 200, token: 200, v2: 200 }, v6: SILENT },
    verdict: "fail",
    reason: "iam/security-credentials/",
  },
];

export interface RunningCase {
  endpoints: ProbeEndpoints;
  emulators: RunningImdsEmulator[];
  collector: RunningTokenCollector;
  close(): Promise<void>;
}

/** Starts a case's endpoints on loopback (IPv4 on 127.0.0.1, IPv6 on ::1) and a collector for redirects. */
export async function startCase(probeCase: ProbeCase): Promise<RunningCase> {
  const collector = await startTokenCollector();
  const emulators: RunningImdsEmulator[] = [];
  async function endpoint(setup: EndpointSetup, host: "127.0.0.1" | "::1"): Promise<string> {
    if (setup === "closed") return closedPortUrl(host);
    const { options, mode } = setup;
    const emulator = await startImdsEmulator(() => options, { mode, host, redirectTo: collector.url });
    emulators.push(emulator);
    return emulator.url;
  }
  const endpoints = { v4: await endpoint(probeCase.v4, "127.0.0.1"), v6: await endpoint(probeCase.v6, "::1") };
  return {
    endpoints,
    emulators,
    collector,
    close: async () => {
      await Promise.all(emulators.map((emulator) => emulator.close()));
      await collector.close();
    },
  };
}

/** No token handed out reaches the output, and none reaches the collector behind a redirect. */
export function expectNoTokenLeak(run: ProbeRun, running: RunningCase): void {
  const tokens = running.emulators.flatMap((emulator) => emulator.issuedTokens);
  for (const token of tokens) {
    expect(run.stdout).not.toContain(token);
    expect(run.stderr).not.toContain(token);
  }
  expect(running.collector.received.filter((request) => request.token !== undefined)).toEqual([]);
}

/** The correctness bound for one probe run against a hostile server: the 15 s promise, with room for a loaded machine. */
export const PROBE_BOUND_MS = 20_000;

/**
 * Both endpoints answer every request correctly but 1.7 s late, inside each request's deadline: seven answers take
 * 11.9 s, past the point where the probe starts no more requests, so only the whole-probe deadline keeps the run
 * under 15 s, and the IPv6 endpoint is not asked everything.
 */
export const SLOW_CASE: ProbeCase = {
  name: "slow",
  v4: { mode: "slow", options: REQUIRED },
  v6: { mode: "slow", options: REQUIRED },
  expected: { v4: { v1: 401, v1Credentials: 401, token: 200, v2: 200 }, v6: SILENT },
  verdict: "pass",
  reason: "on IPv4,",
};

/**
 * Runs a probe in the slow case: the IPv4 endpoint is read in full, the IPv6 one is cut short by the whole-probe
 * deadline (no request starts after about 11 s), and the run ends within the bound.
 */
export async function expectWholeProbeDeadline(
  probe: (endpoints: ProbeEndpoints) => Promise<ProbeRun>,
  expectedV4: EndpointReading,
): Promise<void> {
  const running = await startCase(SLOW_CASE);
  try {
    const run = await probe(running.endpoints);
    const reading = readingOf(run);
    expect(reading).toMatchObject(expectedV4);
    expect(run.durationMs).toBeLessThan(PROBE_BOUND_MS);
    const [, v6] = running.emulators;
    expect(v6?.requests.length).toBeGreaterThanOrEqual(1);
    expect(v6?.requests.length).toBeLessThan(4);
    expect(reading.v6.v2).toBeNull();
  } finally {
    await running.close();
  }
}
