import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { spokeRegionYaml, stackDocumentsJson } from "../scripts/probe-documents.js";
import { GUARD_PROBE_DOCUMENTS } from "../shared/probes/guard-probe-documents.js";
import { canonicalJson, probeDocumentDigest } from "../shared/probes/probe-document.js";

/**
 * The guard's probe documents: generated from shared/probes/ (npm run build:probe-documents) into the stack's and the
 * spoke's templates, holding the probe's exact text, no parameter, and nothing else.
 */

const root = join(import.meta.dirname, "..");
const cfnYaml = createRequire(import.meta.url)(join(root, "node_modules/osls/lib/utils/fs/parse.js")) as (
  path: string,
  text: string,
) => unknown;

const documentSchema = z.object({
  Type: z.literal("AWS::SSM::Document"),
  Properties: z.object({
    Name: z.unknown(),
    DocumentType: z.literal("Command"),
    DocumentFormat: z.literal("JSON"),
    TargetType: z.literal("/AWS::EC2::Instance"),
    UpdateMethod: z.literal("NewVersion"),
    Content: z.unknown(),
  }),
});
const templateSchema = z.object({ Resources: z.record(z.string(), z.unknown()) });

const SCRIPTS = {
  linux: readFileSync(join(root, "shared/probes/probe-linux.sh"), "utf8"),
  windows: readFileSync(join(root, "shared/probes/probe-windows.ps1"), "utf8"),
};
const IDS = { linux: "ProbeDocumentLinux", windows: "ProbeDocumentWindows" } as const;

function documentsOf(template: unknown) {
  const { Resources } = templateSchema.parse(template);
  return {
    linux: documentSchema.parse(Resources[IDS.linux]).Properties,
    windows: documentSchema.parse(Resources[IDS.windows]).Properties,
  };
}

describe("the guard's probe documents", () => {
  it("are what npm run build:probe-documents writes (run it after changing a probe)", () => {
    expect(readFileSync(join(root, "infra/probe-documents.json"), "utf8")).toBe(stackDocumentsJson());
    const spoke = readFileSync(join(root, "infra/spoke/spoke-region.yml"), "utf8");
    expect(spoke).toBe(spokeRegionYaml(spoke));
  });

  it.each(["linux", "windows"] as const)(
    "hold the %s probe's exact text as their only step, with no parameter, in the stack and the spoke",
    (platform) => {
      const stack = documentsOf(JSON.parse(readFileSync(join(root, "infra/probe-documents.json"), "utf8")))[platform];
      const spokePath = join(root, "infra/spoke/spoke-region.yml");
      const spoke = documentsOf(cfnYaml(spokePath, readFileSync(spokePath, "utf8")))[platform];
      for (const content of [stack.Content, spoke.Content]) {
        const parsed = z
          .strictObject({
            schemaVersion: z.literal("2.2"),
            description: z.string(),
            mainSteps: z.tuple([
              z.strictObject({
                action: z.literal(platform === "linux" ? "aws:runShellScript" : "aws:runPowerShellScript"),
                name: z.string(),
                inputs: z.strictObject({ timeoutSeconds: z.string(), runCommand: z.tuple([z.string()]) }),
              }),
            ]),
          })
          .parse(content);
        // Byte for byte the file in shared/probes/, and no `parameters` a caller could fill.
        expect(parsed.mainSteps[0].inputs.runCommand[0]).toBe(SCRIPTS[platform]);
        expect(JSON.stringify(content)).not.toContain("{{");
        // What SendProbe compares against before every send.
        expect(probeDocumentDigest(content)).toBe(GUARD_PROBE_DOCUMENTS[platform].digest);
      }
      expect(spoke.Name).toBe(`imdsv2-guard-probe-${platform}`);
      expect(stack.Name).toEqual({ "Fn::Sub": `\${AWS::StackName}-probe-${platform}` });
    },
  );

  it("compares documents by content, not by serialization", () => {
    const content = GUARD_PROBE_DOCUMENTS.linux.content;
    const { mainSteps, ...rest } = content;
    const reordered = JSON.parse(JSON.stringify({ mainSteps, ...rest }, null, 3)) as unknown;
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(content));
    expect(probeDocumentDigest(reordered)).toBe(GUARD_PROBE_DOCUMENTS.linux.digest);
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    const altered = structuredClone(content);
    altered.mainSteps[0].inputs.runCommand[0] = `${altered.mainSteps[0].inputs.runCommand[0]}id\n`;
    expect(probeDocumentDigest(altered)).not.toBe(GUARD_PROBE_DOCUMENTS.linux.digest);
  });
});
