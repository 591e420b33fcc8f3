// What `npm run build:probe-documents` (scripts/build-probe-documents.ts) writes: renders the guard's SSM Command documents (shared/probes/probe-document.ts) from
// the probe scripts into the two templates that create them:
// - infra/probe-documents.json, the single-account stack's documents (serverless.yml's resources);
// - infra/spoke/spoke-region.yml, between its BEGIN/END markers, the spoke's documents in every member account and
//   region (plain CloudFormation: StackSets take no build step, so the text is in the file).
// test/probe-documents.test.ts fails when either is not what this script writes.
import { readFileSync } from "node:fs";
import {
  type ProbePlatform,
  probeDocumentContent,
  probeDocumentName,
  SPOKE_PROBE_DOCUMENT_PREFIX,
} from "../shared/probes/probe-document.js";

const root = new URL("..", import.meta.url);
const PLATFORMS: ProbePlatform[] = ["linux", "windows"];
const SCRIPT_FILES: Record<ProbePlatform, string> = {
  linux: "shared/probes/probe-linux.sh",
  windows: "shared/probes/probe-windows.ps1",
};
const LOGICAL_IDS: Record<ProbePlatform, string> = { linux: "ProbeDocumentLinux", windows: "ProbeDocumentWindows" };
export const SPOKE_BEGIN = "  # BEGIN generated probe documents (npm run build:probe-documents; do not edit by hand)";
export const SPOKE_END = "  # END generated probe documents";

function script(platform: ProbePlatform): string {
  return readFileSync(new URL(SCRIPT_FILES[platform], root), "utf8");
}

/** The resource's properties but its name. NewVersion: an update adds a version to the named document in place. */
function properties(platform: ProbePlatform) {
  return {
    DocumentType: "Command",
    DocumentFormat: "JSON",
    TargetType: "/AWS::EC2::Instance",
    UpdateMethod: "NewVersion",
    Content: probeDocumentContent(platform, script(platform)),
  };
}

/** The single-account stack's documents, named after the stack (one per stage and region). */
export function stackDocumentsJson(): string {
  const resources = Object.fromEntries(
    PLATFORMS.map((platform) => [
      LOGICAL_IDS[platform],
      {
        Type: "AWS::SSM::Document",
        // Organization mode probes through the spokes' documents only.
        Condition: "SingleAccount",
        Properties: {
          Name: { "Fn::Sub": `\${AWS::StackName}-probe-${platform}` },
          ...properties(platform),
        },
      },
    ]),
  );
  return `${JSON.stringify({ Resources: resources }, null, 2)}\n`;
}

const q = (s: string) => JSON.stringify(s);

/** The spoke's documents as YAML resources, the script as a literal block scalar (byte for byte the file). */
export function spokeDocumentsYaml(): string {
  const lines: string[] = [SPOKE_BEGIN];
  for (const platform of PLATFORMS) {
    const p = properties(platform);
    const [step] = p.Content.mainSteps;
    const text = script(platform);
    if (!text.endsWith("\n") || text.endsWith("\n\n"))
      throw new Error(`${SCRIPT_FILES[platform]} must end with one newline`);
    lines.push(
      `  ${LOGICAL_IDS[platform]}:`,
      "    Type: AWS::SSM::Document",
      "    Properties:",
      `      Name: ${probeDocumentName(SPOKE_PROBE_DOCUMENT_PREFIX, platform)}`,
      `      DocumentType: ${p.DocumentType}`,
      `      DocumentFormat: ${p.DocumentFormat}`,
      `      TargetType: ${p.TargetType}`,
      `      UpdateMethod: ${p.UpdateMethod}`,
      "      Content:",
      `        schemaVersion: ${q(p.Content.schemaVersion)}`,
      `        description: ${q(p.Content.description)}`,
      "        mainSteps:",
      `          - action: ${step.action}`,
      `            name: ${step.name}`,
      "            inputs:",
      `              timeoutSeconds: ${q(step.inputs.timeoutSeconds)}`,
      "              runCommand:",
      "                - |",
      ...text
        .slice(0, -1)
        .split("\n")
        .map((line) => (line === "" ? "" : `                  ${line}`)),
    );
  }
  lines.push(SPOKE_END);
  return lines.join("\n");
}

/** spoke-region.yml with its generated block replaced. */
export function spokeRegionYaml(current: string): string {
  const begin = current.indexOf(SPOKE_BEGIN);
  const end = current.indexOf(SPOKE_END);
  if (begin < 0 || end < begin) throw new Error("infra/spoke/spoke-region.yml lacks the generated block's markers");
  return current.slice(0, begin) + spokeDocumentsYaml() + current.slice(end + SPOKE_END.length);
}
