import { spawn } from "node:child_process";
import { homedir } from "node:os";
import { performance } from "node:perf_hooks";

export interface LinuxProbeRun {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  durationMs: number;
}

/** Runs shared/probes/probe-linux.sh with `sh`, IMDS_ENDPOINT=imdsUrl. `path` overrides PATH (to test "no curl"). Kills it after `killAfterMs` (default 20000). */
export function runLinuxProbe(
  script: string,
  imdsUrl: string,
  opts: { path?: string; killAfterMs?: number } = {},
): Promise<LinuxProbeRun> {
  const startedAt = performance.now();
  // An explicit, minimal environment: nothing from the caller (event fields, tags, proxies) can reach the script.
  const env = { PATH: opts.path ?? process.env.PATH ?? "/usr/bin:/bin", IMDS_ENDPOINT: imdsUrl, HOME: homedir() };
  // /bin/sh by absolute path, so an overridden PATH only changes which HTTP clients the script can find.
  // Its own process group, so a kill also reaches the curl/python3/wget it started, which hold the output pipes.
  const child = spawn("/bin/sh", ["-c", script], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });

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
      resolve({ stdout, stderr, exitCode, durationMs: performance.now() - startedAt });
    });
  });
}
