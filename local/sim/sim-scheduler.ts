import type { CreateScheduleCommandInput } from "@aws-sdk/client-scheduler";
import { awsError, type SimContext } from "./sim-context.js";

/** A one-off schedule the simulated EventBridge Scheduler holds until it fires (ActionAfterCompletion DELETE). */
export interface SimSchedule {
  name: string;
  groupName: string;
  /** Its time, epoch milliseconds (its `at()` expression, in UTC). */
  at: number;
  /** When it actually fires: within its flexible time window after `at`, or about on time with Mode OFF. */
  fireAt: number;
  input: CreateScheduleCommandInput;
}

/**
 * The simulated EventBridge Scheduler: one-off schedules whose target is a Lambda function.
 *
 * | Behaviour | AWS documentation page |
 * | --- | --- |
 * | A name or group outside [0-9a-zA-Z-_.]{1,64}, an at() it cannot read, a missing FlexibleTimeWindow, an unknown ActionAfterCompletion, a target without Arn and RoleArn: ValidationException | "CreateSchedule" (API reference) |
 * | Target.Input over 256 KB: ValidationException | "Quotas for Amazon EventBridge Scheduler" (maximum payload size) |
 * | A second schedule of the same name in the group: ConflictException | "CreateSchedule" (Errors) |
 * | With FlexibleTimeWindow FLEXIBLE, the target is invoked at a moment within MaximumWindowInMinutes after the time, not on the second | "Configuring flexible time windows in EventBridge Scheduler"; "Schedule types on EventBridge Scheduler" |
 * | With Mode OFF, about on time (weather: up to `schedulerLatenessMaxSeconds` late) | "Schedule types on EventBridge Scheduler" |
 * | ActionAfterCompletion DELETE deletes the schedule once it fired | "CreateSchedule" (ActionAfterCompletion) |
 *
 * The guard's own rule on top of AWS's: a target without an SQS dead-letter queue is refused (AWS accepts it, but a
 * watch Scheduler could not deliver would vanish without it).
 */
export class SimScheduler {
  /** The schedules waiting to fire, by `group/name`. */
  readonly schedules = new Map<string, SimSchedule>();
  /** Every schedule ever created, in order (a fired one is deleted from `schedules`, not from here). */
  readonly schedulesCreated: SimSchedule[] = [];
  /** Set by the runner: fires a schedule at its `fireAt`, as EventBridge Scheduler does. */
  onCreateSchedule: ((schedule: SimSchedule) => void) | undefined;

  constructor(private readonly ctx: SimContext) {}

  async createSchedule(input: CreateScheduleCommandInput) {
    this.ctx.gate("CreateSchedule", Date.now());
    const invalid = (message: string) => awsError("ValidationException", message);
    const groupName = input.GroupName ?? "default";
    if (!input.Name || !SCHEDULE_NAME.test(input.Name)) throw invalid(`Invalid schedule name: ${input.Name}`);
    if (!SCHEDULE_NAME.test(groupName)) throw invalid(`Invalid group name: ${groupName}`);
    const at = AT_EXPRESSION.exec(input.ScheduleExpression ?? "")?.[1];
    if (!at || Number.isNaN(Date.parse(`${at}Z`))) {
      throw invalid(`Invalid Schedule Expression ${input.ScheduleExpression}.`);
    }
    if ((input.ScheduleExpressionTimezone ?? "UTC") !== "UTC") {
      throw invalid("The simulated Scheduler knows only the UTC time zone");
    }
    const window = input.FlexibleTimeWindow;
    if (!window?.Mode) throw invalid("FlexibleTimeWindow is required");
    const windowMinutes = window.MaximumWindowInMinutes;
    if (window.Mode === "FLEXIBLE" && (windowMinutes === undefined || windowMinutes < 1 || windowMinutes > 1440)) {
      throw invalid("FlexibleTimeWindow.MaximumWindowInMinutes must be 1 to 1440 with Mode FLEXIBLE");
    }
    if (input.ActionAfterCompletion !== undefined && !["NONE", "DELETE"].includes(input.ActionAfterCompletion)) {
      throw invalid(`Invalid ActionAfterCompletion ${input.ActionAfterCompletion}`);
    }
    if (!input.Target?.Arn?.startsWith("arn:") || !input.Target.RoleArn?.startsWith("arn:")) {
      throw invalid("Target.Arn and Target.RoleArn are required");
    }
    const inputBytes = Buffer.byteLength(input.Target.Input ?? "", "utf8");
    if (inputBytes > SCHEDULER_MAX_INPUT_BYTES) {
      throw invalid(`Target.Input is ${inputBytes} bytes; the maximum payload size is ${SCHEDULER_MAX_INPUT_BYTES}`);
    }
    if (!/^arn:[\w-]+:sqs:/.test(input.Target.DeadLetterConfig?.Arn ?? "")) {
      throw invalid("Target.DeadLetterConfig.Arn must be an SQS queue (the guard's own rule)");
    }
    const key = `${groupName}/${input.Name}`;
    if (this.schedules.has(key)) throw awsError("ConflictException", `Schedule ${input.Name} already exists.`, 409);
    const time = Date.parse(`${at}Z`);
    const late =
      window.Mode === "FLEXIBLE" && windowMinutes !== undefined
        ? this.ctx.random.millisBetween(0, windowMinutes * 60)
        : this.ctx.random.millisBetween(0, this.ctx.weather.schedulerLatenessMaxSeconds);
    const schedule: SimSchedule = { name: input.Name, groupName, at: time, fireAt: time + late, input };
    this.schedules.set(key, schedule);
    this.schedulesCreated.push(schedule);
    this.onCreateSchedule?.(schedule);
    return { ScheduleArn: `arn:aws:scheduler:eu-west-1:000000000000:schedule/${key}` };
  }

  /** A one-off schedule fired: with ActionAfterCompletion DELETE, Scheduler deletes it (no API call of ours). */
  completeSchedule(schedule: SimSchedule): void {
    if (schedule.input.ActionAfterCompletion === "DELETE") {
      this.schedules.delete(`${schedule.groupName}/${schedule.name}`);
    }
  }
}

/** EventBridge Scheduler's maximum target payload: 256 KB. */
export const SCHEDULER_MAX_INPUT_BYTES = 262_144;

const SCHEDULE_NAME = /^[0-9a-zA-Z_.-]{1,64}$/;
const AT_EXPRESSION = /^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$/;
