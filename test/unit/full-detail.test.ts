import { describe, expect, it } from "vitest";
import { hiddenDetailSentence, ledgerDetail } from "../../shared/report/full-detail.js";

describe("ledgerDetail", () => {
  it("gives the exact query of the event's stored results, in the event's region", () => {
    const detail = ledgerDetail("imdsv2-guard-prod-EventLedgerTable-1AB2", "4e5f6a7b-8c9d-4e0f", "eu-west-1", 7);
    expect(detail.command).toBe(
      "aws dynamodb query --region eu-west-1 --table-name imdsv2-guard-prod-EventLedgerTable-1AB2 " +
        "--key-condition-expression 'eventId = :e AND begins_with(#item, :prefix)' " +
        `--expression-attribute-names '{"#item":"item"}' ` +
        `--expression-attribute-values '{":e":{"S":"4e5f6a7b-8c9d-4e0f"},":prefix":{"S":"result#"}}' ` +
        "--query 'Items[].results.S' --output text",
    );
    expect(hiddenDetailSentence(3, detail)).toContain("for 7 days: aws dynamodb query");
  });

  it.each(["e'; rm -rf / #", "$(reboot)", "a b", ""])(
    "puts no shell-active event id (%j) into the command",
    (eventId) => {
      const detail = ledgerDetail("ledger", eventId, "not a region; reboot", 7);
      expect(detail.command).toContain(`"S":"<eventId>"`);
      expect(detail.command).toContain("--region <region>");
      expect(detail.command).not.toMatch(/rm -rf|reboot|\$\(/);
    },
  );
});
