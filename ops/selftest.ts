/**
 * `imdsv2-guard selftest`: after a deploy, launch one small instance that allows IMDSv1, and watch the guard set
 * HttpTokens=required and report `pass` for it. The steps read and act through `SelftestActions`, so the same
 * sequence runs against AWS (ops/aws-readers.ts) and the simulated account (local/runner/simulated-ops.ts).
 * Whatever happens after the launch, the instance is terminated unless --keep.
 */

export interface SelftestActions {
  /** RunInstances: one instance with HttpTokens=optional. */
  launch(): Promise<{ instanceId: string }>;
  /** DescribeInstances: the instance's HttpTokens, undefined while it is not described yet. */
  httpTokens(instanceId: string): Promise<string | undefined>;
  /** The guard's verdict for the instance, once reported; undefined until then. */
  verdict(instanceId: string): Promise<{ verdict: string; reason: string } | undefined>;
  /** TerminateInstances. */
  terminate(instanceId: string): Promise<void>;
}

export interface SelftestClock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

export interface SelftestOptions {
  /** Give up waiting for the verdict after this long (the guard's own timeouts add up to about 20 minutes). */
  timeoutSeconds: number;
  pollSeconds: number;
  keep: boolean;
  /** Each step as it happens, for a person watching. */
  onStep?: (step: SelftestStep) => void;
}

export interface SelftestStep {
  step: "launched" | "required-applied" | "verdict" | "timed-out" | "terminated" | "kept" | "failed";
  /** Seconds since the launch. */
  atSeconds: number;
  detail: string;
}

export interface SelftestReport {
  schema: "imdsv2-guard.selftest.v1";
  instanceId?: string;
  outcome: "pass" | "fail";
  verdict?: string;
  reason?: string;
  steps: SelftestStep[];
  terminated: boolean;
}

/** Every AWS API the selftest calls (beyond reading the verdict, see ops/aws-readers.ts), with its resource. */
export const SELFTEST_API_CALLS = [
  { action: "ec2:RunInstances", resource: "arn:aws:ec2:*:*:instance/*, subnet, security-group, image, volume" },
  { action: "ec2:CreateTags", resource: "arn:aws:ec2:*:*:instance/* (on launch: imdsv2-guard:selftest)" },
  { action: "ec2:DescribeInstances", resource: "*" },
  { action: "ec2:DescribeSubnets", resource: "* (the default VPC's, when no --subnet-id)" },
  { action: "ssm:GetParameters", resource: "arn:aws:ssm:*::parameter/aws/service/ami-amazon-linux-latest/*" },
  { action: "dynamodb:ListTables", resource: "* (finds <stack>-EventLedgerTable-*)" },
  { action: "dynamodb:Scan", resource: "the guard's ledger table (read-only, one filter on the instance id)" },
  { action: "iam:PassRole", resource: "the role of --instance-profile, when given" },
  {
    action: "ec2:TerminateInstances",
    resource: "arn:aws:ec2:*:*:instance/* with tag imdsv2-guard:selftest",
  },
] as const;

/** Runs the selftest; never throws: a failed step is a `fail` outcome that says which. */
export async function runSelftest(
  actions: SelftestActions,
  clock: SelftestClock,
  options: SelftestOptions,
): Promise<SelftestReport> {
  const steps: SelftestStep[] = [];
  const started = clock.now().getTime();
  const at = () => Math.round((clock.now().getTime() - started) / 1000);
  const record = (step: SelftestStep["step"], detail: string) => {
    const s = { step, atSeconds: at(), detail };
    steps.push(s);
    options.onStep?.(s);
  };
  let instanceId: string | undefined;
  let result: { verdict: string; reason: string } | undefined;
  let terminated = false;
  try {
    instanceId = (await actions.launch()).instanceId;
    record("launched", `${instanceId} with HttpTokens=optional`);
    const deadline = started + options.timeoutSeconds * 1000;
    let applied = false;
    while (clock.now().getTime() <= deadline) {
      if (!applied && (await actions.httpTokens(instanceId)) === "required") {
        applied = true;
        record("required-applied", "HttpTokens=required");
      }
      result = await actions.verdict(instanceId);
      if (result) {
        record("verdict", `${result.verdict}: ${result.reason}`);
        break;
      }
      await clock.sleep(options.pollSeconds * 1000);
    }
    if (!result) record("timed-out", `no verdict within ${options.timeoutSeconds} s`);
  } catch (error) {
    record("failed", errorText(error));
  } finally {
    if (instanceId !== undefined) {
      if (options.keep) record("kept", `${instanceId} left running (--keep): terminate it yourself`);
      else {
        try {
          await actions.terminate(instanceId);
          terminated = true;
          record("terminated", instanceId);
        } catch (error) {
          record("failed", `could not terminate ${instanceId}: ${errorText(error)}`);
        }
      }
    }
  }
  return {
    schema: "imdsv2-guard.selftest.v1",
    ...(instanceId ? { instanceId } : {}),
    outcome: result?.verdict === "pass" && !steps.some((s) => s.step === "failed") ? "pass" : "fail",
    ...(result ? { verdict: result.verdict, reason: result.reason } : {}),
    steps,
    terminated,
  };
}

function errorText(error: unknown): string {
  const e = error as { name?: unknown; message?: unknown } | null;
  const name = typeof e?.name === "string" ? e.name : "Error";
  const message = typeof e?.message === "string" ? e.message : String(error);
  return `${name}: ${message}`.slice(0, 300);
}
