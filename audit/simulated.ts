import { readFileSync } from "node:fs";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EC2Client } from "@aws-sdk/client-ec2";
import { SFNClient } from "@aws-sdk/client-sfn";
import { parseScenario, type Scenario } from "../local/runner/scenario.js";
import auditFleet from "../local/scenarios/audit-fleet.json" with { type: "json" };
import { SimAccount } from "../local/sim/sim-account.js";
import type { AuditClients } from "./audit.js";
import type { AwsAccess } from "./aws-access.js";

/** The simulated account has one region: the one the scenarios' events come from. */
export const SIMULATED_REGION = "eu-west-1";

/**
 * SimAccount does not simulate ListStateMachines, so `--start --simulated` uses this state machine unless
 * --state-machine-arn names another; its executions go to SimAccount's StartExecution.
 */
export const SIMULATED_STATE_MACHINE_ARN = `arn:aws:states:${SIMULATED_REGION}:111122223333:stateMachine:imdsv2-guard-simulated`;

/** Never used to sign anything (the mocks answer first); set so no client even looks for real credentials. */
const NO_CREDENTIALS = { accessKeyId: "SIMULATED", secretAccessKey: "SIMULATED" };

export function loadScenario(file: string | undefined): Scenario {
  return file
    ? parseScenario(JSON.parse(readFileSync(file, "utf8")) as unknown, file)
    : parseScenario(auditFleet, "local/scenarios/audit-fleet.json");
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
