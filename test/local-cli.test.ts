import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import * as z from "zod";
import { schemaErrors } from "./schemas.js";

/** `npm start` as a user runs it: scripts/run-local.mjs in a child process, from the repository root as npm does. */

const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function npmStart(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const { COLUMNS: _columns, INIT_CWD: _initCwd, ...inherited } = process.env;
    const child = spawn(process.execPath, ["scripts/run-local.mjs", ...args], {
      cwd: ROOT,
      env: { ...inherited, ...env },
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

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "imdsv2-guard-cli-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Terminal columns a line takes: its code points (the output has no wide characters in its tables). */
const columns = (line: string) => [...line].length;

describe("npm start", () => {
  it("fits every instance row in COLUMNS=100, wrapping reasons inside their column", async () => {
    // Act
    const run = await npmStart([], { COLUMNS: "100" });

    // Assess
    expect(run.code).toBe(0);
    const rows = run.stdout.split("\n").filter((l) => /^i-[0-9a-f]+ {2}/.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(10);
    expect(rows.filter((r) => columns(r) > 100)).toEqual([]);
    expect(Math.max(...run.stdout.split("\n").map(columns))).toBeLessThanOrEqual(100);
    // A reason too long for its column continues below it, aligned with it.
    const failRow = run.stdout.split("\n").findIndex((l) => /^i-0a1b2c3d4e5f60007 +FAIL /.test(l));
    const reasonColumn = run.stdout.split("\n")[failRow]?.indexOf("IMDSv1 still answers") ?? -1;
    expect(reasonColumn).toBeGreaterThan(0);
    expect(run.stdout.split("\n")[failRow + 1]?.slice(0, reasonColumn).trim()).toBe("");
  });

  it("fits COLUMNS=80 (the reason under its row), one line per notification, and ends with the summary", async () => {
    // Act
    const run = await npmStart([], { COLUMNS: "80" });

    // Assess
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines.filter((l) => columns(l) > 80)).toEqual([]);
    expect(run.stdout).not.toContain("--- Email");
    expect(run.stdout).toContain("== Notifications (14), one line each\n- [imdsv2-guard] FAIL: 1 of 8 instance(s)");
    const summary = lines.slice(lines.indexOf("== Summary"));
    expect(summary.length).toBeGreaterThan(10);
    expect(summary.join("\n")).toMatch(/^RunInstances +FAIL +3 pass, 1 fail, 1 unverified, 1 exempt, 1$/m);
    expect(summary).toContain("What to do next:");
    // The commands to copy are whole, each on a line of its own.
    expect(lines.slice(-3)).toEqual([
      "  npm start -- --show-notifications",
      "or as JSON with:",
      "  npm start --silent -- --json > out.json",
    ]);
    // A reason is under its row, never broken inside a word.
    expect(run.stdout).toContain(
      "\n    the instance needs the agent and an instance profile with\n    AmazonSSMManagedInstanceCore.",
    );
  });

  it("cleans a tag's terminal escape codes out of everything it prints", async () => {
    // Prepare: the exempt instance's reason carries a screen clear and a window-title sequence
    const scenario = JSON.parse(readFileSync(join(ROOT, "local/scenarios/single-account.json"), "utf8"));
    scenario.events = scenario.events.slice(0, 1);
    scenario.sweepAtSeconds = [];
    const exempt = scenario.instances.find((i: { id: string }) => i.id === "i-0a1b2c3d4e5f60003");
    exempt.tags["imdsv2-guard:exempt"] = "vendor \u001b[2J\u001b]0;pwned\u0007agent\ttab";
    const file = join(tempDir(), "escapes.json");
    writeFileSync(file, JSON.stringify(scenario));

    // Act
    const run = await npmStart(["--scenario", file, "--show-notifications"], { COLUMNS: "200" });

    // Assess
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("i-0a1b2c3d4e5f60003");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters is the point
    expect(run.stdout.match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g)).toBeNull();
  });

  it("shows each notification as the email and as the Slack card with --show-notifications", async () => {
    // Act: wide, so that no sentence below is wrapped.
    const run = await npmStart(["--show-notifications"], { COLUMNS: "300" });

    // Assess
    expect(run.stdout).toContain(
      "--- Email\nSubject: [imdsv2-guard] FAIL: 1 of 8 instance(s) - RunInstances in payments-prod/eu-west-1",
    );
    expect(run.stdout).toContain("--- Slack (AWS Chatbot custom notification)\n🚨 imdsv2-guard: FAIL (RunInstances)");
    const slack = run.stdout.slice(run.stdout.indexOf("--- Slack"));
    expect(slack).toContain("Next steps\n• ");
    // As Slack shows it: no escapes, entities decoded, a tag's formatting marks shown as look-alikes.
    expect(slack).not.toContain("\\");
    expect(slack).toContain("at 2026-11-28T09:00:00Z");
    expect(slack).toContain("needs IMDSv1 until CHG-1234 \u2217ships\u2217 '$(rm -rf /)'");
  });

  it("prints JSON that parses and validates, logs on stderr only, with each report's Slack payload", async () => {
    // Act: what `npm start --silent -- --json --verbose` runs (the test environment silences the logs: not here).
    const run = await npmStart(["--json", "--verbose"], { POWERTOOLS_LOG_LEVEL: "INFO" });

    // Assess
    expect(run.code).toBe(0);
    expect(schemaErrors("run", JSON.parse(run.stdout))).toEqual([]);
    expect(run.stderr).toContain('"level":"INFO"');
    const doc = z
      .object({
        reports: z.array(z.object({ event: z.object({ eventId: z.string() }) })),
        notifications: z.array(
          z.object({
            subject: z.string(),
            email: z.string(),
            slack: z.object({
              id: z.string(),
              content: z.object({
                textType: z.literal("client-markdown"),
                title: z.string(),
                description: z.string(),
                nextSteps: z.array(z.string()),
              }),
            }),
          }),
        ),
      })
      .parse(JSON.parse(run.stdout));
    const carded = new Set(doc.notifications.map((n) => n.slack.id));
    expect(doc.reports.map((r) => r.event.eventId).filter((id) => !carded.has(id))).toEqual([]);
  });

  it("says in --help how to get JSON that parses", async () => {
    // Act
    const run = await npmStart(["--help"]);

    // Assess
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("npm start --silent -- --json > out.json");
    expect(run.stdout).toContain("npm start -- audit");
  });
});

describe("npm start --scenario", () => {
  it("rejects a misspelt key, naming the key and the file", async () => {
    // Prepare
    const file = join(tempDir(), "typo.json");
    writeFileSync(
      file,
      JSON.stringify({ name: "typo", event: [], instances: [{ id: "i-0a1b2c3d4e5f60001", tag: {} }] }),
    );

    // Act
    const run = await npmStart(["--scenario", file]);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`Invalid scenario ${file}:`);
    expect(run.stderr).toMatch(/Unrecognized key: "event"/);
    expect(run.stderr).toMatch(/instances\.0: Unrecognized key: "tag"/);
    expect(run.stdout).toBe("");
  });

  it("names the file when it is not JSON, is missing, or is a directory", async () => {
    // Prepare
    const dir = tempDir();
    const broken = join(dir, "broken.json");
    writeFileSync(broken, '{ "instances": [ }');
    mkdirSync(join(dir, "folder.json"));

    // Act
    const notJson = await npmStart(["--scenario", broken]);
    const missing = await npmStart(["--scenario", join(dir, "missing.json")]);
    const folder = await npmStart(["--scenario", join(dir, "folder.json")]);

    // Assess
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(new RegExp(`^imdsv2-guard: Scenario ${broken} is not valid JSON: `));
    expect(missing.stderr).toBe(`imdsv2-guard: Cannot read scenario ${join(dir, "missing.json")}: no such file\n`);
    expect(folder.stderr).toBe(
      `imdsv2-guard: Cannot read scenario ${join(dir, "folder.json")}: a directory, not a file\n`,
    );
  });

  it("reads a relative path from where the user ran npm (INIT_CWD), not from the repository root", async () => {
    // Prepare: npm runs the script from the package root and says where the user was in INIT_CWD.
    const dir = tempDir();
    writeFileSync(join(dir, "mine.json"), JSON.stringify({ name: "from-my-directory", instances: [] }));

    // Act
    const run = await npmStart(["--scenario", "mine.json"], { INIT_CWD: dir });

    // Assess
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('local run of scenario "from-my-directory"');
  });
});
