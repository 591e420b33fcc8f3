import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Parser from "tree-sitter";
import PowerShell from "tree-sitter-powershell";
import { afterAll, describe, expect, it } from "vitest";
import { findPwsh, pwshVersion, runWindowsProbe } from "../local/sim/run-windows-probe.js";
import { judgeProbe, parseProbeOutput } from "../shared/domain/probe-verdict.js";
import probeWindows from "../shared/probes/probe-windows.ps1";
import {
  expectNoTokenLeak,
  expectWholeProbeDeadline,
  PROBE_BOUND_MS,
  PROBE_CASES,
  readingOf,
  startCase,
} from "./probe-harness.js";

// The Windows probe runs in PowerShell 7 (pwsh) when it is installed, against the same IMDS emulator as the Linux
// probe. .ci/run installs pwsh and sets IMDSV2_GUARD_REQUIRE_PWSH=1, so there a missing pwsh fails the suite; on a
// machine without it, only the tree-sitter checks below run, and the suite says so.
const pwsh = findPwsh();
const pwshRequired = process.env.IMDSV2_GUARD_REQUIRE_PWSH === "1";
/** Registers the pwsh tests only when pwsh is there: nothing is skipped, and the message below says what did not run. */
function withPwsh(name: string, body: () => void): void {
  if (pwsh !== undefined) describe(name, body);
}
if (pwsh === undefined) {
  process.stderr.write(
    "probe-windows.test.ts: pwsh not found, so probe-windows.ps1 is NOT run; only the tree-sitter checks apply " +
      "(install it: dotnet tool install --global PowerShell --version 7.6.9)\n",
  );
}

/**
 * Two pwsh at a time: each takes seconds of CPU to start and to compile its first request, and on a loaded 2-core
 * machine more of them at once push a cold first request past the probe's own 3 s deadline (a correct `null`, but not
 * what the case is testing).
 */
const pwshSlots = { free: 2, waiting: [] as Array<() => void> };
async function inPwshSlot<T>(work: () => Promise<T>): Promise<T> {
  if (pwshSlots.free === 0) await new Promise<void>((resolve) => pwshSlots.waiting.push(resolve));
  else pwshSlots.free--;
  try {
    return await work();
  } finally {
    const next = pwshSlots.waiting.shift();
    if (next) next();
    else pwshSlots.free++;
  }
}

const scratchDirs: string[] = [];
afterAll(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

function scriptFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "probe-windows-check-"));
  scratchDirs.push(dir);
  const file = join(dir, "probe.ps1");
  writeFileSync(file, text);
  return file;
}

/**
 * PowerShell's own parser on a file: its errors, and the syntax PowerShell 7 has but Windows PowerShell 5.1 does not
 * (??, ?., ternaries, && and || chains), which would parse here and fail on the instance.
 */
function powershellCheck(exe: string, file: string): { errors: string[]; notIn51: string[] } {
  const check = `
$tokens = $null; $errors = $null
$ast = [System.Management.Automation.Language.Parser]::ParseFile($env:PROBE_FILE, [ref]$tokens, [ref]$errors)
$notIn51 = @()
$notIn51 += @($tokens | Where-Object { $_.Kind -in @('QuestionQuestion', 'QuestionQuestionEquals', 'QuestionDot', 'QuestionLBracket', 'AndAnd', 'OrOr') } | ForEach-Object { $_.Text + ' at ' + $_.Extent.StartLineNumber })
$notIn51 += @($ast.FindAll({ param($n) $n.GetType().Name -in @('TernaryExpressionAst', 'PipelineChainAst') }, $true) | ForEach-Object { $_.GetType().Name + ' at ' + $_.Extent.StartLineNumber })
[ordered]@{ errors = @($errors | ForEach-Object { $_.ErrorId + ' at ' + $_.Extent.StartLineNumber }); notIn51 = $notIn51 } | ConvertTo-Json -Compress
`;
  const out = execFileSync(exe, ["-NoProfile", "-NonInteractive", "-Command", check], {
    encoding: "utf8",
    env: { ...process.env, PROBE_FILE: file },
  });
  const parsed = JSON.parse(out) as { errors: string[] | null; notIn51: string[] | null };
  return { errors: parsed.errors ?? [], notIn51: parsed.notIn51 ?? [] };
}

if (pwshRequired || pwsh !== undefined) {
  describe("pwsh for the Windows probe", () => {
    it("is installed wherever the suite requires it (CI), and is PowerShell 7", () => {
      // Assess: in CI a missing pwsh is a failure, not a skip
      expect(pwsh, "IMDSV2_GUARD_REQUIRE_PWSH=1 but pwsh is not installed").toBeDefined();
      expect(pwshVersion(pwsh ?? "")).toMatch(/^7\./);
    });
  });
}

withPwsh("probe-windows.ps1 in PowerShell's own parser", () => {
  it("parses without errors and uses no syntax Windows PowerShell 5.1 lacks", () => {
    // Act
    const result = powershellCheck(pwsh ?? "", scriptFile(probeWindows));

    // Assess
    expect(result).toEqual({ errors: [], notIn51: [] });
  });

  it("would notice a try whose catch was removed", () => {
    // Prepare: the edit the tree-sitter grammar misses
    const firstCatch = probeWindows.indexOf("} catch {");
    const end = probeWindows.indexOf("\n        }\n", firstCatch);
    expect(firstCatch).toBeGreaterThan(0);
    const broken = `${probeWindows.slice(0, firstCatch + 1)}${probeWindows.slice(end + "\n        }".length)}`;

    // Act
    const result = powershellCheck(pwsh ?? "", scriptFile(broken));

    // Assess
    expect(result.errors).toEqual([expect.stringMatching(/^MissingCatchOrFinally at \d+$/)]);
  });

  it("would notice syntax that only PowerShell 7 has", () => {
    // Act
    const result = powershellCheck(pwsh ?? "", scriptFile("$a = $null ?? 1\n$b = $a ? 1 : 2\nGet-Date && Get-Date\n"));

    // Assess
    expect(result.errors).toEqual([]);
    expect(result.notIn51).toEqual(["?? at 1", "&& at 3", "TernaryExpressionAst at 2", "PipelineChainAst at 3"]);
  });
});

withPwsh("probe-windows.ps1 run in pwsh against the IMDS emulator", () => {
  it.concurrent.each(PROBE_CASES)(
    "$name: prints the statuses, stays in its deadline, leaks nothing",
    async (probeCase) => {
      // Prepare
      const running = await startCase(probeCase);

      try {
        // Act
        const run = await inPwshSlot(() => runWindowsProbe(pwsh ?? "", probeWindows, running.endpoints));

        // Assess
        const { v4, v6 } = probeCase.expected;
        const answered = [
          ...(Object.values(v4).some((s) => s !== null) ? ["ipv4"] : []),
          ...(Object.values(v6).some((s) => s !== null) ? ["ipv6"] : []),
        ];
        expect(readingOf(run)).toEqual({ ...v4, client: "HttpWebRequest", v6, answered });
        expect(run.durationMs).toBeLessThan(PROBE_BOUND_MS);
        const reading = parseProbeOutput(run.stdout);
        if (!reading) throw new Error("the reading does not parse");
        const judgement = judgeProbe(reading);
        expect(judgement.verdict).toBe(probeCase.verdict);
        expect(`${judgement.reason} ${judgement.warnings.join(" ")}`).toContain(probeCase.reason);
        expectNoTokenLeak(run, running);
        // HttpWebRequest with AllowAutoRedirect off sends nothing to the redirect target, not even a token-less GET.
        expect(running.collector.received).toEqual([]);
      } finally {
        await running.close();
      }
    },
  );

  it("stops asking a server that answers each request just in time", async () => {
    // Act / Assess
    await expectWholeProbeDeadline(
      (endpoints) => inPwshSlot(() => runWindowsProbe(pwsh ?? "", probeWindows, endpoints)),
      {
        v1: 401,
        v1Credentials: 401,
        token: 200,
        v2: 200,
      },
    );
  });

  it("refuses endpoints that are not loopback, in the runner and in the script", async () => {
    // Act / Assess
    await expect(
      runWindowsProbe(pwsh ?? "", probeWindows, { v4: "http://169.254.169.254", v6: "http://[::1]:1" }),
    ).rejects.toThrow(/v4/);
    const tripwire = spawnSync(pwsh ?? "", ["-NoProfile", "-NonInteractive", "-File", scriptFile(probeWindows)], {
      encoding: "utf8",
      // 0.0.0.0 and [::] are not what the tripwire allows, and if it failed they would reach only this host.
      env: {
        ...process.env,
        IMDS_ENDPOINT: "http://0.0.0.0:9",
        IMDS_ENDPOINT_V6: "http://[::]:9",
        IMDS_PROBE_LOOPBACK_ONLY: "1",
      },
    });
    expect(tripwire.status).toBe(2);
    expect(tripwire.stderr).toContain("not a loopback endpoint");
    expect(tripwire.stdout).toBe("");
  });
});

// Without pwsh, the script is held to tree-sitter's PowerShell grammar and to its contract, read from the tree.

function parse(source: string): Parser.Tree {
  const parser = new Parser();
  parser.setLanguage(PowerShell);
  return parser.parse(source);
}

function descendants(node: Parser.SyntaxNode): Parser.SyntaxNode[] {
  return [node, ...node.children.flatMap(descendants)];
}

function syntaxProblems(tree: Parser.Tree): string[] {
  return descendants(tree.rootNode)
    .filter((node) => node.type === "ERROR" || node.isMissing)
    .map((node) => `${node.isMissing ? "MISSING" : "ERROR"} at ${node.startPosition.row + 1}: ${node.text}`);
}

const nodes = descendants(parse(probeWindows).rootNode);
const commands = nodes.filter((node) => node.type === "command");
const assignments = nodes.filter((node) => node.type === "assignment_expression");

function commandName(command: Parser.SyntaxNode): string {
  return command.children.find((child) => child.type === "command_name")?.text ?? "";
}

describe("probe-windows.ps1 in tree-sitter's PowerShell grammar (the only check without pwsh)", () => {
  it("parses without ERROR or MISSING nodes", () => {
    // Act
    const tree = parse(probeWindows);

    // Assess
    expect(syntaxProblems(tree)).toEqual([]);
    expect(tree.rootNode.hasError).toBe(false);
  });

  it("would notice a broken script", () => {
    // Prepare
    const broken = "function Broken { if ($x -eq { Write-Output 'x' \n $y = (1 + \n";

    // Act
    const tree = parse(broken);

    // Assess
    expect(tree.rootNode.hasError).toBe(true);
    expect(syntaxProblems(tree)).not.toEqual([]);
  });
});

describe("probe-windows.ps1 contract", () => {
  it("reads both endpoints from IMDS_ENDPOINT and IMDS_ENDPOINT_V6", () => {
    // Assess
    const variables = nodes.filter((node) => node.type === "variable").map((node) => node.text);
    expect(variables).toContain("$env:IMDS_ENDPOINT");
    expect(variables).toContain("$env:IMDS_ENDPOINT_V6");
  });

  it("makes every request through one HttpWebRequest, with no redirect and one 3 s deadline", () => {
    // Prepare
    const requestFactories = nodes.filter(
      (node) => node.type === "invokation_expression" && /::Create$/.test(node.text.split("(")[0] ?? ""),
    );
    const cmdletRequests = commands.filter((node) =>
      /^(Invoke-WebRequest|Invoke-RestMethod|iwr|irm|curl|wget)$/i.test(commandName(node)),
    );
    const assigned = (property: string) =>
      assignments.filter((node) => node.firstChild?.text.endsWith(property)).map((node) => node.lastChild?.text);

    // Assess
    expect(requestFactories).toHaveLength(1);
    expect(cmdletRequests).toEqual([]);
    expect(assigned(".AllowAutoRedirect")).toEqual(["$false"]);
    expect(assigned("$requestMs")).toEqual(["3000"]);
    expect(probeWindows).toContain("AsyncWaitHandle.WaitOne($requestMs)");
    expect(probeWindows).toContain("AsyncWaitHandle.WaitOne([int]$remaining)");
  });

  it("never writes the token out", () => {
    // Prepare
    const outputCommands = commands.filter((node) =>
      /^(Write-\w+|Out-\w+|echo|Add-Content|Set-Content|Tee-Object)$/i.test(commandName(node)),
    );
    const bareStatements = nodes.filter(
      (node) =>
        node.type === "pipeline" && node.parent?.type === "statement_list" && /^\$token\w*[\w.]*$/i.test(node.text),
    );

    // Assess
    expect(outputCommands.map((node) => node.text).filter((text) => /\$token|\.Body/i.test(text))).toEqual([]);
    expect(bareStatements.map((node) => node.text)).toEqual([]);
  });

  it("prints the reading as compressed JSON, built from statuses only", () => {
    // Prepare
    const printed = commands.filter((node) => commandName(node) === "ConvertTo-Json");
    const verdict = assignments.find((node) => node.firstChild?.text === "$verdict");
    const entries = descendants(verdict ?? parse("").rootNode).filter((node) => node.type === "hash_entry");

    // Assess
    expect(printed.map((node) => node.text)).toEqual(["ConvertTo-Json -InputObject $verdict -Compress -Depth 3"]);
    expect(entries.map((entry) => entry.firstChild?.text)).toEqual([
      "v1",
      "v1Credentials",
      "token",
      "v2",
      "client",
      "v6",
      "answered",
    ]);
    expect(entries.map((entry) => entry.text).filter((text) => /\$token\b|\.Body/i.test(text))).toEqual([]);
  });
});
