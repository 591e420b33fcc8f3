import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getLanguageService, TextDocument } from "amazon-states-language-service";
import { describe, expect, it } from "vitest";

/**
 * AWS's own ASL validator, the one the AWS Toolkit runs in the editor (amazon-states-language-service: the ASL JSON
 * schema plus its state checks: Next and Default targets exist, StartAt names a state, no unreachable state, Retry and
 * Catch shapes). Written by other hands than ours, on infra/state-machine.asl.json as the deploy ships it.
 */

const root = join(import.meta.dirname, "..");
const ASL_TEXT = readFileSync(join(root, "infra/state-machine.asl.json"), "utf8");
const service = getLanguageService({});

/** What the deploy hands Step Functions: each ${Placeholder} of DefinitionSubstitutions replaced with its value. */
function substituted(text: string): string {
  return text.replace(/\$\{(\w+)\}/g, (_, name: string) =>
    name.endsWith("FunctionArn")
      ? `arn:aws:lambda:us-east-1:123456789012:function:imdsv2-guard-dev-${name.replace(/FunctionArn$/, "")}`
      : `imdsv2-guard-dev-${name}`,
  );
}

async function diagnostics(text: string) {
  const document = TextDocument.create("file:///state-machine.asl.json", "json", 1, text);
  const found = await service.doValidation(document, service.parseJSONDocument(document));
  return found.map((d) => `${d.range.start.line + 1}: ${d.message}`);
}

/** A copy of the definition with `change` applied to its parsed form. */
function broken(change: (definition: { StartAt: string; States: Record<string, Record<string, unknown>> }) => void) {
  const definition = JSON.parse(ASL_TEXT) as { StartAt: string; States: Record<string, Record<string, unknown>> };
  change(definition);
  return JSON.stringify(definition, null, 2);
}

describe("infra/state-machine.asl.json in AWS's ASL language service", () => {
  it("has no diagnostics, with the deploy's placeholders and with their values substituted", async () => {
    expect(ASL_TEXT).toMatch(/\$\{\w+FunctionArn\}/);
    expect(await diagnostics(ASL_TEXT)).toEqual([]);
    expect(await diagnostics(substituted(ASL_TEXT))).toEqual([]);
  });

  it("finds a Next that names no state", async () => {
    const text = broken((d) => {
      const [name, state] = Object.entries(d.States).find(([, s]) => typeof s.Next === "string") ?? [];
      if (!name || !state) throw new Error("no state with Next");
      state.Next = "NoSuchState";
    });
    expect((await diagnostics(text)).join("\n")).toMatch(/NoSuchState|not found|does not exist|must be/i);
  });

  it("finds a StartAt that names no state", async () => {
    const text = broken((d) => {
      d.StartAt = "Nowhere";
    });
    expect(await diagnostics(text)).not.toEqual([]);
  });

  it("finds a state of an unknown type, and a Task without its Resource", async () => {
    const unknownType = broken((d) => {
      const [state] = Object.values(d.States);
      if (!state) throw new Error("no state");
      state.Type = "Teleport";
    });
    expect(await diagnostics(unknownType)).not.toEqual([]);
    const noResource = broken((d) => {
      const task = Object.values(d.States).find((s) => s.Type === "Task");
      if (!task) throw new Error("no Task");
      delete task.Resource;
    });
    expect(await diagnostics(noResource)).not.toEqual([]);
  });
});
