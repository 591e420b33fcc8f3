// `npm run build:probe-documents`: writes the guard's probe documents into infra/probe-documents.json and
// infra/spoke/spoke-region.yml (scripts/probe-documents.ts says what and why).
import { readFileSync, writeFileSync } from "node:fs";
import { spokeRegionYaml, stackDocumentsJson } from "./probe-documents.js";

const root = new URL("..", import.meta.url);
writeFileSync(new URL("infra/probe-documents.json", root), stackDocumentsJson());
const spoke = new URL("infra/spoke/spoke-region.yml", root);
writeFileSync(spoke, spokeRegionYaml(readFileSync(spoke, "utf8")));
