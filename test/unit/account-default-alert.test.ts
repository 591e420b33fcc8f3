import { describe, expect, it } from "vitest";
import type { EventRef } from "../../shared/domain/model.js";
import { accountDefaultAlertMessage } from "../../shared/report/account-default-alert.js";

const EVENT: EventRef = {
  eventId: "e-mimd-1",
  eventName: "ModifyInstanceMetadataDefaults",
  eventTime: "2026-11-28T17:05:11Z",
  actor: "arn:aws:sts::123456789012:assumed-role/Admin/`@here *bold* <!channel>`",
  account: "123456789012",
  region: "eu-west-1",
  source: "cloudtrail",
};

function parts(message: ReturnType<typeof accountDefaultAlertMessage>) {
  const body = JSON.parse(message.Message) as { default: string; https: string; sqs: string };
  return { text: body.default, card: JSON.parse(body.https) as { content: { description: string } }, sqs: body.sqs };
}

describe("accountDefaultAlertMessage", () => {
  it("says the old value is unknown and gives the fix when nothing was set back", () => {
    const message = accountDefaultAlertMessage({
      alert: "account-default",
      event: EVENT,
      change: { httpTokens: "optional", weakened: ["HttpTokens set to optional"] },
      outcome: {
        observed: { httpTokens: "optional", httpTokensEnforced: false, managedBy: "account" },
        observedAt: "2026-11-28T17:05:20.000Z",
        restored: false,
        action: "Not set back: the guard is deployed with enforceAccountDefault=false, so it only reports.",
      },
    });
    const { text, sqs } = parts(message);
    expect(message.MessageAttributes?.verdict?.StringValue).toBe("alert");
    expect(text).toContain("Old value: unknown.");
    expect(text).toContain("aws ec2 modify-instance-metadata-defaults --region eu-west-1 --http-tokens required");
    expect(JSON.parse(sqs).schema).toBe("imdsv2-guard.account-default.v1");
  });

  it("says plainly when the defaults could not be read, and changed nothing", () => {
    const { text } = parts(
      accountDefaultAlertMessage({
        alert: "account-default",
        event: EVENT,
        change: { httpTokensEnforced: "disabled", weakened: ["HttpTokensEnforced set to disabled"] },
        outcome: { Error: "RetryableThrottlingError", Cause: "throttled" },
      }),
    );
    expect(text).toContain("Now:       could not be read: RetryableThrottlingError");
    expect(text).toContain("None: the guard could not read the defaults, so it changed nothing.");
    expect(text).toContain("--http-tokens-enforced enabled");
  });

  it("keeps a hostile actor inside its code span in Slack", () => {
    const { card } = parts(
      accountDefaultAlertMessage({
        alert: "account-default",
        event: EVENT,
        change: { httpTokens: "optional", weakened: ["HttpTokens set to optional"] },
        outcome: { Error: "X" },
      }),
    );
    const firstLine = card.content.description.split("\n")[0] ?? "";
    // The actor sits in one code span: exactly two backticks on the line.
    expect(firstLine.split("`").length - 1).toBe(2);
  });
});
