// Entry of `imdsv2-guard audit` (bin/imdsv2-guard.mjs bundles and runs it): process wiring only.
import { runAudit } from "./command.js";

process.exitCode = await runAudit(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
