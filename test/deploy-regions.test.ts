import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

/** scripts/deploy-regions.mjs: one stack per region, every parameter from one file; checked through --dry-run. */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "imdsv2-guard-deploy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(args: string[]) {
  const run = spawnSync(process.execPath, ["scripts/deploy-regions.mjs", ...args], { cwd: ROOT, encoding: "utf8" });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

function paramFile(name: string, params: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(params));
  return file;
}

describe("scripts/deploy-regions.mjs --dry-run", () => {
  it("prints one deploy per region, in order, each with every parameter of the file", () => {
    // Prepare
    const file = paramFile("audit.json", {
      mode: "audit",
      alertEmail: "secops@example.com",
      slackVerdicts: "fail,error",
    });

    // Act
    const run = script([
      "--param-file",
      file,
      "--regions",
      "eu-west-1,us-east-1",
      "--regions",
      "eu-west-1",
      "--stage",
      "prod",
      "--dry-run",
    ]);

    // Assess
    expect(run.code).toBe(0);
    expect(run.stdout.trimEnd().split("\n")).toEqual([
      "npx osls deploy --stage prod --region eu-west-1 --param=mode=audit --param=alertEmail=secops@example.com --param=slackVerdicts=fail,error",
      "npx osls deploy --stage prod --region us-east-1 --param=mode=audit --param=alertEmail=secops@example.com --param=slackVerdicts=fail,error",
    ]);
  });

  it("audit -> enforce changes one value of the file, and alertEmail is carried over", () => {
    // Prepare
    const audit = paramFile("a.json", { mode: "audit", alertEmail: "secops@example.com" });
    const enforce = paramFile("e.json", { mode: "enforce", alertEmail: "secops@example.com" });

    // Act
    const before = script(["--param-file", audit, "--regions", "eu-west-1", "--dry-run"]).stdout;
    const after = script(["--param-file", enforce, "--regions", "eu-west-1", "--dry-run"]).stdout;

    // Assess
    expect(after).toBe(before.replace("--param=mode=audit", "--param=mode=enforce"));
    expect(after).toContain("--param=alertEmail=secops@example.com");
  });

  it("refuses a file without alertEmail (a deploy without it drops the subscription), and bad input", () => {
    // Act
    const noEmail = script([
      "--param-file",
      paramFile("n.json", { mode: "enforce" }),
      "--regions",
      "eu-west-1",
      "--dry-run",
    ]);
    const badRegion = script([
      "--param-file",
      paramFile("b.json", { alertEmail: "" }),
      "--regions",
      "eu-west-1;rm",
      "--dry-run",
    ]);
    const nested = script([
      "--param-file",
      paramFile("o.json", { alertEmail: "", x: { y: 1 } }),
      "--regions",
      "eu-west-1",
      "--dry-run",
    ]);

    // Assess
    expect(noEmail.code).toBe(2);
    expect(noEmail.stderr).toMatch(/^deploy-regions: --param-file: no alertEmail/);
    expect(badRegion.code).toBe(2);
    expect(nested.code).toBe(2);
    expect(noEmail.stdout + badRegion.stdout + nested.stdout).toBe("");
  });

  it("--remove prints one remove per region", () => {
    // Act
    const run = script(["--remove", "--regions", "eu-west-1,us-east-1", "--stage", "prod", "--dry-run"]);

    // Assess
    expect(run.stdout.trimEnd().split("\n")).toEqual([
      "npx osls remove --stage prod --region eu-west-1",
      "npx osls remove --stage prod --region us-east-1",
    ]);
  });
});
