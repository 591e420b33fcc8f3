import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package's version: `imdsv2-guard --version`, and what doctor expects the stacks at. Read from the package.json
 * above this module at run time rather than imported: an import would put the whole file (its devDependencies
 * included) into the installed command's bundle. The source, the bundle (bin/) and `npm start`'s build (dist/local/)
 * all sit below it.
 */
export const VERSION: string = packageVersion(dirname(fileURLToPath(import.meta.url)));

function packageVersion(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "imdsv2-guard" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // Not here: look one level up.
    }
    if (dirname(dir) === dir) return "unknown";
  }
}

export type OutputFormat = "table" | "json" | "csv";

/**
 * One value per flag: a second `--stage` is refused rather than silently winning over the first. List flags
 * (`--regions`, `--accounts`, `--instances`) accumulate instead: `--regions a --regions b` means `a,b`.
 * parseArgs is given `multiple: true` for every string flag so that both can be told apart.
 */
export function single(values: Record<string, unknown>, flag: string): string | undefined {
  const v = values[flag];
  if (v === undefined) return undefined;
  const list = Array.isArray(v) ? (v as string[]) : [String(v)];
  if (list.length > 1) throw new Error(`--${flag} given ${list.length} times (give it once)`);
  return list[0];
}

/** A list flag's values, every occurrence of it comma-split and joined. */
export function accumulated(values: Record<string, unknown>, flag: string): string | undefined {
  const v = values[flag];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? (v as string[]) : [String(v)]).join(",");
}

/** `--output table|json|csv`; `--json` stays as the short form of `--output json`. */
export function outputFormat(output: string | undefined, json: boolean): OutputFormat {
  if (output !== undefined && output !== "table" && output !== "json" && output !== "csv") {
    throw new Error(`--output: ${output} is not one of table, json, csv`);
  }
  if (json && output !== undefined && output !== "json") throw new Error(`--json and --output ${output} disagree`);
  return json ? "json" : (output ?? "table");
}

/**
 * `--profile NAME`: checked here, before any client exists, so a typo is one clear line rather than the SDK's
 * credential-chain error. The profile is then given to the SDK through AWS_PROFILE, which every client reads.
 * The files are those the SDK reads ("Shared config and credentials files", AWS SDKs and Tools Reference Guide).
 */
export function useProfile(profile: string, env: NodeJS.ProcessEnv = process.env): void {
  if (!/^[\w+=,.@-]{1,128}$/.test(profile)) throw new Error(`--profile: not a profile name: ${printable(profile)}`);
  const config = env.AWS_CONFIG_FILE ?? join(homedir(), ".aws", "config");
  const credentials = env.AWS_SHARED_CREDENTIALS_FILE ?? join(homedir(), ".aws", "credentials");
  const sections = [
    ...iniSections(config).map((s) => (s === "default" ? s : s.replace(/^profile\s+/, ""))),
    ...iniSections(credentials),
  ];
  if (!sections.includes(profile)) {
    throw new Error(
      `--profile: no profile ${profile} in ${config} or ${credentials} (aws configure --profile ${profile}, or aws configure sso)`,
    );
  }
  env.AWS_PROFILE = profile;
}

/** `--region NAME`: the SDK's region for every client (AWS_REGION). */
export function useRegion(region: string, env: NodeJS.ProcessEnv = process.env): void {
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw new Error(`--region: not a region name: ${printable(region)}`);
  env.AWS_REGION = region;
}

function iniSections(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*\[([^\]]+)\]\s*$/gm)].map((m) => (m[1] ?? "").trim());
}

/** Control characters out of text a terminal will show (terminal escape codes in a tag value, in an argument). */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, "?");
}

/** One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break; control characters cleaned. */
export function csvField(value: string | number | boolean | undefined): string {
  const text = printable(value === undefined ? "" : String(value)).replace(/\n/g, " ");
  return /[",]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csv(header: readonly string[], rows: readonly (readonly (string | number | boolean | undefined)[])[]) {
  return `${[header, ...rows].map((r) => r.map(csvField).join(",")).join("\n")}\n`;
}
