import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { chatbotNotification, plainText } from "../../shared/report/report.js";
import { allResults, instanceIds, modifyEvent, runInstancesEvent, scenario, verdictOf, watches } from "./helpers.js";

const LAUNCH_TEMPLATE_TAGS = {
  "aws:ec2launchtemplate:id": "lt-0123456789abcdef0",
  "aws:ec2launchtemplate:version": "7",
};

describe("the safety gate before enforcing on an existing instance", () => {
  it("holds an instance that used IMDSv1 when someone turns IMDSv1 back on (onV1Usage=hold)", async () => {
    // Prepare: the instance has been running a week with an IMDSv1 caller; someone sets it back to optional.
    const [id = ""] = instanceIds(1);
    const s = scenario({
      events: [modifyEvent(id, "optional")],
      instances: [{ id, httpTokens: "optional", ageHours: 168, imdsV1CallsPerHour: 30 }],
    });

    // Act
    const run = await runFlow(s);

    // Assess
    const [result] = allResults(run);
    expect(result?.verdict).toBe("held");
    expect(result?.reason).toMatch(/IMDSv1 answered 720 call\(s\) in the last 24 h/);
    expect(result?.v1Usage).toEqual({ calls: 720, hours: 24 });
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(0);
    expect(run.sim.instance(id)?.httpTokens).toBe("optional");
  });

  it("enforces anyway, with a note, when the policy is onV1Usage=enforce", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({
        settings: { onV1Usage: "enforce", watchRejectedSeconds: 0 },
        events: [modifyEvent(id, "optional")],
        instances: [{ id, ageHours: 168, imdsV1CallsPerHour: 30 }],
      }),
    );
    const [result] = allResults(run);
    expect(result?.verdict).toBe("pass");
    expect(result?.warnings.join(" ")).toMatch(/enforced anyway \(policy onV1Usage=enforce\)/);
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(1);
  });

  it("does not gate a new launch: it has no history to protect", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({ events: [runInstancesEvent([id])], instances: [{ id, imdsV1CallsPerHour: 30 }] }),
    );
    expect(verdictOf(run, id)).toBe("pass");
    expect(run.sim.calls.GetMetricData).toBe(1); // only the watch after enforcing, not a gate
  });
});

describe("the watch after enforcing", () => {
  it("alerts with the counts and the exact rollback command when software keeps calling IMDSv1", async () => {
    // Prepare
    const [broken = "", fine = ""] = instanceIds(2);
    const s = scenario({
      events: [runInstancesEvent([broken, fine])],
      instances: [{ id: broken, imdsV1CallsPerHour: 240 }, { id: fine }],
    });

    // Act
    const run = await runFlow(s);

    // Assess
    expect(allResults(run).map((r) => r.verdict)).toEqual(["pass", "pass"]);
    expect(run.alerts).toHaveLength(1);
    const [alert] = run.alerts;
    expect(alert?.instances).toEqual([{ instanceId: broken, rejectedCalls: expect.any(Number) }]);
    expect(alert?.instances[0]?.rejectedCalls).toBeGreaterThan(50);
    expect(alert?.rollbackPossible).toBe(true);
    // The execution ended at Notify; the schedule it booked ran the watch a window later.
    const [execution] = run.executions;
    expect(run.executions).toHaveLength(1);
    expect(Date.parse(alert?.windowEnd ?? "") - (execution?.endedAt ?? 0)).toBeGreaterThanOrEqual(900_000);
    expect(run.sim.schedulesCreated).toHaveLength(1);
    expect(watches(run)).toEqual([expect.objectContaining({ functionName: "CheckRejected", attempts: 1 })]);
    const message = run.sim.published.at(-1)?.input;
    expect(message?.MessageAttributes?.verdict?.StringValue).toBe("alert");
    const text = (JSON.parse(message?.Message ?? "{}") as { default: string }).default;
    expect(text).toContain(
      `aws ec2 modify-instance-metadata-options --region eu-west-1 --instance-id ${broken} --http-tokens optional`,
    );
  });

  it("says rollback is impossible when the account enforces HttpTokens", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({
        account: { httpTokensEnforced: true },
        events: [runInstancesEvent([id])],
        instances: [{ id, imdsV1CallsPerHour: 240 }],
      }),
    );
    expect(run.alerts[0]?.rollbackPossible).toBe(false);
    const text = (JSON.parse(run.sim.published.at(-1)?.input.Message ?? "{}") as { default: string }).default;
    expect(text).toMatch(/Rollback is impossible: HttpTokensEnforced is enabled/);
    expect(text).not.toContain("--http-tokens optional");
  });

  it("stays quiet when nothing is refused, and can be switched off", async () => {
    const [id = ""] = instanceIds(1);
    const quiet = await runFlow(scenario({ events: [runInstancesEvent([id])], instances: [{ id }] }));
    expect(quiet.alerts).toEqual([]);
    expect(quiet.sim.calls.GetMetricData).toBe(1);
    const off = await runFlow(
      scenario({
        settings: { watchRejectedSeconds: 0 },
        events: [runInstancesEvent([id])],
        instances: [{ id, imdsV1CallsPerHour: 240 }],
      }),
    );
    expect(off.alerts).toEqual([]);
    expect(off.sim.calls.GetMetricData).toBe(0);
    expect(off.sim.calls.CreateSchedule).toBe(0);
  });
});

describe("exemptions that expire", () => {
  it("enforces once exempt-until has passed, and says the exemption lapsed", async () => {
    const [lapsed = "", current = ""] = instanceIds(2);
    const run = await runFlow(
      scenario({
        sweepAtSeconds: [0],
        instances: [
          {
            id: lapsed,
            ageHours: 100,
            tags: { "imdsv2-guard:exempt": "VND-88", "imdsv2-guard:exempt-until": "2026-11-01" },
          },
          {
            id: current,
            ageHours: 100,
            tags: { "imdsv2-guard:exempt": "VND-99", "imdsv2-guard:exempt-until": "2027-01-31" },
          },
        ],
      }),
    );
    const [result] = allResults(run);
    expect(result).toMatchObject({ instanceId: lapsed, verdict: "pass" });
    expect(result?.warnings.join(" ")).toMatch(/The exemption lapsed on 2026-11-01 .* it was: VND-88/);
    expect(run.sim.instance(current)?.httpTokens).toBe("optional");
  });
});

describe("root cause in every notification", () => {
  it("names the actor, launch template, Auto Scaling group and AMI, with the commands that fix each source", async () => {
    // Prepare
    const [id = ""] = instanceIds(1);
    const event = runInstancesEvent([id]);
    (event.detail as Record<string, unknown>).requestParameters = {
      launchTemplate: { launchTemplateId: "lt-0123456789abcdef0", version: "7" },
    };
    const s = scenario({
      events: [event],
      instances: [{ id, tags: { ...LAUNCH_TEMPLATE_TAGS, "aws:autoscaling:groupName": "web-asg" } }],
    });

    // Act
    const run = await runFlow(s);

    // Assess: the machine report
    const report = run.reports[0];
    if (!report) throw new Error("no report");
    expect(report.event.actor).toMatch(/assumed-role\/Deployer\/ci$/);
    expect(report.event.launchTemplate).toEqual({ id: "lt-0123456789abcdef0", version: "7" });
    expect(report.results[0]?.origin).toEqual({
      launchTemplateId: "lt-0123456789abcdef0",
      launchTemplateVersion: "7",
      autoScalingGroup: "web-asg",
      imageId: "ami-0abcdef1234567890",
      imageImdsSupport: "unset",
      hopLimit: 2,
    });
    expect(report.accountPosture).toMatchObject({ httpTokens: "no-preference", httpTokensEnforced: false });
    // ...the email text
    const text = plainText(report);
    expect(text).toContain("origin: launch template lt-0123456789abcdef0 v7, Auto Scaling group web-asg");
    expect(text).toContain(
      `--launch-template-id lt-0123456789abcdef0 --source-version 7 --launch-template-data '{"MetadataOptions":{"HttpTokens":"required","HttpEndpoint":"enabled","HttpPutResponseHopLimit":2}}'`,
    );
    expect(text).toContain("aws ec2 modify-image-attribute --region eu-west-1 --image-id ami-0abcdef1234567890");
    expect(text).toContain("aws ec2 modify-instance-metadata-defaults --region eu-west-1 --http-tokens required");
    // ...and Slack
    const chatbot = JSON.parse(chatbotNotification(report)) as {
      content: { description: string; nextSteps: string[] };
    };
    expect(chatbot.content.description).toContain(
      "origin: launch template lt-0123456789abcdef0 v7, Auto Scaling group web-asg",
    );
    expect(chatbot.content.nextSteps[0]).toContain("create-launch-template-version");
  });

  it("asks for no source fix when the instance was launched compliant", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(
      scenario({
        account: { httpTokens: "required" },
        events: [runInstancesEvent([id])],
        instances: [{ id, httpTokens: "required" }],
      }),
    );
    expect(plainText(run.reports[0] ?? ({} as never))).not.toContain("Next steps");
  });
});

describe("account posture", () => {
  it("is reported by the sweep, which sets the default to required when enforceAccountDefault is on", async () => {
    const [id = ""] = instanceIds(1);
    const run = await runFlow(scenario({ sweepAtSeconds: [0], instances: [{ id, httpTokens: "required" }] }), {
      enforceAccountDefault: true,
    });
    expect(run.sim.account.httpTokens).toBe("required");
    expect(run.sim.calls.ModifyInstanceMetadataDefaults).toBe(1);
    const [report] = run.reports;
    expect(report?.results).toEqual([]);
    expect(report?.accountPosture).toMatchObject({ httpTokens: "required", changedByGuard: true });
    expect(plainText(report ?? ({} as never))).toMatch(/set to required by the guard in this run/);
  });

  it("leaves a default managed by a declarative policy alone", async () => {
    const run = await runFlow(
      scenario({ sweepAtSeconds: [0], account: { managedBy: "declarative-policy" }, instances: [] }),
      {
        enforceAccountDefault: true,
      },
    );
    expect(run.sim.calls.ModifyInstanceMetadataDefaults).toBe(0);
    expect(run.reports[0]?.accountPosture?.managedBy).toBe("declarative-policy");
  });
});
