import { createHash } from "node:crypto";
import { GUARD_PROBE_DOCUMENTS } from "../../shared/probes/guard-probe-documents.js";
import {
  type ProbePlatform,
  probeDocumentName,
  SPOKE_PROBE_DOCUMENT_PREFIX,
} from "../../shared/probes/probe-document.js";

/**
 * The simulated account's SSM documents: the guard's probe documents as its stack or spoke template creates them,
 * and what SendCommand runs. A contract, each line from the AWS Systems Manager API Reference:
 * - CreateDocument: a name of 3 to 128 of [a-zA-Z0-9_.-], not starting with aws, amazon or amzn
 *   (ValidationException); an existing name is DocumentAlreadyExists. Version 1 is the default and the latest.
 * - UpdateDocument (what CloudFormation's UpdateMethod NewVersion calls): a new version, content and hash of its own;
 *   `withDefault` also makes it the default (UpdateDocumentDefaultVersion).
 * - DescribeDocument and GetDocument: an unknown name or version is InvalidDocument; `$LATEST`, `$DEFAULT` or a
 *   number picks the version; GetDocument returns Content as text, DescribeDocument `Hash` with HashType Sha256
 *   (SHA-256 of the stored content) and the default and latest versions.
 * - SendCommand: an unknown document or version is InvalidDocument; a document without the plugin for the instance's
 *   platform is refused (InvalidDocument); without DocumentVersion the default version runs. Parameters a document
 *   does not declare are InvalidParameters.
 */

/** The single-account stack's documents in the local runner (the stack is named imdsv2-guard-local there). */
export const LOCAL_STACK_PROBE_DOCUMENT_PREFIX = "imdsv2-guard-local-probe";
export { SPOKE_PROBE_DOCUMENT_PREFIX };

interface StoredVersion {
  content: string;
  createdAt: Date;
}

interface StoredDocument {
  versions: StoredVersion[];
  defaultVersion: number;
}

function awsError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, $fault: "client", $metadata: { httpStatusCode: 400 } });
}

/**
 * AWS-owned Command documents every account can run, if its IAM allows ("AWS-RunShellScript",
 * "AWS-RunPowerShellScript", Systems Manager's shared documents): they take the script in `commands`. The guard's
 * roles may not send them (test/iam.test.ts); the simulation still has them, as every account does.
 */
const AWS_OWNED_SHELL_DOCUMENTS: Record<string, ProbePlatform> = {
  "AWS-RunShellScript": "linux",
  "AWS-RunPowerShellScript": "windows",
};

const PLUGIN_PLATFORM: Record<string, ProbePlatform> = {
  "aws:runShellScript": "linux",
  "aws:runPowerShellScript": "windows",
};

export class SimDocuments {
  private readonly documents = new Map<string, StoredDocument>();

  /** What the stack or spoke template creates: both probe documents under `prefix`, this build's content. */
  deployGuardDocuments(prefix: string, now = new Date()): void {
    for (const platform of ["linux", "windows"] as const) {
      const name = probeDocumentName(prefix, platform);
      const content = JSON.stringify(GUARD_PROBE_DOCUMENTS[platform].content);
      if (this.documents.has(name)) this.updateDocument({ Name: name, Content: content }, true, now);
      else this.createDocument({ Name: name, Content: content }, now);
    }
  }

  createDocument(input: { Name?: string; Content?: string }, now = new Date()) {
    const name = input.Name ?? "";
    if (!/^[a-zA-Z0-9_.-]{3,128}$/.test(name) || /^(aws|amazon|amzn)/i.test(name)) {
      throw awsError("ValidationException", `Invalid document name ${name}`);
    }
    if (this.documents.has(name)) throw awsError("DocumentAlreadyExists", `Document ${name} already exists.`);
    this.documents.set(name, { versions: [{ content: input.Content ?? "", createdAt: now }], defaultVersion: 1 });
    return { DocumentDescription: this.description(name, 1) };
  }

  /** A new version (as CloudFormation's NewVersion update, or someone's UpdateDocument); `withDefault` makes it the default. */
  updateDocument(input: { Name?: string; Content?: string }, withDefault: boolean, now = new Date()) {
    const doc = this.find(input.Name);
    doc.versions.push({ content: input.Content ?? "", createdAt: now });
    if (withDefault) doc.defaultVersion = doc.versions.length;
    return { DocumentDescription: this.description(input.Name ?? "", doc.versions.length) };
  }

  describeDocument(input: { Name?: string; DocumentVersion?: string }) {
    const doc = this.find(input.Name);
    return { Document: this.description(input.Name ?? "", this.versionOf(doc, input.DocumentVersion)) };
  }

  getDocument(input: { Name?: string; DocumentVersion?: string }) {
    const doc = this.find(input.Name);
    const version = this.versionOf(doc, input.DocumentVersion);
    return {
      Name: input.Name,
      DocumentVersion: String(version),
      DocumentType: "Command",
      DocumentFormat: "JSON",
      Status: "Active",
      Content: doc.versions[version - 1]?.content ?? "",
    };
  }

  /**
   * The script SendCommand runs on an instance of `platform`, or the error AWS gives. The guard's documents take no
   * parameters, so any Parameters are refused.
   */
  scriptFor(
    input: { DocumentName?: string; DocumentVersion?: string; Parameters?: Record<string, string[]> },
    platform: ProbePlatform,
  ): string {
    const owned = AWS_OWNED_SHELL_DOCUMENTS[input.DocumentName ?? ""];
    if (owned !== undefined) {
      if (owned !== platform) {
        throw awsError("InvalidDocument", `Document ${input.DocumentName} does not support platform ${platform}`);
      }
      return (input.Parameters?.commands ?? []).join("\n");
    }
    const doc = this.find(input.DocumentName);
    const version = this.versionOf(doc, input.DocumentVersion ?? "$DEFAULT");
    if (input.Parameters && Object.keys(input.Parameters).length > 0) {
      throw awsError("InvalidParameters", `Document ${input.DocumentName} does not take parameters.`);
    }
    const parsed = JSON.parse(doc.versions[version - 1]?.content ?? "{}") as {
      mainSteps?: { action?: string; inputs?: { runCommand?: string[] } }[];
    };
    const step = parsed.mainSteps?.find((s) => PLUGIN_PLATFORM[s.action ?? ""] === platform);
    if (!step?.inputs?.runCommand) {
      throw awsError("InvalidDocument", `Document ${input.DocumentName} does not support platform ${platform}`);
    }
    return step.inputs.runCommand.join("\n");
  }

  private find(name: string | undefined): StoredDocument {
    const doc = this.documents.get(name ?? "");
    if (!doc) throw awsError("InvalidDocument", `Document ${name} does not exist in your account.`);
    return doc;
  }

  private versionOf(doc: StoredDocument, requested: string | undefined): number {
    if (requested === undefined || requested === "$DEFAULT") return doc.defaultVersion;
    if (requested === "$LATEST") return doc.versions.length;
    const n = Number(requested);
    if (!Number.isInteger(n) || n < 1 || n > doc.versions.length) {
      throw awsError("InvalidDocumentVersion", `Document version ${requested} does not exist.`);
    }
    return n;
  }

  private description(name: string, version: number) {
    const doc = this.find(name);
    const content = doc.versions[version - 1]?.content ?? "";
    return {
      Name: name,
      DocumentVersion: String(version),
      DefaultVersion: String(doc.defaultVersion),
      LatestVersion: String(doc.versions.length),
      DocumentType: "Command",
      DocumentFormat: "JSON",
      Status: "Active",
      HashType: "Sha256",
      Hash: createHash("sha256").update(content).digest("hex"),
      CreatedDate: doc.versions[version - 1]?.createdAt,
    };
  }
}
