import { beforeAll, describe, expect, it } from "vitest";
import { buildFunctionBundles, type FunctionBundle } from "../scripts/function-bundles.js";

/** Issue 13: resolve-targets runs first in every execution, so its cold start is on every event's path. */
const RESOLVE_TARGETS_BUDGET_BYTES = 300 * 1024;
const ZOD_LOCALE = /zod\/v4\/locales\/([^/]+)\.js$/;

let bundles: FunctionBundle[] = [];

beforeAll(async () => {
  // One esbuild run for every entry, with the options osls packages them with (infra/esbuild.json).
  bundles = await buildFunctionBundles();
}, 180_000);

function bundleNamed(name: string): FunctionBundle {
  const bundle = bundles.find((b) => b.name === name);
  if (!bundle) throw new Error(`no bundle for ${name}`);
  return bundle;
}

describe("the function bundles", () => {
  it("are built for every function, each with zod in it", () => {
    // Assess: the checks below would pass vacuously on bundles without zod
    expect(bundles.map((b) => b.name)).toEqual(expect.arrayContaining(["resolve-targets", "enforce", "notify"]));
    for (const bundle of bundles) {
      expect(
        Object.keys(bundle.inputs).some((path) => path.includes("node_modules/zod/")),
        bundle.name,
      ).toBe(true);
    }
  });

  it("carry zod's English locale and none of its other 63", () => {
    for (const bundle of bundles) {
      // Assess
      const locales = Object.keys(bundle.inputs).flatMap((path) => ZOD_LOCALE.exec(path)?.[1] ?? []);
      expect(locales, bundle.name).toEqual(["en"]);
    }
  });

  it("keep resolve-targets under 300 KiB, with no AWS SDK in the single-account entry", () => {
    // Prepare
    const resolveTargets = bundleNamed("resolve-targets");
    const hub = bundleNamed("resolve-targets/organization-handler");

    // Assess
    expect(resolveTargets.bytes).toBeLessThan(RESOLVE_TARGETS_BUDGET_BYTES);
    expect(resolveTargets.contributors.filter((c) => /^@(aws-sdk|smithy)\//.test(c.source))).toEqual([]);
    // The hub's entry is the one that reads Organizations.
    expect(hub.contributors.map((c) => c.source)).toContain("@aws-sdk/client-organizations");
  });
});
