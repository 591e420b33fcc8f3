import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CLI_BUNDLE, cliBundleText } from "../scripts/cli-bundle.mjs";

/**
 * The installed command runs a committed bundle (bin/imdsv2-guard-cli.mjs), so that `npm ci --omit=dev` can run it
 * with no compiler. These tests keep that bundle honest: it is what the sources build to, and all it imports is
 * Node and the package's production dependencies.
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const manifest = JSON.parse(readFileSync("package.json", "utf8")) as { dependencies: Record<string, string> };

/** The packages a module imports, statically or dynamically. */
function importedPackages(text: string): string[] {
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;"']*?\bfrom\s+["']([^"']+)["']/gms),
    ...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ].map((m) => m[1] ?? "");
  return [...new Set(specifiers.filter((s) => !s.startsWith(".")))];
}

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return (specifier.startsWith("@") ? parts.slice(0, 2) : parts.slice(0, 1)).join("/");
}

describe("the installed command's bundle", () => {
  it("is what `npm run build:cli` builds from the sources now", async () => {
    // Act
    const fresh = await cliBundleText(ROOT);

    // Assess: if this fails, run `npm run build:cli` and commit the result.
    expect(readFileSync(CLI_BUNDLE, "utf8")).toBe(fresh);
  });

  it("imports only node:* and production dependencies: no simulator, emulator or devDependency", () => {
    // Prepare
    const bundle = readFileSync(CLI_BUNDLE, "utf8");
    const production = new Set(Object.keys(manifest.dependencies));

    // Act
    const packages = importedPackages(bundle);
    const outside = packages.filter((p) => !p.startsWith("node:") && !production.has(packageName(p)));

    // Assess
    expect(packages).toContain("@aws-sdk/client-ec2");
    expect(outside).toEqual([]);
    expect(bundle).not.toMatch(/aws-sdk-client-mock|SimAccount|local\/sim|createServer/);
  });

  it("is all the bin loads", () => {
    // Act
    const bin = readFileSync("bin/imdsv2-guard.mjs", "utf8");

    // Assess
    expect(bin.startsWith("#!/usr/bin/env node\n")).toBe(true);
    expect(
      [...bin.matchAll(/\bfrom\s+["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']/g)].map((m) => m[1] ?? m[2]),
    ).toEqual(["./imdsv2-guard-cli.mjs"]);
  });
});
