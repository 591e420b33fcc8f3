// `npm run build:cli`: writes the installed command's bundle (see cli-bundle.mjs).
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CLI_BUNDLE, cliBundleText } from "./cli-bundle.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
writeFileSync(new URL(`../${CLI_BUNDLE}`, import.meta.url), await cliBundleText(root));
