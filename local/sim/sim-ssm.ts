import type { ScenarioInstance } from "../runner/scenario.js";
import { type ImdsOptionsView, type RunningImdsEmulator, startImdsEmulator } from "./imds-emulator.js";
import { runLinuxProbe } from "./run-linux-probe.js";
import { findPwsh, runWindowsProbe } from "./run-windows-probe.js";
import { awsError, online, type SimContext, type SimInstanceState, tick } from "./sim-context.js";
import { SimDocuments } from "./ssm-documents.js";

/**
 * The simulated Systems Manager (Run Command and fleet inventory) of one account and region. What it promises, each
 * as strict as AWS (test/contract.test.ts provokes every row through the real SDK client):
 *
 * | Behaviour | AWS documentation page |
 * | --- | --- |
 * | SendCommand with more than 50 InstanceIds: ValidationException ("Member must have length less than or equal to 50") | "SendCommand" (API reference: InstanceIds, up to 50) |
 * | SendCommand accepts Running, Pending, Stopped and Stopping instances; Shutting-down, Terminated or never-registered ones: InvalidInstanceId | "SendCommand" (InvalidInstanceId) |
 * | A document that does not fit the instance's platform: InvalidDocument | "SendCommand" (InvalidDocument) |
 * | GetCommandInvocation answers InvocationDoesNotExist for a while after SendCommand (weather: up to `invocationVisibleMaxSeconds`) | "GetCommandInvocation" (InvocationDoesNotExist) |
 * | Invocation statuses Pending, InProgress, Delayed, Success, DeliveryTimedOut, ExecutionTimedOut, Failed, Cancelled, Terminated, Undeliverable, InvalidPlatform, AccessDenied | "Understanding command statuses" |
 * | An invocation to a stopped instance waits as Delayed, then ends DeliveryTimedOut at its TimeoutSeconds | "Understanding command statuses" (Delayed, Delivery Timed Out) |
 * | StandardOutputContent holds the first 24,000 characters of stdout, StandardErrorContent the first 8,000 of stderr | "GetCommandInvocation" (StandardOutputContent) |
 * | A running instance's invocation may wait as Delayed first (weather: `ssmDelayedProbability`) | "Understanding command statuses" (Delayed) |
 * | DescribeInstanceInformation lists an instance once its agent registered: Online while it runs, ConnectionLost when not | "DescribeInstanceInformation" |
 *
 * Run Command on a Linux instance runs the very script it was sent with `sh`, against an IMDS emulator on 127.0.0.1
 * that follows the instance's current, applied options; on Windows, in pwsh when installed.
 */
export class SimSsm {
  /** Where pwsh is, if installed (see SimAccount.pwsh). */
  pwsh: string | undefined = findPwsh();
  readonly probeRuns: SimProbeRun[] = [];
  /** The account's SSM documents (ssm-documents.ts): what SendCommand runs is what the account holds. */
  readonly documents = new SimDocuments();
  private readonly invocations = new Map<string, SimInvocation>();
  private commandSeq = 0;
  private realWork = 0;

  /**
   * `computedProbes`: compute every probe's answer from the instance's IMDS state instead of running the script (as
   * for Windows when pwsh is missing). The weather property tests run hundreds of flows, which are about AWS's
   * timing, not the script; the scripts run in every other flow test and in the probe tests.
   */
  constructor(
    private readonly ctx: SimContext,
    private readonly options: { computedProbes?: boolean } = {},
  ) {}

  /** Real (wall-clock) work in flight, such as a probe running in `sh`: simulated time must not jump meanwhile. */
  get realWorkInFlight(): number {
    return this.realWork;
  }

  async describeInstanceInformation(input: { Filters?: { Key?: string; Values?: string[] }[] }) {
    const now = Date.now();
    this.ctx.gate("DescribeInstanceInformation", now);
    const ids = input.Filters?.find((f) => f.Key === "InstanceIds")?.Values ?? [...this.ctx.instances.keys()];
    const list = [];
    for (const id of ids) {
      const s = this.ctx.instances.get(id);
      if (!s || s.registeredAt === undefined || now < s.registeredAt) continue;
      list.push({
        InstanceId: id,
        PingStatus: online(s, now) ? "Online" : "ConnectionLost",
        PlatformType: s.spec.platform === "windows" ? "Windows" : "Linux",
        ResourceType: "EC2Instance",
      });
    }
    return { InstanceInformationList: list };
  }

  async sendCommand(input: {
    DocumentName?: string;
    DocumentVersion?: string;
    InstanceIds?: string[];
    Parameters?: Record<string, string[]>;
    TimeoutSeconds?: number;
  }) {
    const now = Date.now();
    this.ctx.gate("SendCommand", now);
    const ids = input.InstanceIds ?? [];
    if (ids.length > 50) {
      // The service model's constraint, answered as AWS's JSON protocol answers every constraint violation.
      throw awsError(
        "ValidationException",
        `1 validation error detected: Value '[${ids.join(", ")}]' at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50`,
      );
    }
    if (ids.length === 0) throw awsError("ValidationException", "InstanceIds or Targets must be specified");
    // The document's own script (ssm-documents.ts): what runs is what the account holds, not the caller's.
    let script = "";
    for (const id of ids) {
      const s = this.ctx.instances.get(id);
      if (s) tick(s, now);
      // Valid states are Running, Pending, Stopped and Stopping, for an instance whose agent has registered.
      const registered = s?.registeredAt !== undefined && now >= s.registeredAt;
      if (!s || !registered || s.state === "shutting-down" || s.state === "terminated") {
        throw awsError("InvalidInstanceId", `Instance ${id} is not in a valid state for the document.`);
      }
      script = this.documents.scriptFor(input, s.spec.platform);
    }
    this.commandSeq++;
    const commandId = `00000000-0000-4000-8000-${String(this.commandSeq).padStart(12, "0")}`;
    const deliveryTimeout = (input.TimeoutSeconds ?? DEFAULT_DELIVERY_TIMEOUT_SECONDS) * 1000;
    const runs: Promise<void>[] = [];
    for (const id of ids) {
      const s = this.ctx.instances.get(id);
      if (!s) continue;
      const invocation = this.schedule(commandId, s, now, deliveryTimeout);
      this.invocations.set(`${commandId}/${id}`, invocation);
      if (invocation.outcome === "ok") runs.push(this.runProbe(s, script, invocation));
    }
    // The probes run now, in real time, while simulated time holds still; the invocation shows its statuses
    // until its simulated completion time.
    this.realWork++;
    try {
      await Promise.all(runs);
    } finally {
      this.realWork--;
    }
    return { Command: { CommandId: commandId, DocumentName: input.DocumentName, Status: "Pending" } };
  }

  /** The timeline of one invocation: invisible, Pending (or Delayed), InProgress, then its outcome. */
  private schedule(commandId: string, s: SimInstanceState, now: number, deliveryTimeout: number): SimInvocation {
    const { random, weather } = this.ctx;
    const visibleAt = now + random.millisBetween(0.5, Math.max(0.5, weather.invocationVisibleMaxSeconds));
    const base = { commandId, instanceId: s.spec.id, visibleAt };
    // Not running: the agent cannot be reached, so the command waits as Delayed until its delivery timeout.
    if (!online(s, now)) {
      return {
        ...base,
        delayedUntil: now + deliveryTimeout,
        deliverAt: now + deliveryTimeout,
        doneAt: now + deliveryTimeout,
        outcome: "timed-out",
      };
    }
    const delayed = random.chance(weather.ssmDelayedProbability);
    const deliverAt = visibleAt + (delayed ? random.millisBetween(1, weather.ssmDelayedMaxSeconds) : 500);
    const outcome = s.spec.runCommand;
    const running = outcome === "timed-out" || outcome === "execution-timed-out" ? 58_000 : 1500;
    return {
      ...base,
      ...(delayed ? { delayedUntil: deliverAt } : {}),
      deliverAt,
      doneAt: deliverAt + running,
      outcome,
    };
  }

  private async runProbe(s: SimInstanceState, script: string, invocation: SimInvocation): Promise<void> {
    const platform = s.spec.platform;
    const view = (): ImdsOptionsView => {
      tick(s, Date.now());
      return {
        httpTokens: s.spec.imds === "answers-without-token" ? "optional" : s.imdsTokens,
        httpEndpoint: s.httpEndpoint,
      };
    };
    if (this.options.computedProbes || (platform === "windows" && this.pwsh === undefined)) {
      const v = view();
      const v1 = v.httpTokens === "required" ? 401 : 200;
      const v4 =
        v.httpEndpoint === "disabled"
          ? { v1: 403, v1Credentials: 403, token: 403, v2: null }
          : { v1, v1Credentials: v1, token: 200, v2: 200 };
      const v6 = { v1: null, v1Credentials: null, token: null, v2: null };
      const client = platform === "windows" ? "HttpWebRequest" : "curl";
      const newline = platform === "windows" ? "\r\n" : "\n";
      invocation.stdout = `${JSON.stringify({ ...v4, client, v6, answered: ["ipv4"] })}${newline}`;
      this.probeRuns.push({ instanceId: s.spec.id, platform, stdout: invocation.stdout, source: "computed" });
      return;
    }
    // HttpProtocolIpv6 is disabled unless asked for (AWS's default), so the IPv6 endpoint closes every connection.
    const silentV6 = await startImdsEmulator(view, { host: "::1", mode: "reset" });
    const emulators: RunningImdsEmulator[] = [silentV6];
    try {
      let v4 = s.spec.imdsUrl;
      if (v4 === undefined) {
        const emulator = await startImdsEmulator(view);
        emulators.push(emulator);
        v4 = emulator.url;
      }
      const endpoints = { v4, v6: silentV6.url };
      const run =
        platform === "windows" && this.pwsh !== undefined
          ? await runWindowsProbe(this.pwsh, script, endpoints)
          : await runLinuxProbe(script, endpoints);
      invocation.stdout = run.stdout;
    } finally {
      await Promise.all(emulators.map((emulator) => emulator.close()));
    }
    this.probeRuns.push({ instanceId: s.spec.id, platform, stdout: invocation.stdout, source: "real" });
  }

  async getCommandInvocation(input: { CommandId?: string; InstanceId?: string }) {
    const now = Date.now();
    this.ctx.gate("GetCommandInvocation", now);
    const invocation = this.invocations.get(`${input.CommandId}/${input.InstanceId}`);
    if (!invocation || now < invocation.visibleAt) {
      throw awsError("InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist)");
    }
    const base = { CommandId: invocation.commandId, InstanceId: invocation.instanceId };
    // Until it ends, the output is empty ("If the command hasn't finished running ... this string is empty").
    const waiting = { ...base, ResponseCode: -1, StandardOutputContent: "", StandardErrorContent: "" };
    if (invocation.delayedUntil !== undefined && now < invocation.delayedUntil) {
      return { ...waiting, Status: "Delayed", StatusDetails: "Delayed" };
    }
    if (now < invocation.deliverAt) return { ...waiting, Status: "Pending", StatusDetails: "Pending" };
    if (now < invocation.doneAt) return { ...waiting, Status: "InProgress", StatusDetails: "InProgress" };
    const [status, details, code] = TERMINAL[invocation.outcome];
    const stdout = invocation.outcome === "ok" ? (invocation.stdout ?? "") : "";
    return {
      ...base,
      Status: status,
      StatusDetails: details,
      ResponseCode: code,
      StandardOutputContent: stdout.slice(0, STDOUT_CHARACTERS),
      StandardErrorContent: "",
    };
  }
}

/** "The first 24,000 characters written by the plugin to stdout" (GetCommandInvocation, StandardOutputContent). */
export const STDOUT_CHARACTERS = 24_000;

/** SendCommand's TimeoutSeconds when not given: how long an undelivered command waits before DeliveryTimedOut. */
const DEFAULT_DELIVERY_TIMEOUT_SECONDS = 3600;

/** Status, StatusDetails and ResponseCode of each terminal outcome ("Understanding command statuses"). */
const TERMINAL: Record<ScenarioInstance["runCommand"], [string, string, number]> = {
  ok: ["Success", "Success", 0],
  failed: ["Failed", "Failed", 1],
  "timed-out": ["TimedOut", "DeliveryTimedOut", -1],
  "execution-timed-out": ["TimedOut", "ExecutionTimedOut", -1],
  cancelled: ["Cancelled", "Cancelled", -1],
  terminated: ["Failed", "Terminated", -1],
  undeliverable: ["Failed", "Undeliverable", -1],
  "invalid-platform": ["Failed", "InvalidPlatform", -1],
  "access-denied": ["Failed", "AccessDenied", -1],
};

/** One probe the simulated Run Command ran: `real` when the script itself ran (sh, or pwsh for Windows), `computed` when pwsh is missing. */
export interface SimProbeRun {
  instanceId: string;
  platform: "linux" | "windows";
  stdout: string;
  source: "real" | "computed";
}

interface SimInvocation {
  commandId: string;
  instanceId: string;
  /** Before this, InvocationDoesNotExist. */
  visibleAt: number;
  /** Before this, Delayed (the agent could not be reached, or the weather). */
  delayedUntil?: number;
  /** Before this, Pending. */
  deliverAt: number;
  /** Before this, InProgress; then the outcome. */
  doneAt: number;
  outcome: ScenarioInstance["runCommand"];
  stdout?: string;
}
