import { readFileSync } from "node:fs";
import { Ajv, type ValidateFunction } from "ajv";

/** The published JSON Schemas (docs/schemas/), compiled once; a test validates each JSON output against its own. */
const ajv = new Ajv({
  allErrors: true,
  strict: true,
  formats: { "date-time": (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(s) },
});

const compiled = new Map<string, ValidateFunction>();

export type SchemaName = "audit" | "doctor" | "selftest" | "run";

export function schemaOf(name: SchemaName): ValidateFunction {
  let validate = compiled.get(name);
  if (!validate) {
    const schema = JSON.parse(readFileSync(new URL(`../docs/schemas/${name}.schema.json`, import.meta.url), "utf8"));
    validate = ajv.compile(schema);
    compiled.set(name, validate);
  }
  return validate;
}

/** The schema's errors for this document, as readable lines ([] when it validates). */
export function schemaErrors(name: SchemaName, document: unknown): string[] {
  const validate = schemaOf(name);
  return validate(document) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`);
}
