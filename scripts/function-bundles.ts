import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type BuildOptions, build, type Metafile } from "esbuild";

/**
 * The esbuild options of the deployed functions: infra/esbuild.json, which serverless.yml hands to serverless-esbuild,
 * without the keys only serverless-esbuild reads. The bench and the bundle test build with these, so what they
 * measure is what `osls package` ships.
 */
export function functionBuildOptions(root = "."): BuildOptions {
  const options = JSON.parse(readFileSync(join(root, "infra/esbuild.json"), "utf8")) as BuildOptions &
    Record<string, unknown>;
  const { exclude: _exclude, outputWorkFolder: _work, outputFileExtension: _ext, ...esbuildOptions } = options;
  return esbuildOptions;
}

/**
 * Every deployable entry: functions/<name>/handler.ts as `<name>`, and any other `*handler.ts` beside it (the hub's
 * resolve-targets/organization-handler.ts and admit-event/organization-handler.ts) as `<name>/<file>`.
 */
export function functionEntries(root = "."): Array<{ name: string; entry: string }> {
  const dirs = readdirSync(join(root, "functions")).filter((d) => statSync(join(root, "functions", d)).isDirectory());
  return dirs.flatMap((dir) =>
    readdirSync(join(root, "functions", dir))
      .filter((file) => file.endsWith("handler.ts"))
      .sort()
      .map((file) => ({
        name: file === "handler.ts" ? dir : `${dir}/${file.replace(/\.ts$/, "")}`,
        entry: `functions/${dir}/${file}`,
      })),
  );
}

export interface FunctionBundle {
  /** `resolve-targets`, or `resolve-targets/organization-handler` for a second entry. */
  name: string;
  entry: string;
  bytes: number;
  /** What the bundle carries, by package (`zod`, `@aws-sdk/client-ec2`) or project folder (`shared/domain`). */
  contributors: Array<{ source: string; bytes: number }>;
  /** Every input file in the bundle, with the bytes it adds. */
  inputs: Record<string, number>;
}

/** Where a bundled input comes from: its npm package, or its project folder. */
export function sourceOf(inputPath: string): string {
  const inPackage = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(inputPath);
  if (inPackage?.[1]) return inPackage[1];
  return inputPath.split("/").slice(0, 2).join("/");
}

/**
 * Builds every function (or the ones named) in one esbuild run with the deployed options, in memory, and reads
 * each bundle's metafile.
 */
export async function buildFunctionBundles(entries = functionEntries(), root = "."): Promise<FunctionBundle[]> {
  const result = await build({
    ...functionBuildOptions(root),
    absWorkingDir: join(process.cwd(), root),
    entryPoints: Object.fromEntries(entries.map(({ name, entry }) => [name, entry])),
    outdir: ".build/function-bundles",
    sourcemap: false,
    write: false,
    metafile: true,
    logLevel: "error",
  });
  return entries.map(({ name, entry }) => bundleOf(result.metafile, name, entry));
}

function bundleOf(metafile: Metafile, name: string, entry: string): FunctionBundle {
  const output = Object.values(metafile.outputs).find((o) => o.entryPoint === entry);
  if (!output) throw new Error(`esbuild wrote no bundle for ${name}`);
  const inputs = Object.fromEntries(Object.entries(output.inputs).map(([path, input]) => [path, input.bytesInOutput]));
  const bySource = new Map<string, number>();
  for (const [path, bytes] of Object.entries(inputs)) {
    bySource.set(sourceOf(path), (bySource.get(sourceOf(path)) ?? 0) + bytes);
  }
  const contributors = [...bySource].map(([source, bytes]) => ({ source, bytes })).sort((a, b) => b.bytes - a.bytes);
  return { name, entry, bytes: output.bytes, contributors, inputs };
}
