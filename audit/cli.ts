// The installed command, `imdsv2-guard`: what bin/imdsv2-guard.mjs runs, from the committed bundle
// (bin/imdsv2-guard-cli.mjs, `npm run build:cli`). Production code only: the simulated audit is `npm start -- audit`.
import { runDoctorCommand, runSelftestCommand } from "../ops/command.js";
import { type AuditIo, runAudit } from "./command.js";
import { printable, VERSION } from "./conventions.js";
import { runEvidence } from "./evidence-command.js";

export const HELP = `imdsv2-guard: enforces IMDSv2 (HttpTokens=required) on EC2
instances and proves it from inside them. This command is the guard's operator
tool; the guard itself runs in your account (EventBridge -> Step Functions ->
Lambda): docs/deploy-regions.md.

Usage: imdsv2-guard <command> [options]

Commands:
  audit     list every instance with its IMDS settings, exemption and IMDSv1
            use; --start sends the ready ones through the deployed guard
  doctor    read-only pre-flight: trail, SSM coverage, stack, alarms, spokes,
            account defaults, running executions
  selftest  launch one instance allowing IMDSv1 and expect the guard's pass
  evidence  every instance the guard has judged: its standing verdict, the
            age of its proof, and why
  help      this text

Every command takes --profile NAME, --region R, --output table|json|csv,
--version and --help (imdsv2-guard <command> --help).

Try it without AWS: in a clone of the repository, \`npm ci && npm start -- audit\`
audits a simulated account (also: npm start -- doctor, npm start -- selftest).
Read more: docs/commands.md.
`;

/** Runs `imdsv2-guard <command> ...`; returns the exit status. */
export async function main(argv: readonly string[], io: AuditIo): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    (command === undefined ? io.stderr : io.stdout).write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "-v" || command === "version") {
    io.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (command !== "audit" && command !== "doctor" && command !== "selftest" && command !== "evidence") {
    io.stderr.write(`imdsv2-guard: unknown command: ${printable(command)}\n\n${HELP}`);
    return 2;
  }
  // The audit runs where people work: on a laptop, in CI, in CloudShell. On an EC2 instance, the SDK would fall back
  // to the instance's own role through IMDS, auditing with credentials nobody chose; and without credentials it
  // would wait on 169.254.169.254 before saying so. Asked for explicitly, the instance role is still used.
  process.env.AWS_EC2_METADATA_DISABLED ??= "true";
  // On Node 20 the SDK warns, in eight lines, that its releases after January 2027 need Node 22: true, not about the
  // SDK this package locks, and it would bury the one line this command prints. =false shows it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  if (command === "evidence") return runEvidence(args, io);
  if (command === "doctor") return runDoctorCommand(args, io);
  if (command === "selftest") return runSelftestCommand(args, io);
  return runAudit(args, io);
}
