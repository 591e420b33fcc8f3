import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startImdsEmulator } from "../local/sim/imds-emulator.js";
import { runLinuxProbe } from "../local/sim/run-linux-probe.js";
import { judgeProbe, parseProbeOutput } from "../shared/domain/probe-verdict.js";
import probeLinux from "../shared/probes/probe-linux.sh";
import {
  closedPortUrl,
  expectNoTokenLeak,
  expectWholeProbeDeadline,
  PROBE_BOUND_MS,
  PROBE_CASES,
  readingOf,
  startCase,
} from "./probe-harness.js";

/** Where a tool really lives: python3 may be a pyenv shim that only works with pyenv itself on PATH. */
function realPathOf(tool: string): string {
  try {
    if (tool === "python3") {
      return execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
    }
    return execFileSync("/bin/sh", ["-c", 'command -v "$1"', "sh", tool], { encoding: "utf8" }).trim();
  } catch (error) {
    throw new Error(`${tool} is not installed here, but the fallback tests need it (.ci/run installs it)`, {
      cause: error,
    });
  }
}

const scratchDirs: string[] = [];

function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}

/** A PATH holding only these tools, to play a minimal image without curl. */
function pathWithOnly(tools: string[]): string {
  const dir = scratchDir("probe-path-");
  for (const tool of tools) symlinkSync(realPathOf(tool), join(dir, tool));
  return dir;
}

/** A PATH holding busybox and its applets (wget, nc, sleep, date, mktemp, ...), as on a busybox-only image. */
function busyboxOnlyPath(busybox: string): string {
  const dir = scratchDir("probe-busybox-");
  const applets = execFileSync(busybox, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const applet of [...applets, "busybox"]) symlinkSync(busybox, join(dir, applet));
  return dir;
}

interface ClientSetup {
  path: string | undefined;
  shell?: string[];
}

const clients: Record<string, ClientSetup> = {};

beforeAll(() => {
  const busybox = realPathOf("busybox");
  clients.curl = { path: undefined };
  clients.python3 = { path: pathWithOnly(["python3", "sleep", "date"]) };
  // GNU wget gets its headers from a mktemp file, and its bound from sleep: those come along on any image with wget.
  clients.wget = { path: pathWithOnly(["wget", "mktemp", "rm", "sleep", "date"]) };
  // busybox's own sh, too: the image has nothing else. Its wget is on PATH, and must not be the one used.
  clients["busybox-nc"] = { path: busyboxOnlyPath(busybox), shell: [busybox, "sh"] };
});

afterAll(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

const CLIENTS = ["curl", "python3", "wget", "busybox-nc"];

describe.each(CLIENTS)("probe-linux.sh with %s", (client) => {
  it.concurrent.each(PROBE_CASES)(
    "$name: prints the statuses, stays in its deadline, leaks nothing",
    async (probeCase) => {
      // Prepare
      const running = await startCase(probeCase);
      const setup = clients[client];
      if (!setup) throw new Error(`no setup for ${client}`);

      try {
        // Act
        const run = await runLinuxProbe(probeLinux, running.endpoints, { path: setup.path, shell: setup.shell });

        // Assess
        const { v4, v6 } = probeCase.expected;
        const answered = [
          ...(Object.values(v4).some((s) => s !== null) ? ["ipv4"] : []),
          ...(Object.values(v6).some((s) => s !== null) ? ["ipv6"] : []),
        ];
        expect(readingOf(run)).toEqual({ ...v4, client, v6, answered });
        expect(run.durationMs).toBeLessThan(PROBE_BOUND_MS);
        const reading = parseProbeOutput(run.stdout);
        if (!reading) throw new Error("the reading does not parse");
        const judgement = judgeProbe(reading);
        expect(judgement.verdict).toBe(probeCase.verdict);
        expect(`${judgement.reason} ${judgement.warnings.join(" ")}`).toContain(probeCase.reason);
        expectNoTokenLeak(run, running);
      } finally {
        await running.close();
      }
    },
  );
});

describe("probe-linux.sh and its whole-probe deadline", () => {
  it.concurrent.each(CLIENTS)("%s stops asking a server that answers each request just in time", async (client) => {
    // Prepare
    const setup = clients[client];

    // Act / Assess
    await expectWholeProbeDeadline(
      (endpoints) => runLinuxProbe(probeLinux, endpoints, { path: setup?.path, shell: setup?.shell }),
      { v1: 401, v1Credentials: 401, token: 200, v2: 200 },
    );
  });
});

describe("probe-linux.sh and redirects", () => {
  it.concurrent.each(CLIENTS)("%s reports the 302 and sends no request to the redirect target", async (client) => {
    // Prepare
    const redirect = PROBE_CASES.find((probeCase) => probeCase.name === "redirect");
    if (!redirect) throw new Error("no redirect case");
    const running = await startCase(redirect);
    const setup = clients[client];

    try {
      // Act
      const run = await runLinuxProbe(probeLinux, running.endpoints, { path: setup?.path, shell: setup?.shell });

      // Assess: the emulator saw the token GET, and answered it with a 302 that went nowhere
      expect(readingOf(run)).toMatchObject({ v1: 302, v1Credentials: 302, token: 200, v2: 302, client });
      expect(running.emulators[0]?.requests.map((request) => request.method)).toEqual(["GET", "GET", "PUT", "GET"]);
      expect(running.collector.received).toEqual([]);
    } finally {
      await running.close();
    }
  });
});

describe("probe-linux.sh with busybox speaks HTTP itself", () => {
  it("sends the token only in its own request to the IMDS base URL, as HTTP/1.0 to the right Host", async () => {
    // Prepare
    const requests: Array<{ method: string; url: string; httpVersion: string; host?: string; token?: string }> = [];
    const server = createServer((request, response) => {
      const token = request.headers["x-aws-ec2-metadata-token"];
      requests.push({
        method: request.method ?? "",
        url: request.url ?? "",
        httpVersion: request.httpVersion,
        ...(request.headers.host ? { host: request.headers.host } : {}),
        ...(typeof token === "string" ? { token } : {}),
      });
      if (request.method === "PUT") response.end("c2VjcmV0LXRva2Vu");
      else response.writeHead(token === "c2VjcmV0LXRva2Vu" ? 200 : 401).end("ami-id\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "::1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("expected a TCP address");
    const v6 = `http://[::1]:${address.port}`;

    try {
      // Act
      const run = await runLinuxProbe(probeLinux, { v4: await closedPortUrl("127.0.0.1"), v6 }, clients["busybox-nc"]);

      // Assess
      expect(readingOf(run)).toMatchObject({
        v1: null,
        v6: { v1: 401, v1Credentials: 401, token: 200, v2: 200 },
        client: "busybox-nc",
      });
      expect(run.stdout).not.toContain("c2VjcmV0LXRva2Vu");
      const host = `[::1]:${address.port}`;
      expect(requests).toEqual([
        { method: "GET", url: "/latest/meta-data/", httpVersion: "1.0", host },
        { method: "GET", url: "/latest/meta-data/iam/security-credentials/", httpVersion: "1.0", host },
        { method: "PUT", url: "/latest/api/token", httpVersion: "1.0", host },
        { method: "GET", url: "/latest/meta-data/", httpVersion: "1.0", host, token: "c2VjcmV0LXRva2Vu" },
      ]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("never asks busybox wget for a URL, as it would follow a redirect", async () => {
    // Prepare: a PATH whose wget records how it was run
    const dir = busyboxOnlyPath(realPathOf("busybox"));
    const ran = join(scratchDir("probe-ran-"), "wget-ran");
    rmSync(join(dir, "wget"));
    writeFileSync(join(dir, "wget"), `#!${realPathOf("busybox")} sh\necho "$*" >> ${ran}\nexec busybox wget "$@"\n`, {
      mode: 0o755,
    });
    const emulator = await startImdsEmulator(() => ({ httpTokens: "required", httpEndpoint: "enabled" }));

    try {
      // Act
      const run = await runLinuxProbe(
        probeLinux,
        { v4: emulator.url, v6: await closedPortUrl("::1") },
        { path: dir, shell: [realPathOf("busybox"), "sh"] },
      );

      // Assess
      expect(readingOf(run)).toMatchObject({ v1: 401, token: 200, v2: 200, client: "busybox-nc" });
      // Only the client detection asks it anything (its --version, to tell GNU wget apart).
      expect(existsSync(ran) ? readFileSync(ran, "utf8") : "").toMatch(/^(--version\n)?$/);
    } finally {
      await emulator.close();
    }
  });
});

// GNU wget's header file holds the token; busybox's FIFO (in a private directory) carries it.
describe.each(["wget", "busybox-nc"])("probe-linux.sh with %s leaves no token on disk", (client) => {
  it("removes its temporary file when it finishes", async () => {
    // Prepare
    const tmp = scratchDir("probe-tmp-");
    const emulator = await startImdsEmulator(() => ({ httpTokens: "required", httpEndpoint: "enabled" }));

    try {
      // Act
      const run = await runLinuxProbe(
        probeLinux,
        { v4: emulator.url, v6: await closedPortUrl("::1") },
        { ...clients[client], tmpDir: tmp },
      );

      // Assess
      expect(readingOf(run)).toMatchObject({ v1: 401, token: 200, v2: 200, client });
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      await emulator.close();
    }
  });

  it.concurrent.each(["SIGTERM", "SIGINT", "SIGHUP"] as const)(
    "removes it when killed with %s in the middle of a request",
    async (signal) => {
      // Prepare: the emulator hangs, so the kill lands while the client waits
      const tmp = scratchDir("probe-tmp-");
      const emulator = await startImdsEmulator(() => ({ httpTokens: "required", httpEndpoint: "enabled" }), {
        mode: "hang",
      });
      let pid: number | undefined;

      try {
        // Act
        const running = runLinuxProbe(
          probeLinux,
          { v4: emulator.url, v6: await closedPortUrl("::1") },
          { ...clients[client], tmpDir: tmp, onSpawn: (spawned) => (pid = spawned) },
        );
        await expect.poll(() => emulator.requests.length, { timeout: 5_000 }).toBe(1);
        expect(readdirSync(tmp)).toHaveLength(1);
        if (pid === undefined) throw new Error("the probe did not start");
        process.kill(pid, signal);
        const run = await running;

        // Assess
        expect(run.stdout).toBe("");
        expect(readdirSync(tmp)).toEqual([]);
      } finally {
        await emulator.close();
      }
    },
  );
});

describe("probe-linux.sh never reaches a real metadata address from here", () => {
  it("the runner refuses endpoints that are not loopback", () => {
    // Act / Assess
    expect(() => runLinuxProbe(probeLinux, { v4: "http://169.254.169.254", v6: "http://[::1]:1" })).toThrow(/v4/);
    expect(() => runLinuxProbe(probeLinux, { v4: "http://127.0.0.1:1", v6: "http://[fd00:ec2::254]" })).toThrow(/v6/);
  });

  it("the script refuses them itself when IMDS_PROBE_LOOPBACK_ONLY=1, before any request", async () => {
    // Prepare: 0.0.0.0 and [::] are not what the tripwire allows, and if it failed they would reach only this host
    const port = new URL(await closedPortUrl("127.0.0.1")).port;
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      IMDS_ENDPOINT: `http://0.0.0.0:${port}`,
      IMDS_ENDPOINT_V6: `http://[::]:${port}`,
      IMDS_PROBE_LOOPBACK_ONLY: "1",
    };

    // Act
    const child = spawn("/bin/sh", ["-c", probeLinux], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const exitCode = await new Promise((resolve) => child.once("close", resolve));

    // Assess
    expect(exitCode).toBe(2);
    expect(stderr).toContain("not a loopback endpoint");
  });
});

describe("probe-linux.sh without a client", () => {
  it("reports client none when no HTTP client is on PATH", async () => {
    // Prepare
    const emulator = await startImdsEmulator(() => ({ httpTokens: "required", httpEndpoint: "enabled" }));

    try {
      // Act
      const run = await runLinuxProbe(
        probeLinux,
        { v4: emulator.url, v6: await closedPortUrl("::1") },
        { path: pathWithOnly([]) },
      );

      // Assess
      expect(readingOf(run)).toMatchObject({ v1: null, token: null, v2: null, client: "none", answered: [] });
      expect(emulator.requests).toEqual([]);
    } finally {
      await emulator.close();
    }
  });

  it("takes the endpoint with a trailing slash", async () => {
    // Prepare
    const emulator = await startImdsEmulator(() => ({ httpTokens: "required", httpEndpoint: "enabled" }));

    try {
      // Act
      const run = await runLinuxProbe(probeLinux, { v4: `${emulator.url}/`, v6: await closedPortUrl("::1") });

      // Assess
      expect(readingOf(run)).toMatchObject({ v1: 401, v1Credentials: 401, token: 200, v2: 200, client: "curl" });
    } finally {
      await emulator.close();
    }
  });
});
