// `npm start`: bundles the local runner with esbuild (the same `text` loader the Lambda bundles use for the probe
// scripts) and runs it. Dependencies stay in node_modules; only the project's own TypeScript is compiled.

import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const [entry = "local/runner/cli.ts", ...args] = process.argv.slice(2).includes("--entry")
  ? [
      process.argv[process.argv.indexOf("--entry") + 1],
      ...process.argv.slice(2).filter((_, i, all) => i !== all.indexOf("--entry") && i !== all.indexOf("--entry") + 1),
    ]
  : ["local/runner/cli.ts", ...process.argv.slice(2)];
const outfile = `dist/local/${entry.replace(/[/\\]/g, "_").replace(/\.ts$/, "")}.mjs`;
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node24",
  packages: "external",
  sourcemap: "inline",
  loader: { ".sh": "text", ".ps1": "text" },
  logLevel: "warning",
});
// Handler logs are structured JSON for CloudWatch; in a terminal they drown the table unless asked for.
// Set before the bundle loads, because Powertools reads the level when the logger is created.
if (!args.includes("--verbose")) process.env.POWERTOOLS_LOG_LEVEL ??= "SILENT";
// The SDK's default credential chain ends at the EC2 instance metadata service (169.254.169.254): switched off, so
// nothing the runner starts can reach for real credentials, even on an EC2 host.
process.env.AWS_EC2_METADATA_DISABLED = "true";
process.argv = [process.argv[0], outfile, ...args];
await import(pathToFileURL(outfile).href);
