// The guard's probe documents (single-account mode): infra/probe-documents.json, which npm run build:probe-documents
// generates from shared/probes/. osls resolves ${...} in every value it loads, and the probe scripts are full of
// shell's ${...}, which CloudFormation must receive untouched: each `${` goes out as osls's escape `\${`, which osls
// turns back into `${`. test/template.test.ts checks the packaged documents hold the scripts byte for byte.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

function escapeVariables(value) {
  if (typeof value === "string") {
    // A backslash already before `${` would be read as part of the escape: refuse rather than ship a changed script.
    if (/\\\$\{/.test(value)) throw new Error("probe-documents: a backslash before ${ cannot be escaped for osls");
    return value.replaceAll("${", "\\${");
  }
  if (Array.isArray(value)) return value.map(escapeVariables);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeVariables(v)]));
  }
  return value;
}

module.exports = () => escapeVariables(JSON.parse(readFileSync(join(__dirname, "probe-documents.json"), "utf8")));
