// `npm run build:asl`: writes infra/state-machine.ts's definition to infra/state-machine.asl.json.
import { writeFileSync } from "node:fs";
import { aslText } from "../infra/state-machine.js";

writeFileSync(new URL("../infra/state-machine.asl.json", import.meta.url), aslText());
