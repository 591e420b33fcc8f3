import { spawn } from "node:child_process";
import { homedir } from "node:os";
import { performance } from "node:perf_hooks";
import { type ProbeEndpoints, probeEnvironment } from "./probe-endpoints.js";

export interface ProbeRun {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  /** From the script's start to its end: for pwsh, after PowerShell itself has started (see `startMarker`). */
  durationMs: number;
  /** From the spawn to the end, interpreter start-up included. */
  wallMs: number;
}
export type LinuxProbeRun = ProbeRun;

export interface LinuxProbeOptions {
  /** Overrides PATH (to play an image without curl, or with busybox only). */
  path?: string;
  /** The shell and its leading arguments, default /bin/sh; e.g. ["/usr/bin/busybox", "sh"]. */
  shell?: string[];
  /** TMPDIR for the script, to see which files it leaves behind. */
  tmpDir?: string;
  /** Kills the whole process group after this long (default 20000 ms). */
  killAfterMs?: number;
  /** Called once the script runs, with its pid (to signal it mid-run). */
  onSpawn?: (pid: number) => void;
}

/** Runs shared/probes/probe-linux.sh against two loopback endpoints (anything else is refused). */
export function runLinuxProbe(
  script: string,
  endpoints: ProbeEndpoints,
  opts: LinuxProbeOptions = {},
): Promise<ProbeRun> {
  // An explicit, minimal environment: nothing from the caller (event fields, tags, proxies) can reach the script.
  const env: Record<string, string> = {
    PATH: opts.path ?? process.env.PATH ?? "/usr/bin:/bin",
    HOME: homedir(),
    ...probeEnvironment(endpoints),
    ...(opts.tmpDir ? { TMPDIR: opts.tmpDir } : {}),
  };
  // The shell by absolute path, so an overridden PATH only changes which HTTP clients the script can find.
  const [shell = "/bin/sh", ...shellArgs] = opts.shell ?? ["/bin/sh"];
  return runBounded(shell, [...shellArgs, "-c", script], env, opts);
}

/**
 * Spawns a probe in its own process group, so a kill also reaches the clients it started, which hold the output
 * pipes, and collects what it printed.
 */
export function runBounded(
  command: string,
  args: string[],
  env: Record<string, string>,
  opts: { killAfterMs?: number; onSpawn?: (pid: number) => void; startMarker?: string } = {},
): Promise<ProbeRun> {
  const spawnedAt = performance.now();
  // A line the wrapper writes to stderr just before the script runs: the script's own time starts there.
  let startedAt = opts.startMarker === undefined ? spawnedAt : undefined;
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    const marker = opts.startMarker;
    if (marker !== undefined && startedAt === undefined && stderr.includes(`${marker}\n`)) {
      startedAt = performance.now();
      stderr = stderr.replace(`${marker}\n`, "");
    }
  });
  if (child.pid !== undefined) opts.onSpawn?.(child.pid);

  return new Promise((resolve, reject) => {
    const killer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, opts.killAfterMs ?? 20_000);
    child.once("error", (error) => {
      clearTimeout(killer);
      reject(error);
    });
    child.once("close", (exitCode) => {
      clearTimeout(killer);
      const endedAt = performance.now();
      resolve({
        stdout,
        stderr,
        exitCode,
        durationMs: endedAt - (startedAt ?? spawnedAt),
        wallMs: endedAt - spawnedAt,
      });
    });
  });
}
