import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assertLoopbackEndpoints, probeEnvironment } from "../local/sim/probe-endpoints.js";

// No test, bench or local run may send a request to the real metadata addresses. Three layers make sure of it:
// the runners (runLinuxProbe, runWindowsProbe) take both endpoints as one required argument and refuse anything but
// loopback; they arm the scripts' own tripwire (IMDS_PROBE_LOOPBACK_ONLY=1), so a probe started with a default
// endpoint exits before its first request (tested in probe-linux and probe-windows); and this file checks that no
// code outside the runners starts a probe script itself, where neither layer would apply.

const RUNNERS = ["local/sim/run-linux-probe.ts", "local/sim/run-windows-probe.ts"];
/** The test files that start a probe directly on purpose, to see its tripwire refuse non-loopback endpoints. */
const TRIPWIRE_TESTS = ["test/probe-linux.test.ts", "test/probe-windows.test.ts"];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs|js)$/.test(name) ? [path] : [];
  });
}

describe("probe endpoints", () => {
  it.each([
    ["http://127.0.0.1:8080", "http://[::1]:8080"],
    ["http://127.0.0.1:1/", "http://[::1]:65535/"],
  ])("accepts loopback %s and %s", (v4, v6) => {
    // Act / Assess
    expect(() => assertLoopbackEndpoints({ v4, v6 })).not.toThrow();
    expect(probeEnvironment({ v4, v6 })).toEqual({
      IMDS_ENDPOINT: v4,
      IMDS_ENDPOINT_V6: v6,
      IMDS_PROBE_LOOPBACK_ONLY: "1",
    });
  });

  it.each([
    ["http://169.254.169.254", "http://[::1]:1"],
    ["http://169.254.169.254:80", "http://[::1]:1"],
    ["http://127.0.0.1:1", "http://[fd00:ec2::254]"],
    ["http://127.0.0.1:1", "http://[fd00:ec2::254]:80"],
    ["http://localhost:1", "http://[::1]:1"],
    ["http://127.0.0.1:1@169.254.169.254", "http://[::1]:1"],
    ["http://127.0.0.1", "http://[::1]:1"],
    ["", "http://[::1]:1"],
  ])("refuses %s / %s", (v4, v6) => {
    // Act / Assess
    expect(() => assertLoopbackEndpoints({ v4, v6 })).toThrow(/must be http:\/\/127\.0\.0\.1:PORT/);
  });

  it("no code outside the runners starts a probe script, so every run passes both loopback overrides", () => {
    // Prepare
    const files = ["test", "local", "bench", "scripts", "audit", "bin"].flatMap(sourceFiles);
    // Starting a process needs node:child_process, whichever of its functions is called (imported, required or
    // reached dynamically, its name is in the text). Matching call names instead took RegExp's `.exec(` for one, in
    // the CLI bundle, which carries the probe scripts as text to compare spokes' documents with and starts nothing.
    const startsProcesses = /\bchild_process\b/;
    const readsProbe = /probes\/probe-(linux\.sh|windows\.ps1)/;

    // Act
    const offenders = files.filter((file) => {
      // This file names both in its patterns, and runs nothing.
      if (RUNNERS.includes(file) || TRIPWIRE_TESTS.includes(file) || file === "test/probe-endpoints.test.ts")
        return false;
      const text = readFileSync(file, "utf8");
      return readsProbe.test(text) && startsProcesses.test(text);
    });

    // Assess
    expect(offenders).toEqual([]);
    expect(files).toContain("local/sim/sim-ssm.ts");
    expect(readFileSync("local/sim/sim-ssm.ts", "utf8")).toMatch(/runLinuxProbe\(script, endpoints\)/);
  });

  it("the probes' defaults are the real addresses, so a run without overrides would reach them", () => {
    // Assess: why the layers above exist
    const linux = readFileSync("shared/probes/probe-linux.sh", "utf8");
    const windows = readFileSync("shared/probes/probe-windows.ps1", "utf8");
    for (const script of [linux, windows]) {
      expect(script).toContain("http://169.254.169.254");
      expect(script).toContain("http://[fd00:ec2::254]");
      expect(script).toContain("IMDS_PROBE_LOOPBACK_ONLY");
    }
  });
});
