import type { Logger } from "@aws-lambda-powertools/logger";
import type { EC2Client } from "@aws-sdk/client-ec2";
import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { readAccountPosture, requireTokensByDefault } from "../aws/account-defaults.js";
import { describeInstancesWhere } from "../aws/ec2-instances.js";
import { classifyAwsError } from "../aws/errors.js";
import type { AccountPosture } from "../domain/account-posture.js";
import { SWEEP_DETAIL_TYPE, SWEEP_SOURCE } from "../domain/event.js";
import { exemptionOf } from "../domain/exemption.js";
import type { SweepConfig } from "../runtime/config.js";

export interface SweepDeps {
  ec2: EC2Client;
  sfn: SFNClient;
  logger: Logger;
  now: () => Date;
  config: SweepConfig;
}

export interface SweepOutcome {
  sweepId: string;
  /** Instances EC2 reports with HttpTokens=optional. */
  found: number;
  /** Of those, skipped because of an exemption that has not lapsed. */
  exempt: number;
  /** Of those, skipped because their IMDS endpoint is off: nothing answers, so nothing leaks. */
  imdsDisabled: number;
  accountPosture: AccountPosture;
  executions: { name: string; instances: number; alreadyStarted: boolean }[];
}

/** The states an instance can be enforced in; terminated ones are gone, and shutting-down ones soon will be. */
const SWEEPABLE_STATES = ["pending", "running", "stopping", "stopped"];

/**
 * The reconciliation sweep: EventBridge delivers events on a best-effort basis, so once a day (and once right after the
 * first deploy, as a backfill of the existing fleet) every instance that still allows IMDSv1 is sent through the same
 * state machine as a launch would be. Execution names are derived from the sweep's time window, so a retried sweep
 * does not start the same work twice (StartExecution with an existing name is refused).
 */
export async function sweep(deps: SweepDeps, scheduled: { time?: string } = {}): Promise<SweepOutcome> {
  const { config } = deps;
  const now = deps.now();
  // Named after the schedule's time, not the clock: Lambda retries a failed scheduled run minutes later with the
  // same event, and the same names then make StartExecution refuse to start the work twice.
  const scheduledAt = scheduled.time && !Number.isNaN(Date.parse(scheduled.time)) ? new Date(scheduled.time) : now;
  const sweepId = `sweep-${scheduledAt.toISOString().slice(0, 16).replace(/[-:T]/g, "")}`;
  let accountPosture = await readAccountPosture(deps.ec2);
  if (config.enforceAccountDefault && config.mode === "enforce") {
    accountPosture = await requireTokensByDefault(deps.ec2, accountPosture);
  }
  const allowing = await describeInstancesWhere(deps.ec2, [
    { Name: "metadata-options.http-tokens", Values: ["optional"] },
    { Name: "instance-state-name", Values: SWEEPABLE_STATES },
  ]);
  const candidates = allowing.filter((i) => i.MetadataOptions?.HttpEndpoint !== "disabled");
  // Lapsed exemptions go through the flow, which enforces them and says the exemption lapsed.
  const toCheck = candidates.filter((i) => exemptionOf(i.Tags, config, now).status !== "active");
  const ids = toCheck.map((i) => i.InstanceId).filter((id): id is string => id !== undefined);
  const executions: SweepOutcome["executions"] = [];
  // A clean fleet still gets one execution, so the sweep's notification reports the account's posture.
  for (let start = 0, n = 1; start < ids.length || n === 1; start += config.instancesPerExecution, n++) {
    const chunk = ids.slice(start, start + config.instancesPerExecution);
    const name = `${sweepId}-${n}`;
    const input = {
      version: "0",
      id: name,
      "detail-type": SWEEP_DETAIL_TYPE,
      source: SWEEP_SOURCE,
      account: config.account,
      region: config.region,
      time: now.toISOString(),
      detail: {
        sweepId: name,
        instanceIds: chunk,
        accountPosture,
        fleet: { allowingImdsV1: candidates.length, exempt: candidates.length - toCheck.length },
      },
    };
    try {
      await deps.sfn.send(
        new StartExecutionCommand({ stateMachineArn: config.stateMachineArn, name, input: JSON.stringify(input) }),
      );
      executions.push({ name, instances: chunk.length, alreadyStarted: false });
    } catch (error) {
      if (
        !(error instanceof ExecutionAlreadyExists) &&
        (error as { name?: string })?.name !== "ExecutionAlreadyExists"
      ) {
        throw classifyAwsError(error, "StartExecution");
      }
      executions.push({ name, instances: chunk.length, alreadyStarted: true });
    }
  }
  const outcome = {
    sweepId,
    found: allowing.length,
    exempt: candidates.length - toCheck.length,
    imdsDisabled: allowing.length - candidates.length,
    accountPosture,
    executions,
  };
  deps.logger.info("Sweep started executions", { ...outcome });
  return outcome;
}
