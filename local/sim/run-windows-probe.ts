import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { type ProbeEndpoints, probeEnvironment } from "./probe-endpoints.js";
import { type ProbeRun, runBounded } from "./run-linux-probe.js";

const START_MARKER = "probe-windows.ps1: starting";

/** Where pwsh is: on PATH, else the .NET global tool's default place (~/.dotnet/tools). undefined: not installed. */
export function findPwsh(): string | undefined {
  const candidates = [
    ...(process.env.PATH ?? "")
      .split(":")
      .filter(Boolean)
      .map((dir) => join(dir, "pwsh")),
    join(homedir(), ".dotnet", "tools", "pwsh"),
  ];
  return candidates.find((candidate) => existsSync(candidate));
}

/** `pwsh --version`, e.g. "PowerShell 7.6.9". */
export function pwshVersion(pwsh: string): string {
  return execFileSync(pwsh, ["-NoProfile", "-NonInteractive", "-Command", "$PSVersionTable.PSVersion.ToString()"], {
    encoding: "utf8",
  }).trim();
}

/**
 * Runs shared/probes/probe-windows.ps1 in pwsh against two loopback endpoints (anything else is refused), as
 * AWS-RunPowerShellScript would: the script text in a file, run with -NoProfile so no profile can change it.
 */
export async function runWindowsProbe(
  pwsh: string,
  script: string,
  endpoints: ProbeEndpoints,
  opts: { killAfterMs?: number } = {},
): Promise<ProbeRun> {
  const dir = mkdtempSync(join(tmpdir(), "probe-windows-"));
  const file = join(dir, "probe-windows.ps1");
  writeFileSync(file, script);
  // pwsh needs HOME and DOTNET_ROOT-ish settings from the caller's environment to start; the proxies and anything an
  // event could shape are left out.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: homedir(),
    ...(process.env.DOTNET_ROOT ? { DOTNET_ROOT: process.env.DOTNET_ROOT } : {}),
    DOTNET_CLI_TELEMETRY_OPTOUT: "1",
    POWERSHELL_TELEMETRY_OPTOUT: "1",
    POWERSHELL_UPDATECHECK: "Off",
    ...probeEnvironment(endpoints),
  };
  try {
    // The marker line separates PowerShell's own start-up (seconds on a loaded machine, and paid by the SSM Agent on
    // Windows too) from the script's time, which is what the probe's deadlines bound.
    const wrapper = `[Console]::Error.WriteLine('${START_MARKER}'); & $env:PROBE_SCRIPT; exit $LASTEXITCODE`;
    return await runBounded(
      pwsh,
      ["-NoProfile", "-NonInteractive", "-Command", wrapper],
      { ...env, PROBE_SCRIPT: file },
      {
        killAfterMs: opts.killAfterMs ?? 40_000,
        startMarker: START_MARKER,
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
