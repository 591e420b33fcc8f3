import { describe, expect, it } from "vitest";
import type { Batch, InstanceProgress, InstanceResult } from "../../shared/domain/model.js";
import { finalizeBatch, summarizeBatch } from "../../shared/steps/finalize-batch.js";
import { batchFactory, ID_A, ID_B, ID_C, result } from "./support.js";

const NOW = new Date("2026-11-28T10:05:00.000Z");

const PASSED: InstanceResult = result(ID_A, {
  reason: "IMDSv1 refused (401); the IMDSv2 token flow works.",
  platform: "linux",
  secondsToApplied: 20,
  secondsToVerdict: 95,
});

const batch = batchFactory({ eventId: "evt-final" });

function batchOf(instances: InstanceProgress[], failure?: Batch["failure"]): Batch {
  return batch(instances, { failure });
}

function finished(result: InstanceResult): InstanceProgress {
  return { instanceId: result.instanceId, stage: "done", notes: [], result };
}

function unfinished(instanceId: string, stage: InstanceProgress["stage"], notes: string[] = []): InstanceProgress {
  return { instanceId, stage, notes };
}

describe("finalizeBatch", () => {
  it("turns the unfinished into error with the failed step's Lambda error message, keeping finished verdicts", () => {
    // Prepare
    const cause = JSON.stringify({
      errorType: "NonRetryableAwsError",
      errorMessage: "DescribeInstanceInformation: AccessDeniedException: not authorized",
      trace: ["NonRetryableAwsError: DescribeInstanceInformation", "    at classifyAwsError"],
    });
    const batch = batchOf([finished(PASSED), unfinished(ID_B, "await-managed"), unfinished(ID_C, "await-probe")], {
      Error: "NonRetryableAwsError",
      Cause: cause,
    });

    // Act
    const results = finalizeBatch(batch, NOW);

    // Assess
    expect(results[0]).toEqual(PASSED);
    for (const result of results.slice(1)) {
      expect(result.verdict).toBe("error");
      expect(result.reason).toBe(
        "A step failed after its retries: NonRetryableAwsError: DescribeInstanceInformation: AccessDeniedException: not authorized",
      );
      expect(result.reason).not.toContain("trace");
      expect(result.reason).not.toContain("errorType");
      expect(result.secondsToVerdict).toBe(300);
    }
  });

  it("gives every instance exactly one result, in batch order", () => {
    // Prepare
    const batch = batchOf([unfinished(ID_C, "enforce"), finished(PASSED), unfinished(ID_B, "send-probe")], {
      Error: "States.Timeout",
    });

    // Act
    const results = finalizeBatch(batch, NOW);

    // Assess
    expect(results.map((r) => r.instanceId)).toEqual([ID_C, ID_A, ID_B]);
    expect(new Set(results.map((r) => r.instanceId)).size).toBe(results.length);
    expect(results.map((r) => r.verdict)).toEqual(["error", "pass", "error"]);
    // Left in `enforce` by a timeout: an attempt may have made its modify call before it stopped.
    expect(results[0]?.reason).toBe(
      "A step failed after its retries: States.Timeout HttpTokens may or may not have been set to required by an attempt that stopped: check the instance.",
    );
    expect(results[2]?.reason).toBe("A step failed after its retries: States.Timeout");
  });

  it("keeps a plain-text Cause as it is", () => {
    // Prepare
    const batch = batchOf([unfinished(ID_B, "await-applied")], {
      Error: "Lambda.ServiceException",
      Cause: "Lambda was unable to start the function.",
    });

    // Act
    const [result] = finalizeBatch(batch, NOW);

    // Assess
    expect(result?.reason).toBe(
      "A step failed after its retries: Lambda.ServiceException: Lambda was unable to start the function.",
    );
  });

  it.each(["null", "42", '"a string"', '{"errorType":"X"}'])(
    "does not crash on a JSON Cause without errorMessage (%s)",
    (cause) => {
      // Prepare
      const batch = batchOf([unfinished(ID_B, "enforce")], { Error: "States.TaskFailed", Cause: cause });

      // Act
      const [result] = finalizeBatch(batch, NOW);

      // Assess
      expect(result?.verdict).toBe("error");
      expect(result?.reason).toBe(`A step failed after its retries: States.TaskFailed: ${cause}`);
    },
  );

  it("caps a long cause", () => {
    // Prepare
    const cause = JSON.stringify({ errorType: "Error", errorMessage: "x".repeat(5000) });
    const batch = batchOf([unfinished(ID_B, "enforce")], { Error: "Error", Cause: cause });

    // Act
    const [result] = finalizeBatch(batch, NOW);

    // Assess
    expect(result?.reason.length).toBeLessThan(500);
  });

  it("names an unfinished instance without a failure too, and keeps its notes as warnings", () => {
    // Prepare
    const batch = batchOf([unfinished(ID_B, "await-probe", ["Audit mode: nothing was changed."])]);

    // Act
    const [result] = finalizeBatch(batch, NOW);

    // Assess
    expect(result).toMatchObject({
      instanceId: ID_B,
      verdict: "error",
      reason: "The flow ended before this instance had a verdict.",
      warnings: ["Audit mode: nothing was changed."],
    });
  });

  it("returns the finished verdicts unchanged when the flow ended normally", () => {
    // Prepare
    const skipped: InstanceResult = { instanceId: ID_B, verdict: "skipped", reason: "terminated", warnings: [] };
    const batch = batchOf([finished(PASSED), finished(skipped)]);

    // Act
    const results = finalizeBatch(batch, NOW);

    // Assess
    expect(results).toEqual([PASSED, skipped]);
  });
});

describe("summarizeBatch", () => {
  it("keeps the batch's position and counts every verdict, zeros included, and nothing else", () => {
    // Prepare
    const results = [
      PASSED,
      result(ID_B, { verdict: "error", reason: "boom" }),
      result(ID_C, { verdict: "error", reason: "boom" }),
    ];

    // Act
    const summary = summarizeBatch(7, results);

    // Assess
    expect(summary).toStrictEqual({
      batchIndex: 7,
      suspended: false,
      instances: 3,
      counts: { pass: 1, fail: 0, held: 0, unverified: 0, exempt: 0, skipped: 0, error: 2 },
    });
    expect(JSON.stringify(summary)).not.toContain(ID_A);
  });
});
