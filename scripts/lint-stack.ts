// `npm run lint:stack`: packages the stack once per parameter set below (offline, no credentials) and runs cfn-lint,
// AWS's CloudFormation linter, on each packaged template and on every template in infra/spoke/. Fails on any error,
// and on any warning that infra/cfn-lint-accepted.json does not list with its reason. Informational findings are
// counted, never fatal.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as z from "zod";
import { packagedTemplate } from "./packaged-template.js";

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The stack configurations CI lints: the one place to add an option (one line in `everyOptionOn`). Every optional
 * resource, condition and policy must be rendered by at least one set.
 */
export const STACK_PARAMETER_SETS: Record<string, string[]> = {
  defaults: [],
  everyOptionOn: [
    "alertEmail=secops@example.com",
    "emailVerdicts=fail,error,alert",
    "slackWorkspaceId=T0EXAMPLE1",
    "slackChannelId=C0EXAMPLE2",
    "enforceAccountDefault=true",
    "ledgerPointInTimeRecovery=true",
    "securityHub=true",
  ],
  // Organization mode: the hub (README "Organization mode"), with per-account Slack routing.
  hub: [
    "organizationId=o-a1b2c3d4e5",
    "allowedOuIds=ou-ab12-11111111",
    "sweepRegions=eu-west-1,us-east-1",
    "slackRoutes=111122223333=arn:aws:sns:us-east-1:123456789012:imdsv2-guard-slack-payments",
  ],
};

/** cfn-lint 1.51.0: later versions download their schemas at run time, so they fail offline. */
const CFN_LINT_HINT =
  "cfn-lint is not installed. Install the version CI uses with `pipx install cfn-lint==1.51.0` (or " +
  "`python3 -m pip install --user cfn-lint==1.51.0`), then run `npm run lint:stack` again.";

const findingSchema = z.object({
  Filename: z.string(),
  Level: z.enum(["Error", "Warning", "Informational"]),
  Message: z.string(),
  Location: z.object({ Start: z.object({ LineNumber: z.number() }) }),
  Rule: z.object({ Id: z.string() }),
});
type Finding = z.infer<typeof findingSchema>;

const acceptedSchema = z.record(z.string().regex(/^W\d{4}$/, "only warnings may be accepted"), z.string().min(20));

async function cfnLintVersion(): Promise<string | undefined> {
  try {
    return (await run("cfn-lint", ["--version"])).stdout.trim();
  } catch {
    return undefined;
  }
}

/** The packaged template for these params (osls package, offline; cached by its inputs: scripts/packaged-template.ts). */
async function packageStack(params: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "imdsv2-guard-lint-"));
  const template = await packagedTemplate(params);
  await writeFile(join(dir, "cloudformation-template-update-stack.json"), JSON.stringify(template, null, 2));
  return dir;
}

/** cfn-lint exits non-zero whenever it finds anything; its JSON report on stdout is what counts. */
async function cfnLint(template: string): Promise<Finding[]> {
  const result = await run("cfn-lint", ["--format", "json", "--include-checks", "I", "--", template], {
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: unknown) => {
    const failed = z.object({ stdout: z.string(), stderr: z.string() }).safeParse(error);
    if (failed.success && failed.data.stdout.trim().startsWith("[")) return failed.data;
    throw new Error(`cfn-lint could not lint ${template}`, { cause: error });
  });
  return z.array(findingSchema).parse(JSON.parse(result.stdout));
}

async function spokeTemplates(): Promise<string[]> {
  const folder = join(root, "infra/spoke");
  if (!existsSync(folder)) return [];
  const names = await readdir(folder);
  return names.filter((name) => /\.(ya?ml|json|template)$/.test(name)).map((name) => join(folder, name));
}

function countByRule(findings: Finding[]): string {
  const counts = new Map<string, number>();
  for (const f of findings) counts.set(f.Rule.Id, (counts.get(f.Rule.Id) ?? 0) + 1);
  return [...counts.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, n]) => `${id} x${n}`)
    .join(", ");
}

async function main(): Promise<number> {
  const version = await cfnLintVersion();
  if (!version) {
    console.error(CFN_LINT_HINT);
    return 2;
  }
  const accepted = acceptedSchema.parse(JSON.parse(await readFile(join(root, "infra/cfn-lint-accepted.json"), "utf8")));
  console.log(`${version}; accepted warnings: ${Object.keys(accepted).join(", ") || "none"}`);

  const targets: { label: string; template: string; cleanup?: string }[] = [];
  let failed = 0;
  try {
    // Sequential: every package run shares serverless-esbuild's work folder.
    for (const [name, params] of Object.entries(STACK_PARAMETER_SETS)) {
      const dir = await packageStack(params);
      targets.push({
        label: `stack (${name})`,
        template: join(dir, "cloudformation-template-update-stack.json"),
        cleanup: dir,
      });
    }
    for (const template of await spokeTemplates()) targets.push({ label: relative(root, template), template });

    for (const { label, template } of targets) {
      const findings = await cfnLint(template);
      const blocking = findings.filter(
        (f) => f.Level === "Error" || (f.Level === "Warning" && !(f.Rule.Id in accepted)),
      );
      const acceptedHere = findings.filter((f) => f.Level === "Warning" && f.Rule.Id in accepted);
      const info = findings.filter((f) => f.Level === "Informational");
      console.log(
        `${blocking.length === 0 ? "ok  " : "FAIL"} ${label}: ${blocking.length} blocking` +
          (acceptedHere.length > 0 ? `; accepted ${countByRule(acceptedHere)}` : "") +
          (info.length > 0 ? `; informational ${countByRule(info)}` : ""),
      );
      for (const f of blocking)
        console.log(`  ${f.Rule.Id} ${f.Level} line ${f.Location.Start.LineNumber}: ${f.Message}`);
      failed += blocking.length;
    }
  } finally {
    for (const { cleanup } of targets) if (cleanup) await rm(cleanup, { recursive: true, force: true });
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
