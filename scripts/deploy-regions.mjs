// `node scripts/deploy-regions.mjs`: deploys (or removes) the single-account stack in each region of a list, with
// every parameter from one JSON file, so switching mode=audit to mode=enforce is one value in that file and
// alertEmail, slack* and the rest are carried over unchanged. osls takes parameters as --param="name=value" only;
// this turns the file into those flags. --dry-run prints the commands and runs nothing (the test checks it).
//
//   node scripts/deploy-regions.mjs --param-file params.json --regions eu-west-1,us-east-1 [--stage prod]
//                                   [--remove] [--dry-run]
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const USAGE = `Usage: node scripts/deploy-regions.mjs --param-file FILE --regions R1,R2
                                    [--stage S] [--remove] [--dry-run]

Deploys the guard's stack once per region, one region after another, each with
every parameter of FILE (a JSON object of name: value). A region that fails
stops the loop: the regions before it are deployed, the ones after are not.
--remove removes the stacks instead (no parameters needed).
`;

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const NAME = /^[A-Za-z][A-Za-z0-9]*$/;

function fail(message) {
  process.stderr.write(`deploy-regions: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      "param-file": { type: "string" },
      regions: { type: "string", multiple: true },
      stage: { type: "string" },
      remove: { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  }));
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const regions = [
  ...new Set(
    (values.regions ?? [])
      .flatMap((r) => r.split(","))
      .map((r) => r.trim())
      .filter(Boolean),
  ),
];
if (regions.length === 0) fail("--regions: give at least one region");
const bad = regions.filter((r) => !REGION.test(r));
if (bad.length > 0) fail(`--regions: not a region name: ${bad.join(", ")}`);
const stage = values.stage ?? "dev";
if (!/^[a-zA-Z0-9-]{1,32}$/.test(stage)) fail(`--stage: not a stage name: ${stage}`);

let params = {};
if (!values.remove) {
  if (!values["param-file"]) fail("--param-file: give the file of parameters (see docs/deploy-regions.md)");
  let raw;
  try {
    raw = JSON.parse(readFileSync(values["param-file"], "utf8"));
  } catch (error) {
    fail(`--param-file: ${values["param-file"]}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail("--param-file: must hold a JSON object");
  for (const [name, value] of Object.entries(raw)) {
    if (!NAME.test(name)) fail(`--param-file: not a parameter name: ${name}`);
    if (!["string", "number", "boolean"].includes(typeof value))
      fail(`--param-file: ${name}: a string, number or boolean`);
  }
  params = raw;
  // A stack deployed without alertEmail loses its email subscription: refuse rather than drop it silently.
  if (!("alertEmail" in params)) fail('--param-file: no alertEmail (set "alertEmail": "" to deploy without email)');
}

const osls = ["npx", "osls"];
for (const region of regions) {
  const args = values.remove
    ? [...osls, "remove", "--stage", stage, "--region", region]
    : [
        ...osls,
        "deploy",
        "--stage",
        stage,
        "--region",
        region,
        ...Object.entries(params).map(([name, value]) => `--param=${name}=${String(value)}`),
      ];
  process.stdout.write(`${args.map(shellQuote).join(" ")}\n`);
  if (values["dry-run"]) continue;
  const result = spawnSync(args[0], args.slice(1), { stdio: "inherit" });
  if (result.status !== 0) {
    process.stderr.write(`deploy-regions: ${region} failed (exit ${result.status ?? "signal"}); stopping\n`);
    process.exit(1);
  }
}

/** For the printed command only (the run itself passes arguments without a shell). */
function shellQuote(arg) {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}
