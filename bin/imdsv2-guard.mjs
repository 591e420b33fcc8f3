#!/usr/bin/env node
// `imdsv2-guard audit ...`: bundles audit/cli.ts with esbuild and runs it in this process, so argv, stdout/stderr and
// the exit code pass straight through. A bundle because the code is TypeScript that imports the probe scripts
// (.sh/.ps1) as text, like the Lambda bundles and `npm start` (scripts/run-local.mjs). That script resolves its entry
// and output against the current directory; this bin runs from anywhere, so it builds from its own package root and
// the user's relative paths (--scenario FILE) keep meaning what they mean in the user's directory.

import { rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const USAGE = `Usage: imdsv2-guard audit [options]     (imdsv2-guard audit --help lists them)\n`;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const [command, ...args] = process.argv.slice(2);

if (command === "-h" || command === "--help" || command === "help") {
  process.stdout.write(USAGE);
} else if (command !== "audit") {
  process.stderr.write(`imdsv2-guard: ${command ? `unknown command: ${command}` : "which command?"}\n${USAGE}`);
  process.exitCode = 2;
} else {
  const { build } = await import("esbuild");
  const outfile = join(root, "dist", "bin", "audit-cli.mjs");
  // Built under a name of its own, then renamed over the shared one: two audits starting at once never load a
  // half-written bundle.
  const partial = `${outfile}.${process.pid}.tmp.mjs`;
  await build({
    absWorkingDir: root,
    entryPoints: ["audit/cli.ts"],
    outfile: partial,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    sourcemap: "inline",
    loader: { ".sh": "text", ".ps1": "text" },
    logLevel: "warning",
  });
  await rename(partial, outfile);
  process.argv = [process.argv[0] ?? "node", outfile, ...args];
  await import(pathToFileURL(outfile).href);
}
