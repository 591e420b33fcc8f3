import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { plainText } from "../../shared/report/report.js";
import { ACCOUNT, allResults, REGION, runInstancesEvent, scenario, startInstancesEvent, verdictOf } from "./helpers.js";

/** A fixture re-addressed to the simulated account and region, as that account's EventBridge would deliver it. */
function fixtureInSimAccount(name: string): unknown {
  const text = readFileSync(new URL(`../fixtures/events/${name}`, import.meta.url), "utf8")
    .replaceAll("123456789012", ACCOUNT)
    .replaceAll('"us-east-1"', `"${REGION}"`);
  return JSON.parse(text);
}

describe("StartInstances: a stopped instance started again", () => {
  it("is enforced, proven and given a verdict once it runs", async () => {
    // Prepare: stopped with IMDSv1 allowed and no recent IMDSv1 use; someone starts it.
    const id = "i-0d1e2f3a4b5c60021";
    const s = scenario({
      settings: { watchRejectedSeconds: 0 },
      events: [startInstancesEvent([id])],
      instances: [{ id, state: "stopped", httpTokens: "optional", ageHours: 500 }],
    });

    // Act
    const run = await runFlow(s);

    // Assess
    expect(run.reports).toHaveLength(1);
    expect(run.reports[0]?.trigger).toBe("start");
    expect(verdictOf(run, id)).toBe("pass");
    expect(run.sim.instance(id)?.httpTokens).toBe("required");
    // The safety gate read the started instance's IMDSv1 history before changing it.
    expect(run.sim.calls.GetMetricData).toBe(1);
  });

  it("holds a started instance whose software used IMDSv1 (the safety gate applies)", async () => {
    const id = "i-0d1e2f3a4b5c60022";
    const run = await runFlow(
      scenario({
        events: [startInstancesEvent([id])],
        instances: [{ id, state: "stopped", ageHours: 48, imdsV1CallsPerHour: 10 }],
      }),
    );
    expect(verdictOf(run, id)).toBe("held");
    expect(run.sim.calls.ModifyInstanceMetadataOptions).toBe(0);
  });

  it("runs the real-shaped StartInstances fixture through the flow: one verdict per started instance", async () => {
    const run = await runFlow(
      scenario({
        settings: { watchRejectedSeconds: 0 },
        events: [fixtureInSimAccount("start-instances.json")],
        instances: [
          { id: "i-0d1e2f3a4b5c60021", state: "stopped", ageHours: 100 },
          { id: "i-0d1e2f3a4b5c60022", state: "stopped", ageHours: 100 },
        ],
      }),
    );
    expect(allResults(run).map((r) => [r.instanceId, r.verdict])).toEqual([
      ["i-0d1e2f3a4b5c60021", "pass"],
      ["i-0d1e2f3a4b5c60022", "pass"],
    ]);
  });
});

describe("launches by services", () => {
  it("reports a 2016-era Root + invokedBy autoscaling record as Auto Scaling's launch", async () => {
    const id = "i-0a1b2c3d";
    const run = await runFlow(
      scenario({
        settings: { watchRejectedSeconds: 0 },
        events: [fixtureInSimAccount("run-instances-root-invoked-by-autoscaling-2016.json")],
        instances: [{ id }],
      }),
    );
    const [report] = run.reports;
    expect(verdictOf(run, id)).toBe("pass");
    const text = report ? plainText(report) : "";
    expect(text).toContain(`Actor:   Auto Scaling (autoscaling.amazonaws.com), on behalf of account ${ACCOUNT}`);
    expect(text).not.toContain(":root");
  });

  it("checks every instance an instant CreateFleet launched", async () => {
    const run = await runFlow(
      scenario({
        settings: { watchRejectedSeconds: 0 },
        events: [fixtureInSimAccount("create-fleet-instant.json")],
        instances: [{ id: "i-0e1f2a3b4c5d60031" }, { id: "i-0e1f2a3b4c5d60032" }],
      }),
    );
    expect(run.reports).toHaveLength(1);
    expect(allResults(run).map((r) => r.verdict)).toEqual(["pass", "pass"]);
  });

  it("reports a fleet-invoked RunInstances record without ids as an error, never dropping it", async () => {
    const run = await runFlow(
      scenario({ events: [fixtureInSimAccount("run-instances-by-ec2fleet-without-response.json")], instances: [] }),
    );
    expect(run.reports).toHaveLength(1);
    expect(run.reports[0]?.verdict).toBe("error");
    expect(run.reports[0]?.problem).toContain("made by EC2 Fleet");
  });
});

describe("fixes at the platform's own source", () => {
  it("tells an EKS node group's owner to roll out a launch template version, not to repoint EKS's Auto Scaling group", async () => {
    const id = "i-0e1f2a3b4c5d60041";
    const run = await runFlow(
      scenario({
        settings: { watchRejectedSeconds: 0 },
        events: [runInstancesEvent([id])],
        instances: [
          {
            id,
            tags: {
              "eks:cluster-name": "prod",
              "eks:nodegroup-name": "general",
              "aws:autoscaling:groupName": "eks-general-1ac6a1c2",
              "aws:ec2launchtemplate:id": "lt-0123456789abcdef0",
              "aws:ec2launchtemplate:version": "4",
            },
          },
        ],
      }),
    );
    const [report] = run.reports;
    const text = report ? plainText(report) : "";
    expect(verdictOf(run, id)).toBe("pass");
    expect(text).toContain("origin: EKS node group general of cluster prod");
    expect(text).toContain(
      "aws eks update-nodegroup-version --region eu-west-1 --cluster-name prod --nodegroup-name general --launch-template id=lt-0123456789abcdef0,version=<new version>",
    );
    expect(text).not.toContain("point Auto Scaling group");
  });
});
