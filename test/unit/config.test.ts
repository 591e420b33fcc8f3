import { describe, expect, it } from "vitest";
import {
  loadLedgerTableName,
  loadNotifyConfig,
  loadResolveTargetsConfig,
  loadSweepConfig,
} from "../../shared/runtime/config.js";
import { GUARD_PREFIX } from "./support.js";

describe("loadResolveTargetsConfig: governance settings", () => {
  it("defaults to enforce, hold on IMDSv1 use over 24 h, a 900 s watch and the default exempt-until key", () => {
    // Prepare
    const env = { GUARD_ROLE_ARN_PREFIX: GUARD_PREFIX };

    // Act
    const { settings } = loadResolveTargetsConfig(env);

    // Assess
    expect(settings).toMatchObject({
      mode: "enforce",
      exemptUntilTagKey: "imdsv2-guard:exempt-until",
      onV1Usage: "hold",
      v1UsageLookbackHours: 24,
      watchRejectedSeconds: 900,
    });
  });

  it("reads GUARD_MODE and the new variables", () => {
    // Prepare
    const env = {
      GUARD_ROLE_ARN_PREFIX: GUARD_PREFIX,
      GUARD_MODE: "audit",
      EXEMPT_UNTIL_TAG_KEY: "ops:keep-imdsv1-until",
      ON_V1_USAGE: "enforce",
      V1_USAGE_LOOKBACK_HOURS: "72",
      WATCH_REJECTED_SECONDS: "0",
    };

    // Act
    const { settings } = loadResolveTargetsConfig(env);

    // Assess
    expect(settings).toMatchObject({
      mode: "audit",
      exemptUntilTagKey: "ops:keep-imdsv1-until",
      onV1Usage: "enforce",
      v1UsageLookbackHours: 72,
      watchRejectedSeconds: 0,
    });
  });

  it("no longer reads the old MODE variable", () => {
    // Prepare
    const env = { GUARD_ROLE_ARN_PREFIX: GUARD_PREFIX, MODE: "audit" };

    // Act
    const { settings } = loadResolveTargetsConfig(env);

    // Assess
    expect(settings.mode).toBe("enforce");
  });

  it.each([
    { name: "ON_V1_USAGE", value: "ignore" },
    { name: "V1_USAGE_LOOKBACK_HOURS", value: "337" },
    { name: "V1_USAGE_LOOKBACK_HOURS", value: "0" },
    { name: "WATCH_REJECTED_SECONDS", value: "86401" },
    { name: "WATCH_REJECTED_SECONDS", value: "-1" },
    { name: "GUARD_MODE", value: "destroy" },
  ])("throws NonRetryableConfigurationError naming $name=$value", ({ name, value }) => {
    // Prepare
    const env = { GUARD_ROLE_ARN_PREFIX: GUARD_PREFIX, [name]: value };

    // Act
    const load = () => loadResolveTargetsConfig(env);

    // Assess
    expect(load).toThrow(expect.objectContaining({ name: "NonRetryableConfigurationError" }));
    expect(load).toThrow(name);
  });
});

describe("loadLedgerTableName", () => {
  it("reads LEDGER_TABLE_NAME, and throws naming it when it is missing or too short", () => {
    // Prepare
    const env = { LEDGER_TABLE_NAME: "imdsv2-guard-dev-ledger" };

    // Act
    const name = loadLedgerTableName(env);

    // Assess
    expect(name).toBe("imdsv2-guard-dev-ledger");
    for (const bad of [{}, { LEDGER_TABLE_NAME: "ab" }]) {
      expect(() => loadLedgerTableName(bad)).toThrow(
        expect.objectContaining({ name: "NonRetryableConfigurationError" }),
      );
      expect(() => loadLedgerTableName(bad)).toThrow("LEDGER_TABLE_NAME");
    }
  });
});

describe("loadNotifyConfig", () => {
  it("sends fail, error, held, unverified and alert to Slack by default", () => {
    // Prepare
    const env = { TOPIC_ARN: "arn:aws:sns:us-east-1:123456789012:alerts" };

    // Act
    const config = loadNotifyConfig(env);

    // Assess
    expect(config.slackVerdicts).toEqual(["fail", "error", "held", "unverified", "alert"]);
  });

  const watchEnv = {
    WATCH_SCHEDULE_GROUP: "imdsv2-guard-dev-watch",
    WATCH_SCHEDULER_ROLE_ARN: "arn:aws:iam::123456789012:role/imdsv2-guard-dev-watch-scheduler",
    WATCH_TARGET_ARN: "arn:aws:lambda:us-east-1:123456789012:function:imdsv2-guard-dev-checkRejected",
    WATCH_DEAD_LETTER_QUEUE_ARN: "arn:aws:sqs:us-east-1:123456789012:imdsv2-guard-dev-watch-dead-letters",
  };

  it("reads the watch's schedule from the four WATCH_ variables, and has none when all are unset", () => {
    // Prepare
    const topic = { TOPIC_ARN: "arn:aws:sns:us-east-1:123456789012:alerts" };

    // Act
    const withWatch = loadNotifyConfig({ ...topic, ...watchEnv });
    const without = loadNotifyConfig({ ...topic, WATCH_SCHEDULE_GROUP: "" });

    // Assess
    expect(withWatch.watch).toEqual({
      groupName: watchEnv.WATCH_SCHEDULE_GROUP,
      roleArn: watchEnv.WATCH_SCHEDULER_ROLE_ARN,
      targetArn: watchEnv.WATCH_TARGET_ARN,
      deadLetterQueueArn: watchEnv.WATCH_DEAD_LETTER_QUEUE_ARN,
    });
    expect(without).not.toHaveProperty("watch");
  });

  it("refuses some WATCH_ variables without the others, naming the missing one", () => {
    // Prepare
    const { WATCH_DEAD_LETTER_QUEUE_ARN: _dlq, ...partial } = watchEnv;

    // Act
    const run = () => loadNotifyConfig({ TOPIC_ARN: "arn:aws:sns:us-east-1:123456789012:alerts", ...partial });

    // Assess
    expect(run).toThrow(expect.objectContaining({ name: "NonRetryableConfigurationError" }));
    expect(run).toThrow("WATCH_DEAD_LETTER_QUEUE_ARN");
  });
});

describe("loadSweepConfig", () => {
  const base = {
    STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:imdsv2-guard",
    AWS_REGION: "us-east-1",
    ACCOUNT_ID: "123456789012",
  };

  it("leaves the account default alone unless ENFORCE_ACCOUNT_DEFAULT is true", () => {
    // Prepare
    const envs = [base, { ...base, ENFORCE_ACCOUNT_DEFAULT: "false" }, { ...base, ENFORCE_ACCOUNT_DEFAULT: "true" }];

    // Act
    const flags = envs.map((env) => loadSweepConfig(env).enforceAccountDefault);

    // Assess
    expect(flags).toEqual([false, false, true]);
    expect(loadSweepConfig(base).exemptUntilTagKey).toBe("imdsv2-guard:exempt-until");
  });

  it("reads GUARD_MODE for the sweep, enforce by default, and refuses any other value naming it", () => {
    // Prepare
    const envs = [base, { ...base, GUARD_MODE: "audit" }, { ...base, GUARD_MODE: "enforce" }];

    // Act
    const modes = envs.map((env) => loadSweepConfig(env).mode);
    const bad = () => loadSweepConfig({ ...base, GUARD_MODE: "destroy" });

    // Assess
    expect(modes).toEqual(["enforce", "audit", "enforce"]);
    expect(bad).toThrow(expect.objectContaining({ name: "NonRetryableConfigurationError" }));
    expect(bad).toThrow("GUARD_MODE");
  });

  it("refuses an ENFORCE_ACCOUNT_DEFAULT that is not true or false", () => {
    // Prepare
    const env = { ...base, ENFORCE_ACCOUNT_DEFAULT: "yes" };

    // Act
    const load = () => loadSweepConfig(env);

    // Assess
    expect(load).toThrow("ENFORCE_ACCOUNT_DEFAULT");
  });
});
