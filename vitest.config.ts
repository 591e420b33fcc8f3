import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { defineConfig, type Plugin } from "vitest/config";

/** Mirrors esbuild's `text` loader for the probe scripts, so tests import exactly what the bundles ship. */
function probeScriptsAsText(): Plugin {
  return {
    name: "probe-scripts-as-text",
    enforce: "pre",
    load(id) {
      if (id.endsWith(".sh") || id.endsWith(".ps1")) {
        return `export default ${JSON.stringify(readFileSync(id, "utf8"))};`;
      }
      return null;
    },
  };
}

export default defineConfig({
  plugins: [probeScriptsAsText()],
  test: {
    include: ["test/**/*.test.ts"],
    // The packaged templates the IAM test reads, built once before the files run in parallel (test/global-setup.ts).
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // One fork per core. Vitest's default (cores - 1) leaves one of a 2-core CI machine's cores idle; the files are
    // independent (each starts its own emulators on ephemeral loopback ports and its own simulated account).
    maxWorkers: availableParallelism(),
    // The handlers' structured logs are for CloudWatch; tests assert on behaviour, not on log lines. The SDK's default
    // credential chain ends at the EC2 instance metadata service (169.254.169.254): switched off, so no client in a
    // test can ever reach for real credentials.
    env: { POWERTOOLS_LOG_LEVEL: "SILENT", AWS_EC2_METADATA_DISABLED: "true" },
  },
});
