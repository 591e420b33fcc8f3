import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type ImdsOptionsView, type RunningImdsEmulator, startImdsEmulator } from "../local/sim/imds-emulator.js";
import { type LinuxProbeRun, runLinuxProbe } from "../local/sim/run-linux-probe.js";
import probeLinux from "../shared/probes/probe-linux.sh";

const status = z.number().int().nullable();
/** The contract with the verdict code: exactly these four keys, statuses as integers or null. */
const readingSchema = z.strictObject({ v1: status, token: status, v2: status, client: z.string() });

/** Exactly one line of JSON, exit code 0. */
function readingOf(run: LinuxProbeRun): z.infer<typeof readingSchema> {
  expect(run.exitCode).toBe(0);
  expect(run.stdout).toMatch(/^[^\n]+\n$/);
  return readingSchema.parse(JSON.parse(run.stdout));
}

/** Where a tool really lives: python3 may be a pyenv shim that only works with pyenv itself on PATH. */
function realPathOf(tool: string): string {
  try {
    if (tool === "python3") {
      return execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
    }
    return execFileSync("/bin/sh", ["-c", 'command -v "$1"', "sh", tool], { encoding: "utf8" }).trim();
  } catch (error) {
    throw new Error(`${tool} is not installed here, but the fallback tests need it`, { cause: error });
  }
}

const scratchDirs: string[] = [];

/** A PATH holding only these tools, to play a minimal image without curl. */
function pathWithOnly(tools: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "probe-path-"));
  scratchDirs.push(dir);
  for (const tool of tools) symlinkSync(realPathOf(tool), join(dir, tool));
  return dir;
}

/** A port where nothing listens, so every connection is refused at once. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("expected a TCP address");
  return `http://127.0.0.1:${address.port}`;
}

function expectNoTokenLeak(run: LinuxProbeRun, emulator: RunningImdsEmulator): void {
  for (const token of emulator.issuedTokens) {
    expect(run.stdout).not.toContain(token);
    expect(run.stderr).not.toContain(token);
  }
}

let options: ImdsOptionsView = { httpTokens: "required", httpEndpoint: "enabled" };
let emulator: RunningImdsEmulator;
let hangingEmulator: RunningImdsEmulator;
const clientPaths: Record<string, string | undefined> = {};

beforeAll(async () => {
  emulator = await startImdsEmulator(() => options);
  hangingEmulator = await startImdsEmulator(() => options, { hang: true });
  clientPaths.curl = undefined;
  clientPaths.python3 = pathWithOnly(["python3"]);
  // GNU wget gets its headers from a mktemp file, so those two come along as on any image that has wget.
  clientPaths.wget = pathWithOnly(["wget", "mktemp", "rm"]);
});

afterAll(async () => {
  await emulator.close();
  await hangingEmulator.close();
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

describe.each(["curl", "python3", "wget"])("probe-linux.sh with %s", (client) => {
  it("sees IMDSv1 refused and IMDSv2 answered when tokens are required", async () => {
    // Prepare
    options = { httpTokens: "required", httpEndpoint: "enabled" };

    // Act
    const run = await runLinuxProbe(probeLinux, emulator.url, { path: clientPaths[client] });

    // Assess
    expect(readingOf(run)).toEqual({ v1: 401, token: 200, v2: 200, client });
    expect(emulator.issuedTokens.length).toBeGreaterThan(0);
    expectNoTokenLeak(run, emulator);
  });

  it("sees IMDSv1 answered when tokens are optional", async () => {
    // Prepare
    options = { httpTokens: "optional", httpEndpoint: "enabled" };

    // Act
    const run = await runLinuxProbe(probeLinux, emulator.url, { path: clientPaths[client] });

    // Assess
    expect(readingOf(run)).toEqual({ v1: 200, token: 200, v2: 200, client });
    expectNoTokenLeak(run, emulator);
  });

  it("sees 403 and does not try IMDSv2 without a token when the endpoint is disabled", async () => {
    // Prepare
    options = { httpTokens: "required", httpEndpoint: "disabled" };
    const requestsBefore = emulator.requests.length;

    // Act
    const run = await runLinuxProbe(probeLinux, emulator.url, { path: clientPaths[client] });

    // Assess
    expect(readingOf(run)).toEqual({ v1: 403, token: 403, v2: null, client });
    expect(emulator.requests.slice(requestsBefore)).toEqual([
      { method: "GET", path: "/latest/meta-data/" },
      { method: "PUT", path: "/latest/api/token" },
    ]);
  });

  it("gives up on an endpoint that never answers within the bound", async () => {
    // Prepare
    const requestsBefore = hangingEmulator.requests.length;

    // Act
    const run = await runLinuxProbe(probeLinux, hangingEmulator.url, { path: clientPaths[client] });

    // Assess: a correctness bound (two 3 s requests), not a performance measurement
    expect(readingOf(run)).toEqual({ v1: null, token: null, v2: null, client });
    expect(run.durationMs).toBeLessThan(15_000);
    expect(hangingEmulator.requests.slice(requestsBefore).map((request) => request.method)).toEqual(["GET", "PUT"]);
  });
});

describe("probe-linux.sh without an answer or a client", () => {
  it("reports nulls quickly when nothing listens", async () => {
    // Prepare
    const url = await closedPortUrl();

    // Act
    const run = await runLinuxProbe(probeLinux, url);

    // Assess
    expect(readingOf(run)).toEqual({ v1: null, token: null, v2: null, client: "curl" });
    expect(run.durationMs).toBeLessThan(5_000);
  });

  it("reports client none when no HTTP client is on PATH", async () => {
    // Prepare
    options = { httpTokens: "required", httpEndpoint: "enabled" };
    const requestsBefore = emulator.requests.length;

    // Act
    const run = await runLinuxProbe(probeLinux, emulator.url, { path: pathWithOnly([]) });

    // Assess
    expect(readingOf(run)).toEqual({ v1: null, token: null, v2: null, client: "none" });
    expect(emulator.requests.length).toBe(requestsBefore);
  });

  it("takes the endpoint with a trailing slash", async () => {
    // Prepare
    options = { httpTokens: "required", httpEndpoint: "enabled" };

    // Act
    const run = await runLinuxProbe(probeLinux, `${emulator.url}/`);

    // Assess
    expect(readingOf(run)).toEqual({ v1: 401, token: 200, v2: 200, client: "curl" });
  });
});
