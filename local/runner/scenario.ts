import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import * as z from "zod";
import { flowSettingsSchema } from "../../shared/domain/model.js";
import { describeIssues } from "../../shared/runtime/config.js";
import { weatherSchema } from "./weather.js";

/**
 * The scenario file `npm start -- --scenario FILE` loads: EventBridge events as delivered, and the instances of the
 * simulated account they talk about. Knobs beyond the issue's format (`imds`, `modifyError`, ...) describe real-world
 * conditions the guard must handle; they default to a well-behaved instance.
 */
export const scenarioInstanceSchema = z.strictObject({
  id: z.string(),
  platform: z.enum(["linux", "windows"]).default("linux"),
  state: z.enum(["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]).default("running"),
  httpTokens: z.enum(["optional", "required"]).default("optional"),
  httpEndpoint: z.enum(["enabled", "disabled"]).default("enabled"),
  tags: z.record(z.string(), z.string()).default({}),
  /** SSM registration: online within ~30 s of launch, late (~3 min), or never (no agent or instance profile). */
  ssm: z.enum(["online", "late", "none"]).default("online"),
  /**
   * The SSM Agent registers this many seconds after launch, whatever `ssm` says (an agent or instance profile added
   * later): with `ssm: "none"`, the launch ends `unverified` and the next sweep proves it.
   */
  ssmOnlineAfterSeconds: z.number().min(0).optional(),
  /** Security Hub CSPM's control EC2.8 has a finding for this instance (the guard's finding then points at it). */
  securityHubControl: z.boolean().default(true),
  /** Probe this IMDS-compatible endpoint (e.g. amazon-ec2-metadata-mock) instead of the built-in emulator. */
  imdsUrl: z
    .string()
    .regex(
      /^http:\/\/(127\.0\.0\.1|\[::1\]):\d+\/?$/,
      "must be http://127.0.0.1:PORT or http://[::1]:PORT (loopback only)",
    )
    .optional(),
  /** Seconds MetadataOptions.State stays `pending` after a modify. */
  applyDelaySeconds: z.number().min(0).default(20),
  /**
   * `answers-without-token` models something on the instance answering plain GETs whatever EC2 says, such as a local
   * metadata proxy: the API reports `required`, and only the probe can tell.
   */
  imds: z.enum(["follows-options", "answers-without-token"]).default("follows-options"),
  /** An AWS error code ModifyInstanceMetadataOptions fails with for this instance (e.g. an SCP's UnauthorizedOperation). */
  modifyError: z.string().optional(),
  /**
   * How Run Command ends on this instance, one of the terminal statuses of "Understanding command statuses"
   * (`timed-out` is Delivery Timed Out).
   */
  runCommand: z
    .enum([
      "ok",
      "failed",
      "timed-out",
      "execution-timed-out",
      "cancelled",
      "terminated",
      "undeliverable",
      "invalid-platform",
      "access-denied",
    ])
    .default("ok"),
  /** Seconds after launch before DescribeInstances shows the instance (EC2's eventual consistency). */
  visibleAfterSeconds: z.number().min(0).default(0),
  /**
   * Something on the account (configuration management, a script) sets HttpTokens back to optional this many seconds
   * after every change to required: a real revert, which the guard must report as `fail`.
   */
  revertsToOptionalAfterSeconds: z.number().min(0).optional(),
  /** Terminate the instance this many seconds into the scenario (mid-flow). */
  terminateAfterSeconds: z.number().min(0).optional(),
  imageId: z.string().default("ami-0abcdef1234567890"),
  /**
   * The reservation the instance was launched in: every instance of one RunInstances call shares one (default: a
   * reservation of its own, as if each had been launched alone).
   */
  reservationId: z
    .string()
    .regex(/^r-[0-9a-f]{8,17}$/)
    .optional(),
  /** The idempotency token of the call that launched it (DescribeInstances `ClientToken`, filter `client-token`). */
  clientToken: z.string().optional(),
  /** Software on the instance calling IMDSv1 this often: answered while tokens are optional (MetadataNoToken), refused once they are required (MetadataNoTokenRejected). */
  imdsV1CallsPerHour: z.number().min(0).default(0),
  /** How long the instance ran before the scenario started, with its initial options: history for the metrics. */
  ageHours: z.number().min(0).default(0),
  /** Organization mode: the member account and region the instance is in (default: the first account, its first region). */
  account: z
    .string()
    .regex(/^\d{12}$/)
    .optional(),
  region: z.string().optional(),
});
export type ScenarioInstance = z.infer<typeof scenarioInstanceSchema>;

const ACCOUNT_ID = z.string().regex(/^\d{12}$/, "must be a 12-digit account id");

/**
 * A simulated organization (README "Organization mode"): the hub's account and region, and member accounts, each
 * with its regions and whether the spoke stacks are deployed in it.
 */
export const scenarioOrganizationSchema = z.strictObject({
  id: z.string().regex(/^o-[a-z0-9]{10,32}$/, "must be an organization id (o-...)"),
  hubAccount: ACCOUNT_ID,
  hubRegion: z.string().min(1),
  accounts: z
    .array(
      z.strictObject({
        id: ACCOUNT_ID,
        name: z.string().min(1).max(50),
        regions: z.array(z.string().min(1)).min(1),
        spoke: z.boolean().default(true),
        /** Opt-in regions this account has not enabled: STS refuses to issue its credentials there. */
        disabledRegions: z.array(z.string().min(1)).optional(),
        /** This account's IMDS defaults in every region (default: the scenario's `account`). */
        defaults: z
          .strictObject({
            httpTokens: z.enum(["optional", "required", "no-preference"]).default("no-preference"),
            httpTokensEnforced: z.boolean().default(false),
            managedBy: z.enum(["account", "declarative-policy"]).default("account"),
          })
          .optional(),
      }),
    )
    .min(1),
  /** Optional allow-list of the hub: only these accounts (ALLOWED_ACCOUNT_IDS). */
  allowedAccounts: z.array(ACCOUNT_ID).default([]),
});
export type ScenarioOrganization = z.infer<typeof scenarioOrganizationSchema>;

// Strict objects: a misspelt key ("event" for "events") is an error naming it, not a default that quietly does nothing.
export const scenarioSchema = z.strictObject({
  name: z.string().default("scenario"),
  description: z.string().optional(),
  settings: flowSettingsSchema
    .partial()
    .extend({
      /** The deploy's sweepInstancesPerExecution: instances per execution the sweep starts (at most 1,000). */
      sweepInstancesPerExecution: z.number().int().min(1).max(1000).optional(),
    })
    .strict()
    .default({}),
  /** Seconds between the deliveries of consecutive events (simulated time). */
  eventSpacingSeconds: z.number().min(0).default(600),
  /**
   * EventBridge events exactly as delivered. `eventDelaySeconds` on an entry (removed before delivery) delays that
   * one delivery, e.g. to deliver EC2's state-change notification before, or without, the CloudTrail record.
   */
  events: z
    .array(
      z.unknown().superRefine((event, ctx) => {
        const delay = (event as { eventDelaySeconds?: unknown } | null)?.eventDelaySeconds;
        if (delay !== undefined && (typeof delay !== "number" || !(delay >= 0))) {
          ctx.addIssue({ code: "custom", message: "eventDelaySeconds must be a number of seconds >= 0" });
        }
      }),
    )
    .default([]),
  /** State-change path: how long the report waits for the CloudTrail record (the deploy's attributionTimeoutSeconds). */
  attributionTimeoutSeconds: z.number().int().min(0).default(900),
  /** The account's IMDS defaults (GetInstanceMetadataDefaults) in the simulated region. */
  account: z
    .strictObject({
      httpTokens: z.enum(["optional", "required", "no-preference"]).default("no-preference"),
      httpTokensEnforced: z.boolean().default(false),
      managedBy: z.enum(["account", "declarative-policy"]).default("account"),
    })
    .default({ httpTokens: "no-preference", httpTokensEnforced: false, managedBy: "account" }),
  /** AMIs by id with their ImdsSupport; an AMI not listed has none ("unset"). */
  images: z.record(z.string(), z.strictObject({ imdsSupport: z.enum(["v2.0", "unset"]) })).default({}),
  /** Run the scheduled reconciliation sweep at these simulated times (seconds from the start). */
  sweepAtSeconds: z.array(z.number().min(0)).default([]),
  instances: z.array(scenarioInstanceSchema),
  /** Set: organization mode, a hub guarding these accounts. Unset: one account in one region, as before. */
  organization: scenarioOrganizationSchema.optional(),
  /** Seeded AWS weather (local/runner/weather.ts): documented, randomized, reproducible behaviour; `--weather-seed`. */
  weather: weatherSchema.optional(),
});
export type Scenario = z.infer<typeof scenarioSchema>;

/** Parses a scenario, naming every wrong field at once. */
export function parseScenario(raw: unknown, source: string): Scenario {
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`Invalid scenario ${source}: ${describeIssues(parsed.error)}`);
  const org = parsed.data.organization;
  if (org) {
    parsed.data.instances.forEach((instance, i) => {
      const account = org.accounts.find((a) => a.id === (instance.account ?? org.accounts[0]?.id));
      if (!account)
        throw new Error(`Invalid scenario ${source}: instances.${i}.account: not an account of the organization`);
      if (instance.region !== undefined && !account.regions.includes(instance.region)) {
        throw new Error(`Invalid scenario ${source}: instances.${i}.region: not a region of account ${account.id}`);
      }
    });
  }
  return parsed.data;
}

/**
 * Reads and parses a scenario file; every error names the file. A relative path means what it means where the user
 * typed it: npm runs scripts from the package root, and says where the user was in INIT_CWD.
 */
export function readScenarioFile(file: string, callerDirectory = process.env.INIT_CWD ?? process.cwd()): Scenario {
  const path = isAbsolute(file) ? file : resolve(callerDirectory, file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "a directory, not a file" : String(code);
    throw new Error(`Cannot read scenario ${path}: ${why}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`Scenario ${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseScenario(raw, path);
}
