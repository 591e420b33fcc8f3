import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/**
 * `osls package` of the real serverless.yml (offline, no AWS credentials), as test/template.test.ts does it, with the
 * packaged CloudFormation template cached under node_modules/.cache by a hash of everything the template is made
 * from (serverless.yml, infra/, package.json and the params), so a second test file or a rerun does not wait a
 * minute for the same template. Only the template is cached, never the function bundles.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const execFileAsync = promisify(execFile);
const CACHE = join(root, "node_modules/.cache/imdsv2-guard-templates");

async function inputsHash(params: readonly string[], region: string, stage: string): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify({ params, region, stage }));
  const files = ["serverless.yml", "package.json"];
  for (const name of (await readdir(join(root, "infra"), { recursive: true })).sort()) {
    // infra/spoke/ is deployed on its own, never packaged by osls.
    if (/\.(yml|yaml|json|cjs|ts)$/.test(name) && !name.startsWith("spoke")) files.push(join("infra", name));
  }
  for (const file of files) hash.update(file).update(await readFile(join(root, file)));
  return hash.digest("hex");
}

/** The packaged template for these params (`name=value`), from the cache when its inputs have not changed. */
export async function packagedTemplate(
  params: readonly string[],
  region = "us-east-1",
  stage = "dev",
): Promise<unknown> {
  const key = await inputsHash(params, region, stage);
  const cached = join(CACHE, `${key}.json`);
  try {
    return JSON.parse(await readFile(cached, "utf8"));
  } catch {
    // Not cached yet: package below.
  }
  const dir = await mkdtemp(join(tmpdir(), "imdsv2-guard-package-"));
  try {
    await oslsPackage(dir, params, { region, stage });
    const text = await readFile(join(dir, "cloudformation-template-update-stack.json"), "utf8");
    await mkdir(CACHE, { recursive: true });
    await writeFile(cached, text);
    return JSON.parse(text);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs `osls package` into `dir`, from the project at `cwd` (the checkout by default): offline, with no AWS
 * credentials, no instance metadata service and no telemetry in its environment. serverless-esbuild builds each
 * function in a folder of os.tmpdir() and leaves it there (about 5 MB each), so the child gets a temporary directory
 * of its own, removed afterwards: packaging leaves nothing in the caller's TMPDIR.
 */
export async function oslsPackage(
  dir: string,
  params: readonly string[],
  { region = "us-east-1", stage = "dev", cwd = root }: { region?: string; stage?: string; cwd?: string } = {},
): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), "imdsv2-guard-osls-tmp-"));
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith("AWS_")) env[name] = value;
  Object.assign(env, {
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_CONFIG_FILE: "/dev/null",
    SLS_TELEMETRY_DISABLED: "1",
    TMPDIR: scratch,
    TMP: scratch,
    TEMP: scratch,
  });
  const args = [
    "package",
    "--stage",
    stage,
    "--region",
    region,
    "--package",
    dir,
    ...params.map((p) => `--param=${p}`),
  ];
  try {
    // Generous: packaging is slow on a loaded machine, and speed is not what any caller measures.
    await execFileAsync(process.execPath, [join(root, "node_modules/osls/bin/serverless.js"), ...args], {
      cwd,
      env,
      timeout: 900_000,
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
