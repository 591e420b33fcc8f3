import type { AuditIo } from "../../audit/command.js";
import { VERSION } from "../../audit/conventions.js";
import { type RegionClients, regionClientsWith, sdkDoctorReaders } from "../../ops/aws-readers.js";
import { runDoctorCommand, runSelftestCommand } from "../../ops/command.js";
import { type DoctorReaders, EXPECTED_ALARMS, PROBE_DOCUMENT_PREFIX, type SpokeInfo } from "../../ops/doctor.js";
import type { SelftestActions, SelftestClock } from "../../ops/selftest.js";
import singleAccount from "../scenarios/single-account.json" with { type: "json" };
import { SimAccount } from "../sim/sim-account.js";
import { runFlow } from "./run-flow.js";
import { parseScenario, type Scenario, type ScenarioInstance } from "./scenario.js";
import { SIMULATED_REGION } from "./simulated-audit.js";

/**
 * What the simulated account has deployed around the guard: the parts SimAccount does not simulate (CloudTrail,
 * CloudFormation, alarms, the state machine's executions, spokes). The default is a healthy deploy; each knob breaks
 * one thing, so every check's failure path runs through the real doctor.
 */
export interface SimulatedDeployment {
  trail: "logging" | "stopped" | "none";
  stack: "deployed" | "none";
  alarmsInAlarm: string[];
  runningExecutions: number;
  /** Member accounts and whether their spoke stacks are deployed (doctor --accounts). */
  spokes: Record<string, "deployed" | "missing" | "no-probe-document" | "older-probe-document">;
  account: Scenario["account"];
  instances: ScenarioInstance[];
}

const NO_CREDENTIALS = { accessKeyId: "SIMULATED", secretAccessKey: "SIMULATED" };

/** An account where the guard was deployed as docs/deploy-regions.md says: every check holds. */
export function healthyDeployment(): SimulatedDeployment {
  const instance = (id: string, platform: "linux" | "windows" = "linux"): ScenarioInstance =>
    parseScenario({ instances: [{ id, platform, httpTokens: "required", ageHours: 48 }] }, "doctor")
      .instances[0] as ScenarioInstance;
  return {
    trail: "logging",
    stack: "deployed",
    alarmsInAlarm: [],
    runningExecutions: 0,
    spokes: { "444455556666": "deployed" },
    account: { httpTokens: "required", httpTokensEnforced: true, managedBy: "account" },
    instances: [instance("i-0d0c000000000a001"), instance("i-0d0c000000000a002", "windows")],
  };
}

function simClients(): RegionClients {
  return regionClientsWith({ region: SIMULATED_REGION, credentials: NO_CREDENTIALS, maxAttempts: 1 });
}

/**
 * The doctor's readers on the simulation: EC2 and SSM through the real SDK clients and the same reader code as
 * against AWS (SimAccount intercepts them); the rest from the deployment's description.
 */
export function simulatedDoctor(deployment: SimulatedDeployment): { readers: DoctorReaders; close(): void } {
  const sim = new SimAccount([], {}, { account: deployment.account });
  // Launched ageHours ago (SimAccount's clock is Date.now()), so their SSM registration has happened by now.
  for (const spec of deployment.instances) sim.addInstance(spec, Date.now() - spec.ageHours * 3_600_000);
  sim.install();
  const clients = simClients();
  const sdk = sdkDoctorReaders(() => clients);
  const stackName = "imdsv2-guard-dev";
  const readers: DoctorReaders = {
    ...sdk,
    trails: async () =>
      deployment.trail === "none"
        ? []
        : [
            {
              name: "organization-trail",
              homeRegion: SIMULATED_REGION,
              multiRegion: true,
              logging: deployment.trail === "logging",
              writeManagementEvents: true,
            },
          ],
    stack: async (_region, name) =>
      deployment.stack === "none"
        ? undefined
        : // As osls deploys it: the params resolved into the template, read back from the outputs and the version tag.
          {
            name,
            status: "UPDATE_COMPLETE",
            parameters: {},
            outputs: { GuardMode: "enforce", GuardOrganizationMode: "single-account", GuardAlertEmailSet: "true" },
            version: VERSION,
          },
    alarms: async (_region, prefix) =>
      deployment.stack === "none"
        ? []
        : EXPECTED_ALARMS.map((a) => ({
            name: `${prefix}${a}`,
            state: deployment.alarmsInAlarm.includes(a) ? "ALARM" : "OK",
          })),
    runningExecutions: async (_region, name) =>
      deployment.stack === "none" || name !== stackName ? undefined : deployment.runningExecutions,
    organizationAccounts: async () => Object.keys(deployment.spokes),
    spoke: async (account): Promise<SpokeInfo> => {
      const spoke = deployment.spokes[account];
      if (spoke === undefined || spoke === "missing")
        return { reachable: false, error: "AccessDenied", probeDocuments: [] };
      const documents = [`${PROBE_DOCUMENT_PREFIX}linux`, `${PROBE_DOCUMENT_PREFIX}windows`];
      return {
        reachable: true,
        regionStack: { status: "CREATE_COMPLETE" },
        probeDocuments: spoke === "no-probe-document" ? [] : documents,
        // A spoke-region stack deployed from another release: its Linux probe is not this build's.
        probeDocumentsOutOfDate: spoke === "older-probe-document" ? [`${PROBE_DOCUMENT_PREFIX}linux`] : [],
      };
    },
  };
  return {
    readers,
    close: () => {
      for (const c of Object.values(clients)) c.destroy();
      sim.restore();
    },
  };
}

/** `npm start -- doctor [options]`: the production doctor on the simulated account. */
export function runSimulatedDoctor(
  argv: readonly string[],
  io: AuditIo,
  deployment: SimulatedDeployment = healthyDeployment(),
): Promise<number> {
  let access: ReturnType<typeof simulatedDoctor> | undefined;
  return runDoctorCommand(argv, io, {
    mode: { command: "npm start -- doctor", defaultRegion: SIMULATED_REGION },
    readers: () => {
      access = simulatedDoctor(deployment);
      return access.readers;
    },
    close: () => access?.close(),
  });
}

/** The selftest's instance on the simulation: a launch that allows IMDSv1, as `RunInstances` makes it. */
export interface SimulatedLaunch {
  ssm: ScenarioInstance["ssm"];
  /** Make the verdict read fail (the wait fails), to show the instance is terminated anyway. */
  verdictReadFails?: boolean;
}

/**
 * The selftest on the simulation: launch() runs the whole guard (runFlow: the real state machine and handlers) on
 * a RunInstances event for one new instance; the clock is simulated time, so the times printed are the guard's.
 */
export function simulatedSelftest(launch: SimulatedLaunch = { ssm: "online" }): {
  actions: SelftestActions;
  clock: SelftestClock;
  terminated: string[];
} {
  const instanceId = "i-05e1f7e5700000001";
  let elapsedMs = 0;
  let result: { secondsToApplied?: number; secondsToVerdict?: number; verdict: string; reason: string } | undefined;
  const terminated: string[] = [];
  const actions: SelftestActions = {
    launch: async () => {
      const template = singleAccount.events[0] as {
        detail: { responseElements: { instancesSet: { items: unknown[] } } };
      };
      const event = structuredClone(template);
      const first = event.detail.responseElements.instancesSet.items[0] as Record<string, unknown>;
      event.detail.responseElements.instancesSet.items = [{ ...first, instanceId }];
      const scenario = parseScenario(
        {
          name: "selftest",
          events: [event],
          instances: [
            { id: instanceId, httpTokens: "optional", ssm: launch.ssm, tags: { "imdsv2-guard:selftest": "true" } },
          ],
        },
        "selftest",
      );
      const run = await runFlow(scenario);
      result = run.reports.flatMap((r) => r.results).find((r) => r.instanceId === instanceId);
      return { instanceId };
    },
    httpTokens: async () =>
      result?.secondsToApplied !== undefined && elapsedMs / 1000 >= result.secondsToApplied ? "required" : "optional",
    verdict: async () => {
      if (launch.verdictReadFails) throw new Error("ResourceNotFoundException: ledger table not found");
      return result && elapsedMs / 1000 >= (result.secondsToVerdict ?? 0)
        ? { verdict: result.verdict, reason: result.reason }
        : undefined;
    },
    terminate: async (id) => {
      terminated.push(id);
    },
  };
  const start = Date.parse("2026-11-28T09:00:00Z");
  const clock: SelftestClock = {
    now: () => new Date(start + elapsedMs),
    sleep: async (ms) => {
      elapsedMs += ms;
    },
  };
  return { actions, clock, terminated };
}

/** `npm start -- selftest [options]`: the production selftest on the simulated account. */
export function runSimulatedSelftest(argv: readonly string[], io: AuditIo, launch?: SimulatedLaunch): Promise<number> {
  const sim = simulatedSelftest(launch);
  return runSelftestCommand(argv, io, {
    mode: { command: "npm start -- selftest", defaultRegion: SIMULATED_REGION },
    actions: () => sim.actions,
    clock: sim.clock,
  });
}
