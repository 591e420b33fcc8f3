import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { ACCOUNT, scenario } from "./helpers.js";

function weakeningCall(request: Record<string, string> = { HttpTokens: "optional" }): unknown {
  const text = readFileSync(
    new URL("../fixtures/events/modify-instance-metadata-defaults.json", import.meta.url),
    "utf8",
  ).replaceAll("123456789012", ACCOUNT);
  const event = JSON.parse(text) as { detail: Record<string, unknown> };
  event.detail.requestParameters = { ModifyInstanceMetadataDefaultsRequest: request };
  return event;
}

/** The text (email) of every alert the simulated topic received. */
function alertTexts(run: Awaited<ReturnType<typeof runFlow>>): string[] {
  return run.sim.published
    .filter((p) => p.input.MessageAttributes?.verdict?.StringValue === "alert")
    .map((p) => (JSON.parse(p.input.Message ?? "{}") as { default: string }).default);
}

describe("ModifyInstanceMetadataDefaults: a weakened account default", () => {
  it("alerts with the actor, the new value, an honest old value, and sets nothing back by default", async () => {
    // Prepare: the default is required; someone sets it to optional.
    const s = scenario({ events: [weakeningCall()], instances: [], account: { httpTokens: "required" } });

    // Act
    const run = await runFlow(s);

    // Assess
    const texts = alertTexts(run);
    expect(texts).toHaveLength(1);
    const [text = ""] = texts;
    expect(text).toContain("was weakened: HttpTokens set to optional");
    expect(text).toContain(`Actor:     arn:aws:sts::${ACCOUNT}:assumed-role/PlatformAdmin/jo.platform`);
    expect(text).toContain("New value: HttpTokens=optional (from the CloudTrail request)");
    expect(text).toContain("Old value: unknown. CloudTrail records the request, not the defaults before it");
    expect(text).toContain("Now:       account default HttpTokens=optional");
    expect(text).toContain("enforceAccountDefault=false, so it only reports");
    expect(text).toContain("aws ec2 modify-instance-metadata-defaults --region eu-west-1 --http-tokens required");
    expect(run.sim.calls.ModifyInstanceMetadataDefaults).toBe(0);
    expect(run.sim.account.httpTokens).toBe("optional");
    expect(run.reports).toHaveLength(0);
  });

  it("sets the default back and says so with enforceAccountDefault on", async () => {
    const s = scenario({ events: [weakeningCall()], instances: [], account: { httpTokens: "required" } });
    const run = await runFlow(s, { enforceAccountDefault: true });
    const [text = ""] = alertTexts(run);
    expect(text).toContain("The guard set the default back to HttpTokens=required (it was optional).");
    expect(text).not.toContain("--http-tokens required");
    expect(run.sim.calls.ModifyInstanceMetadataDefaults).toBe(1);
    expect(run.sim.account.httpTokens).toBe("required");
  });

  it("leaves a default managed by a declarative policy alone, and says where to change it", async () => {
    const s = scenario({
      events: [weakeningCall()],
      instances: [],
      account: { httpTokens: "required", managedBy: "declarative-policy" },
    });
    const run = await runFlow(s, { enforceAccountDefault: true });
    const [text = ""] = alertTexts(run);
    expect(text).toContain("a declarative policy in AWS Organizations manages this default");
    expect(run.sim.calls.ModifyInstanceMetadataDefaults).toBe(0);
  });

  it("never switches HttpTokensEnforced on itself: it alerts with the command and its consequence", async () => {
    const s = scenario({
      events: [weakeningCall({ HttpTokensEnforced: "disabled" })],
      instances: [],
      account: { httpTokens: "required", httpTokensEnforced: true },
    });
    const run = await runFlow(s, { enforceAccountDefault: true });
    const [text = ""] = alertTexts(run);
    expect(text).toContain("HttpTokensEnforced set to disabled");
    expect(text).toContain("--http-tokens-enforced enabled (launches that do not require IMDSv2 then fail");
    expect(run.sim.calls.ModifyInstanceMetadataDefaults).toBe(0);
    expect(run.sim.account.httpTokensEnforced).toBe(false);
  });

  it("sends nothing for the failed call", async () => {
    const text = readFileSync(
      new URL("../fixtures/events/modify-instance-metadata-defaults-failed.json", import.meta.url),
      "utf8",
    );
    const run = await runFlow(scenario({ events: [JSON.parse(text)], instances: [] }));
    expect(run.sim.published).toHaveLength(0);
    expect(run.executions.every((e) => e.status === "succeeded")).toBe(true);
  });
});
