import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { HELP } from "../audit/cli.js";
import { type AuditIo, usage } from "../audit/command.js";
import { runSimulatedAudit, SIMULATED_MODE } from "../local/runner/simulated-audit.js";
import { schemaErrors } from "./schemas.js";

/** The conventions every subcommand keeps (issue 22): version, profile, output formats, repeated flags, exit 3. */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const columns = (text: string) => Math.max(...text.split("\n").map((l) => [...l].length));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The installed command (bin/imdsv2-guard.mjs, the committed bundle), with no AWS configuration at all. */
function installed(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const inherited: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("AWS_")) inherited[k] = v;
    const child = spawn(process.execPath, ["bin/imdsv2-guard.mjs", ...args], {
      cwd: ROOT,
      env: { ...inherited, AWS_EC2_METADATA_DISABLED: "true", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function simulated(argv: string[], width = 80): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: AuditIo = {
    width,
    stdout: { write: (t: string) => (stdout += t), isTTY: false },
    stderr: { write: (t: string) => (stderr += t), isTTY: false },
  };
  const code = await runSimulatedAudit(argv, io);
  return { code, stdout, stderr };
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("the installed command", () => {
  it("--version prints the package's version, for the command and each subcommand", async () => {
    // Arrange
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };

    // Act
    const runs = await Promise.all([
      installed(["--version"]),
      installed(["audit", "--version"]),
      installed(["doctor", "--version"]),
      installed(["selftest", "--version"]),
    ]);

    // Assess
    for (const run of runs) expect(run).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
  });

  it("audit --profile NAME without such a profile fails with one clear line and no stack trace", async () => {
    // Arrange: config files that name another profile
    const dir = mkdtempSync(join(tmpdir(), "imdsv2-guard-profile-"));
    dirs.push(dir);
    writeFileSync(join(dir, "config"), "[default]\nregion = eu-west-1\n\n[profile ops]\nregion = eu-west-1\n");
    writeFileSync(join(dir, "credentials"), "[build]\naws_access_key_id = AKIAEXAMPLE\n");
    const env = { AWS_CONFIG_FILE: join(dir, "config"), AWS_SHARED_CREDENTIALS_FILE: join(dir, "credentials") };

    // Act
    const run = await installed(["audit", "--profile", "prod"], env);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr.split("\n")[0]).toBe(
      `imdsv2-guard audit: --profile: no profile prod in ${env.AWS_CONFIG_FILE} or ${env.AWS_SHARED_CREDENTIALS_FILE} (aws configure --profile prod, or aws configure sso)`,
    );
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it("every help fits 80 columns", async () => {
    // Act
    const helps = await Promise.all(
      ["--help", "audit --help", "doctor --help", "selftest --help"].map((a) => installed(a.split(" "))),
    );

    // Assess
    for (const help of helps) {
      expect(help.code).toBe(0);
      expect(columns(help.stdout)).toBeLessThanOrEqual(80);
    }
    expect(columns(HELP)).toBeLessThanOrEqual(80);
    expect(columns(usage(SIMULATED_MODE))).toBeLessThanOrEqual(80);
  });

  it("prints unknown commands without their control characters", async () => {
    // Act
    const run = await installed(["\u001b[31mred"]);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).not.toContain("\u001b");
    expect(run.stderr).toContain("unknown command: ?[31mred");
  });
});

describe("audit conventions (on the simulated account)", () => {
  it("--fail-on optional exits 3 while an instance still allows IMDSv1, 0 when none does", async () => {
    // Arrange: a fleet that requires IMDSv2 everywhere
    const dir = mkdtempSync(join(tmpdir(), "imdsv2-guard-failon-"));
    dirs.push(dir);
    const file = join(dir, "compliant.json");
    writeFileSync(file, JSON.stringify({ instances: [{ id: "i-0aaaaaaaaaaaaaaa1", httpTokens: "required" }] }));

    // Act
    const mixed = await simulated(["--fail-on", "optional"]);
    const compliant = await simulated(["--fail-on", "optional", "--scenario", file]);
    const without = await simulated([]);
    const bad = await simulated(["--fail-on", "required"]);

    // Assess
    expect(mixed.code).toBe(3);
    expect(compliant.code).toBe(0);
    expect(without.code).toBe(0);
    expect(bad.code).toBe(2);
  });

  it("accumulates repeated list flags and refuses other repeated flags", async () => {
    // Act
    const regions = await simulated(["--regions", "eu-west-1", "--region", "eu-west-1", "--output", "json"]);
    const twice = await simulated(["--output", "json", "--output", "csv"]);
    const outside = await simulated(["--regions", "eu-west-1", "--regions", "us-east-1"]);

    // Assess
    expect(regions.code).toBe(0);
    expect(JSON.parse(regions.stdout).regions.map((r: { region: string }) => r.region)).toEqual(["eu-west-1"]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/^imdsv2-guard audit: --output given 2 times/);
    // The second --regions was kept, not dropped: us-east-1 is refused because this account has only eu-west-1.
    expect(outside.stderr).toMatch(/^imdsv2-guard audit: --regions: this account has only eu-west-1/);
  });

  it("--output csv has one row per instance, and --output json validates against audit.schema.json", async () => {
    // Act
    const csv = await simulated(["--output", "csv"]);
    const json = await simulated(["--output", "json"]);
    const org = await simulated(["--scenario", "local/scenarios/default.json", "--accounts", "all", "--json"]);

    // Assess
    const lines = csv.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(
      "account,region,instanceId,name,state,platform,httpTokens,httpEndpoint,imdsV1Calls24h,imdsV1Calls7d,readiness",
    );
    expect(lines).toHaveLength(1 + JSON.parse(json.stdout).regions[0].instances.length);
    expect(schemaErrors("audit", JSON.parse(json.stdout))).toEqual([]);
    expect(schemaErrors("audit", JSON.parse(org.stdout))).toEqual([]);
    // A schema that accepts anything would pass the two above.
    expect(schemaErrors("audit", { schema: "imdsv2-guard.audit.v1", regions: [{ region: "x" }] })).not.toEqual([]);
  });

  it("the report fits 80 columns", async () => {
    // Act
    const out = await simulated([], 80);

    // Assess
    expect(out.code).toBe(0);
    expect(columns(out.stdout)).toBeLessThanOrEqual(80);
    expect(out.stdout).toMatch(/i-0a0d1700000000005 .* 1440\/10k +exempt$/m);
  });
});
