import { createHash } from "node:crypto";
import { GetDocumentCommand, type SSMClient } from "@aws-sdk/client-ssm";
import type { Platform } from "../domain/model.js";
import { GUARD_PROBE_DOCUMENTS } from "../probes/guard-probe-documents.js";
import { probeDocumentDigest } from "../probes/probe-document.js";

/** What SendProbe learned about a probe document: its latest version, and whether it holds this build's probe. */
export interface DocumentCheck {
  matches: boolean;
  version: string;
  expectedDigest: string;
  foundDigest: string;
}

/**
 * Reads the latest version of the guard's probe document (GetDocument, "GetDocument", AWS Systems Manager API
 * Reference: Content, DocumentVersion) and compares its content with the document this build expects, key order
 * and whitespace aside (canonical JSON, shared/probes/probe-document.ts). SSM's own `Hash` (DescribeDocument) is
 * not used: it hashes the content as CloudFormation serialized it, which the build cannot predict. `$LATEST`, not the
 * default version: a redeployed stack adds a version; someone who adds another one makes the check fail, which
 * sends nothing. AWS errors propagate for the caller to classify.
 */
export async function verifyProbeDocument(ssm: SSMClient, name: string, platform: Platform): Promise<DocumentCheck> {
  const found = await ssm.send(
    new GetDocumentCommand({ Name: name, DocumentVersion: "$LATEST", DocumentFormat: "JSON" }),
  );
  const expectedDigest = GUARD_PROBE_DOCUMENTS[platform].digest;
  const version = found.DocumentVersion ?? "$LATEST";
  const text = found.Content ?? "";
  let foundDigest: string;
  try {
    foundDigest = probeDocumentDigest(JSON.parse(text));
  } catch {
    foundDigest = createHash("sha256").update(text).digest("hex");
  }
  const isCommand = found.DocumentType === undefined || found.DocumentType === "Command";
  return { matches: isCommand && foundDigest === expectedDigest, version, expectedDigest, foundDigest };
}
