import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS, GUARD_ROLE_ARN_PREFIX, runFlow } from "../local/runner/run-flow.js";
import { parseScenario } from "../local/runner/scenario.js";
import probeLinux from "../shared/probes/probe-linux.sh";
import { buildReport, chatbotNotification, plainText, snsMessage, subjectLine } from "../shared/report/report.js";
import { resolveTargets } from "../shared/steps/resolve-targets.js";
import {
  envelope,
  HOSTILE_STRINGS,
  hugeEvent,
  INVALID_INSTANCE_IDS,
  MALFORMED_EVENTS,
  runDetail,
} from "./fixtures/hostile.js";

const config = { settings: DEFAULT_SETTINGS, guardRoleArnPrefix: GUARD_ROLE_ARN_PREFIX, batchSize: 50 };
const now = new Date("2026-11-28T09:00:00Z");

describe("hostile and malformed events", () => {
  it.each(Object.entries(MALFORMED_EVENTS))(
    "%s: resolves to a reported problem or rejection, never a throw",
    (_, event) => {
      // Act
      const resolved = resolveTargets(event, config, now);

      // Assess
      expect(resolved.notify).toBe(true);
      expect(Boolean(resolved.problem) || resolved.rejected.length > 0).toBe(true);
      const report = buildReport({
        event: resolved.event,
        mode: "enforce",
        results: [],
        rejected: resolved.rejected,
        ...(resolved.problem ? { problem: resolved.problem } : {}),
      });
      expect(report.verdict).toBe("error");
      expect(() => snsMessage(report)).not.toThrow();
    },
  );

  it.each(INVALID_INSTANCE_IDS.map((id) => [String(id).slice(0, 30), id]))(
    "rejects the instance id %j with a reason, echoing it JSON-encoded and truncated",
    (_, id) => {
      const resolved = resolveTargets(envelope(runDetail([{ instanceId: id }])), config, now);
      expect(resolved.targetCount).toBe(0);
      expect(resolved.rejected).toHaveLength(1);
      expect(resolved.rejected[0]?.reason).toMatch(/not an instance id/);
      expect(resolved.rejected[0]?.value.length).toBeLessThanOrEqual(81);
    },
  );

  it("handles a huge event: every valid id is batched, nothing is dropped", () => {
    const resolved = resolveTargets(hugeEvent(), config, now);
    expect(resolved.targetCount).toBe(3000);
    expect(resolved.batches).toHaveLength(60);
    expect(resolved.batches.every((b) => b.length <= 50)).toBe(true);
  });

  it("sends every malformed event through the whole flow to exactly one error notification, with no failed execution", async () => {
    // Prepare
    const events = Object.values(MALFORMED_EVENTS);
    const scenario = parseScenario({ name: "hostile", eventSpacingSeconds: 0, events, instances: [] }, "hostile");

    // Act
    const run = await runFlow(scenario);

    // Assess
    expect(run.executions.filter((e) => e.status === "failed")).toEqual([]);
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(0);
    // Events without an id are told apart by a fingerprint of their content, so none is mistaken for a duplicate.
    expect(run.sim.published).toHaveLength(events.length);
    expect(run.reports.every((r) => r.verdict === "error")).toBe(true);
  });
});

describe("hostile tag values and actor names", () => {
  it("never reach the probe's command, and cannot shape the notification", async () => {
    // Prepare
    const hostileTags = Object.fromEntries(Object.entries(HOSTILE_STRINGS).map(([k, v]) => [`x-${k}`, v]));
    const exemptReason = `${HOSTILE_STRINGS.markdown} ${HOSTILE_STRINGS.newlines} ${HOSTILE_STRINGS.json}`;
    const probed = "i-0aaaaaaaaaaaaaaa1";
    const exempt = "i-0aaaaaaaaaaaaaaa2";
    const event = envelope(
      runDetail([{ instanceId: probed }, { instanceId: exempt }], {
        userIdentity: { type: "AssumedRole", arn: `arn:aws:sts::111122223333:assumed-role/R/${HOSTILE_STRINGS.shell}` },
      }),
    );
    const scenario = parseScenario(
      {
        name: "hostile-tags",
        events: [event],
        instances: [
          { id: probed, tags: hostileTags },
          { id: exempt, tags: { ...hostileTags, "imdsv2-guard:exempt": exemptReason } },
        ],
      },
      "hostile-tags",
    );

    // Act
    const run = await runFlow(scenario);

    // Assess: the command is the repository's script, byte for byte.
    const commands = run.sim.probeRuns;
    expect(commands).toHaveLength(1);
    expect(run.sim.calls.SendCommand).toBe(1);
    const report = run.reports[0];
    if (!report) throw new Error("no report");
    expect(report.results.map((r) => r.verdict).sort()).toEqual(["exempt", "pass"]);

    // Plain text: the forged lines stay inside their own line.
    const text = plainText(report);
    expect(text).not.toMatch(/^Verdict: pass$/m);
    expect(text).not.toMatch(/^- i-0123456789abcdef0: PASS - forged/m);
    // Markdown: no live formatting, links or mentions from user-controlled strings.
    const chatbot = JSON.parse(chatbotNotification(report)) as { content: { description: string } };
    expect(chatbot.content.description).not.toContain("[click](https://evil.example)");
    expect(chatbot.content.description).not.toContain("<!channel>");
    expect(chatbot.content.description).toContain("\u2217bold\u2217");
    expect(chatbot.content.description).not.toMatch(/[*_~`]bold|\\/);
    expect(chatbot.content.description.split("\n").some((l) => l.startsWith("Verdict: pass"))).toBe(false);
    // Subject: ASCII, one line, short.
    expect(subjectLine(report)).toMatch(/^[\x20-\x7e]{1,99}$/);
    // The machine report keeps the raw value, safely JSON-encoded.
    const published = JSON.parse(run.sim.published[0]?.input.Message ?? "{}") as { sqs: string };
    expect(JSON.parse(published.sqs).results.find((r: { verdict: string }) => r.verdict === "exempt").reason).toContain(
      HOSTILE_STRINGS.json,
    );
    expect(probeLinux.length).toBeGreaterThan(100);
  });
});
