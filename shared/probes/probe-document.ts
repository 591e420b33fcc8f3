import { createHash } from "node:crypto";

/**
 * The guard's own SSM Command documents, one per platform: the probe script as the document's only step, and no
 * parameter at all, so a principal allowed to send them can run the probe and nothing else (unlike AWS-RunShellScript,
 * whose `commands` parameter takes any shell). The stack (single-account) and the spoke template (every member
 * account and region) create them from this content, which `npm run build:probe-documents` renders from
 * shared/probes/*: one source, byte for byte the script reviewed in the repository.
 *
 * Schema 2.2 with `aws:runShellScript` / `aws:runPowerShellScript`, whose inputs are `runCommand` (a list of lines,
 * or one multi-line string) and `timeoutSeconds` ("Command document plugin reference", AWS Systems Manager User
 * Guide; "Schemas, features, and examples": Command documents may use schema 2.2).
 */

export type ProbePlatform = "linux" | "windows";

/** The probe's own requests time out after 3 s each; this only stops a hung shell. */
const PROBE_EXECUTION_TIMEOUT_SECONDS = "60";

const PLUGINS: Record<ProbePlatform, { action: string; description: string }> = {
  linux: {
    action: "aws:runShellScript",
    description:
      "imdsv2-guard probe (Linux): proves from inside the instance that IMDSv1 is refused. Prints HTTP statuses only.",
  },
  windows: {
    action: "aws:runPowerShellScript",
    description:
      "imdsv2-guard probe (Windows): proves from inside the instance that IMDSv1 is refused. Prints HTTP statuses only.",
  },
};

/** What a probe document holds; the parsed `Content` of GetDocument must equal it, key order aside. */
export interface ProbeDocumentContent {
  schemaVersion: "2.2";
  description: string;
  mainSteps: [
    {
      action: string;
      name: "proveImdsv1Refused";
      inputs: { timeoutSeconds: string; runCommand: [string] };
    },
  ];
}

/** The document for `platform`, holding `script` (the text of shared/probes/probe-linux.sh or probe-windows.ps1). */
export function probeDocumentContent(platform: ProbePlatform, script: string): ProbeDocumentContent {
  const plugin = PLUGINS[platform];
  return {
    schemaVersion: "2.2",
    description: plugin.description,
    mainSteps: [
      {
        action: plugin.action,
        name: "proveImdsv1Refused",
        inputs: { timeoutSeconds: PROBE_EXECUTION_TIMEOUT_SECONDS, runCommand: [script] },
      },
    ],
  };
}

/**
 * The documents' names: `<prefix>-linux` and `<prefix>-windows`. The spoke template's prefix is fixed (the hub
 * builds the name in every member account); the single-account stack's is the stack's name plus `-probe`.
 */
export const SPOKE_PROBE_DOCUMENT_PREFIX = "imdsv2-guard-probe";

export function probeDocumentName(prefix: string, platform: ProbePlatform): string {
  return `${prefix}-${platform}`;
}

/** JSON with sorted keys: the same document gives the same text however a service serialized it. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The digest SendProbe compares: SHA-256 of the content's canonical JSON. Not SSM's own `Hash` (DescribeDocument),
 * which hashes the content as CloudFormation serialized it, bytes the guard cannot predict at build time.
 */
export function probeDocumentDigest(content: unknown): string {
  return createHash("sha256").update(canonicalJson(content)).digest("hex");
}
