import Parser from "tree-sitter";
import PowerShell from "tree-sitter-powershell";
import { describe, expect, it } from "vitest";
import probeWindows from "../shared/probes/probe-windows.ps1";

// No PowerShell runs here, so the Windows probe is held to a clean parse and to its contract, read from the tree.

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

/** `$x.Timeout = 3000` → 3000 for "Timeout". */
function assignedNumbers(property: string): number[] {
  return assignments
    .filter((node) => node.firstChild?.text.endsWith(`.${property}`))
    .map((node) => Number(node.lastChild?.text));
}

describe("probe-windows.ps1 syntax", () => {
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
  it("reads the endpoint from IMDS_ENDPOINT", () => {
    // Assess
    expect(nodes.some((node) => node.type === "variable" && node.text === "$env:IMDS_ENDPOINT")).toBe(true);
  });

  it("bounds every request to 3 s", () => {
    // Prepare: every request is made by the one HttpWebRequest built in Invoke-ImdsRequest
    const requestFactories = nodes.filter(
      (node) => node.type === "invokation_expression" && /::Create$/.test(node.text.split("(")[0] ?? ""),
    );
    const cmdletRequests = commands.filter((node) =>
      /^(Invoke-WebRequest|Invoke-RestMethod|iwr|irm|curl|wget)$/i.test(commandName(node)),
    );

    // Assess
    expect(requestFactories).toHaveLength(1);
    expect(cmdletRequests).toEqual([]);
    expect(assignedNumbers("Timeout")).toEqual([3000]);
    expect(assignedNumbers("ReadWriteTimeout")).toEqual([3000]);
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

  it("prints the four keys as compressed JSON, built from statuses only", () => {
    // Prepare
    const printed = commands.filter((node) => commandName(node) === "ConvertTo-Json");
    const verdict = assignments.find((node) => node.firstChild?.text === "$verdict");
    const entries = descendants(verdict ?? parse("").rootNode).filter((node) => node.type === "hash_entry");

    // Assess
    expect(printed.map((node) => node.text)).toEqual(["ConvertTo-Json -InputObject $verdict -Compress"]);
    expect(entries.map((entry) => entry.firstChild?.text)).toEqual(["v1", "token", "v2", "client"]);
    expect(entries.map((entry) => entry.text).filter((text) => /\$token\b|\.Body/i.test(text))).toEqual([]);
  });
});
