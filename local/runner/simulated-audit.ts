import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EC2Client } from "@aws-sdk/client-ec2";
import { SFNClient } from "@aws-sdk/client-sfn";
import type { AuditClients } from "../../audit/audit.js";
import { type AwsAccess, organizationAccess } from "../../audit/aws-access.js";
import { type AuditIo, type AuditMode, runAudit } from "../../audit/command.js";
import auditFleet from "../scenarios/audit-fleet.json" with { type: "json" };
import { SimAccount } from "../sim/sim-account.js";
import { SIM_SPOKE_ROLE_NAME, SimOrganization } from "../sim/sim-organization.js";
import { parseScenario, readScenarioFile, type Scenario } from "./scenario.js";

/** The simulated account has one region: the one the scenarios' events come from. */
export const SIMULATED_REGION = "eu-west-1";

/**
 * SimAccount does not simulate ListStateMachines, so `npm start -- audit --start` uses this state machine unless
 * --state-machine-arn names another; its executions go to SimAccount's StartExecution.
 */
export const SIMULATED_STATE_MACHINE_ARN = `arn:aws:states:${SIMULATED_REGION}:111122223333:stateMachine:imdsv2-guard-simulated`;

/** Never used to sign anything (the mocks answer first); set so no client even looks for real credentials. */
const NO_CREDENTIALS = { accessKeyId: "SIMULATED", secretAccessKey: "SIMULATED" };

/** The audit as `npm start -- audit` runs it: its own command in usage and hints, so none leads to real AWS. */
export const SIMULATED_MODE: AuditMode = {
  command: "npm start -- audit",
  target: `Audits the simulated account of \`npm start\` (one region, ${SIMULATED_REGION}): no AWS credentials needed, nothing leaves this machine.`,
  extraOptions:
    "  --scenario FILE             the simulated fleet\n                              (default local/scenarios/audit-fleet.json)\n",
  regions: [SIMULATED_REGION],
};

export function loadScenario(file: string | undefined): Scenario {
  return file ? readScenarioFile(file) : parseScenario(auditFleet, "local/scenarios/audit-fleet.json");
}

/**
 * The simulated account of `npm start`, behind the real SDK clients: SimAccount.install() intercepts every EC2,
 * CloudWatch and Step Functions client in the process, so the audit runs the same code as against AWS.
 */
export function simulatedAccess(scenario: Scenario, onAccount?: (sim: SimAccount) => void): AwsAccess {
  const sim = new SimAccount(scenario.instances, {}, { account: scenario.account, images: scenario.images });
  sim.install();
  onAccount?.(sim);
  const settings = { region: SIMULATED_REGION, credentials: NO_CREDENTIALS, maxAttempts: 1 };
  const clients: AuditClients = {
    ec2: new EC2Client(settings),
    cloudwatch: new CloudWatchClient(settings),
    sfn: new SFNClient(settings),
    now: () => new Date(),
  };
  return {
    checkCredentials: async () => {},
    defaultRegion: async () => SIMULATED_REGION,
    // SimAccount has no DescribeRegions: "all" is its one region.
    enabledRegions: async () => [SIMULATED_REGION],
    clientsFor: () => clients,
    defaultStateMachineArn: () => SIMULATED_STATE_MACHINE_ARN,
    close: () => sim.restore(),
  };
}

/**
 * A simulated organization (a scenario with `organization`, such as the default one): the caller is the hub
 * account, `--accounts` assumes the spoke role in each member through the simulated STS, which refuses where no
 * spoke is deployed, and `--accounts all` reads the simulated Organizations.
 */
export function simulatedOrganizationAccess(scenario: Scenario, org: NonNullable<Scenario["organization"]>): AwsAccess {
  const world = new SimOrganization(
    org,
    scenario.instances,
    {},
    { account: scenario.account, images: scenario.images },
  );
  world.install();
  const settings = { region: org.hubRegion, maxAttempts: 1 };
  // The hub's own clients: the environment's (simulated) hub keys, as a person's would be.
  const own: AuditClients = {
    ec2: new EC2Client(settings),
    cloudwatch: new CloudWatchClient(settings),
    sfn: new SFNClient(settings),
    now: () => new Date(),
  };
  const organization = organizationAccess({ maxAttempts: 1 });
  return {
    checkCredentials: async () => {},
    defaultRegion: async () => org.hubRegion,
    enabledRegions: async () => organizationRegions(org),
    clientsFor: () => own,
    defaultStateMachineArn: () => undefined,
    listAccounts: organization.listAccounts,
    clientsInAccount: organization.clientsInAccount,
    close: () => {
      organization.close();
      world.restore();
    },
  };
}

function organizationRegions(org: NonNullable<Scenario["organization"]>): string[] {
  return [...new Set([org.hubRegion, ...org.accounts.flatMap((a) => a.regions)])];
}

export interface SimulatedAuditHooks {
  /** Called with the simulated account once it is installed (tests observe StartExecution through it). */
  onSimulatedAccount?: (sim: SimAccount) => void;
}

/**
 * `npm start -- audit [options] [--scenario FILE]`: the production audit command, run against the simulated account.
 * --scenario is this mode's own option, taken out before the audit parses the rest.
 */
export async function runSimulatedAudit(
  argv: readonly string[],
  io: AuditIo,
  hooks: SimulatedAuditHooks = {},
): Promise<number> {
  const rest: string[] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--scenario") {
      file = argv[i + 1];
      i++;
      if (file === undefined || file.startsWith("-")) {
        io.stderr.write(`imdsv2-guard audit: --scenario needs a file\n`);
        return 2;
      }
    } else if (arg.startsWith("--scenario=")) {
      file = arg.slice("--scenario=".length);
    } else {
      rest.push(arg);
    }
  }
  if (rest.includes("--help") || rest.includes("-h")) return runAudit(rest, io, { mode: SIMULATED_MODE });
  let scenario: Scenario;
  try {
    scenario = loadScenario(file);
  } catch (error) {
    io.stderr.write(`imdsv2-guard audit: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const org = scenario.organization;
  if (org) {
    const regions = organizationRegions(org);
    const mode: AuditMode = {
      ...SIMULATED_MODE,
      target: `Audits the simulated organization ${org.id} of the scenario as its hub ${org.hubAccount} (with --accounts, its member accounts through the spoke role, which the simulated STS trusts the hub with): no AWS credentials needed, nothing leaves this machine.`,
      regions,
      defaultRoleName: SIM_SPOKE_ROLE_NAME,
    };
    return runAudit(rest, io, { access: simulatedOrganizationAccess(scenario, org), mode });
  }
  const access = simulatedAccess(scenario, hooks.onSimulatedAccount);
  return runAudit(rest, io, { access, mode: SIMULATED_MODE });
}
