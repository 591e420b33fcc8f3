import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseScenario } from "../local/runner/scenario.js";
import { SimAccount, type SimFaults } from "../local/sim/sim-account.js";
import { STDOUT_CHARACTERS } from "../local/sim/sim-ssm.js";

/**
 * The contract table of local/sim/sim-ssm.ts, provoked through the real SSM client ("Understanding command
 * statuses"; "SendCommand"; "GetCommandInvocation").
 */

const T0 = Date.parse("2026-11-28T09:00:00Z");
const ID = "i-0a1b2c3d4e5f60001";
const ssm = new SSMClient({ region: "eu-west-1" });
let sim: SimAccount | undefined;

function account(instances: Record<string, unknown>[], faults: SimFaults = {}): SimAccount {
  const scenario = parseScenario({ name: "ssm", instances }, "ssm");
  sim = new SimAccount(scenario.instances, faults);
  sim.install();
  return sim;
}

const at = (seconds: number) => vi.setSystemTime(T0 + seconds * 1000);
const send = (ids: string[], commands = ["echo hi"]) =>
  ssm.send(new SendCommandCommand({ DocumentName: "AWS-RunShellScript", InstanceIds: ids, Parameters: { commands } }));
const invocation = (commandId: string | undefined, instanceId = ID) =>
  ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }));

/** Polls every second from `from` to `to` (simulated seconds) and returns the statuses seen, in order, once each. */
async function statusesSeen(commandId: string | undefined, from: number, to: number): Promise<string[]> {
  const seen: string[] = [];
  for (let t = from; t <= to; t++) {
    at(t);
    let status: string;
    try {
      const out = await invocation(commandId);
      status = `${out.Status}/${out.StatusDetails}`;
    } catch (error) {
      status = (error as Error).name;
    }
    if (seen.at(-1) !== status) seen.push(status);
  }
  return seen;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  at(0);
});
afterEach(() => {
  sim?.restore();
  sim = undefined;
  vi.useRealTimers();
});

describe("the simulated Run Command: SendCommand", () => {
  it("refuses more than 50 instance ids with AWS's constraint message, and accepts 50", async () => {
    // Prepare
    const ids = Array.from({ length: 51 }, (_, i) => `i-0a1b2c3d4e5f6${String(i).padStart(4, "0")}`);
    account(ids.map((id) => ({ id })));
    at(60);

    // Act and Assess (the refusal is awaited before the next call, so it is never an unhandled rejection)
    await expect(send(ids)).rejects.toMatchObject({
      name: "ValidationException",
      message: expect.stringContaining("Member must have length less than or equal to 50"),
    });
    const fifty = await send(ids.slice(0, 50), ["true"]);
    expect(fifty.Command?.CommandId).toBeDefined();
  });

  it.each(["stopped", "stopping"] as const)(
    "accepts a %s instance whose agent registered: the invocation waits as Delayed, then ends DeliveryTimedOut",
    async (state) => {
      // Prepare: registered while it ran, then stopped.
      account([{ id: ID, state }]);
      sim?.instance(ID); // registered 30 s after launch
      at(60);

      // Act
      const sent = await ssm.send(
        new SendCommandCommand({
          DocumentName: "AWS-RunShellScript",
          InstanceIds: [ID],
          Parameters: { commands: ["true"] },
          TimeoutSeconds: 30,
        }),
      );

      // Assess
      expect(await statusesSeen(sent.Command?.CommandId, 60, 100)).toEqual([
        "InvocationDoesNotExist",
        "Delayed/Delayed",
        "TimedOut/DeliveryTimedOut",
      ]);
    },
  );

  it.each(["shutting-down", "terminated"] as const)("refuses a %s instance with InvalidInstanceId", async (state) => {
    account([{ id: ID, state }]);
    at(60);
    await expect(send([ID])).rejects.toMatchObject({ name: "InvalidInstanceId" });
  });

  it("refuses an instance whose agent never registered with InvalidInstanceId", async () => {
    account([{ id: ID, ssm: "none" }]);
    at(600);
    await expect(send([ID])).rejects.toMatchObject({ name: "InvalidInstanceId" });
  });
});

describe("the simulated Run Command: GetCommandInvocation", () => {
  it("answers InvocationDoesNotExist for a while, then Pending, InProgress and Success with the output", async () => {
    // Prepare
    account([{ id: ID }]);
    at(60);

    // Act
    const sent = await send([ID], ["echo probed"]);
    const seen = await statusesSeen(sent.Command?.CommandId, 60, 70);
    const done = await invocation(sent.Command?.CommandId);

    // Assess
    expect(seen).toEqual(["InvocationDoesNotExist", "Pending/Pending", "InProgress/InProgress", "Success/Success"]);
    expect(done).toMatchObject({ ResponseCode: 0, StandardOutputContent: "probed\n" });
  });

  it("returns only the first 24,000 characters of standard output", async () => {
    // Prepare
    account([{ id: ID }]);
    at(60);

    // Act
    const sent = await send([ID], ["head -c 30000 /dev/zero | tr '\\0' x"]);
    at(120);
    const done = await invocation(sent.Command?.CommandId);

    // Assess
    expect(done.Status).toBe("Success");
    expect(done.StandardOutputContent).toHaveLength(STDOUT_CHARACTERS);
    expect(STDOUT_CHARACTERS).toBe(24_000);
  });

  it("waits as Delayed first when the weather says so", async () => {
    // Prepare
    account([{ id: ID }], { weather: { ssmDelayedProbability: 1, ssmDelayedMaxSeconds: 5 } });
    at(60);

    // Act
    const sent = await send([ID], ["true"]);
    const seen = await statusesSeen(sent.Command?.CommandId, 60, 80);

    // Assess
    expect(seen).toEqual(["InvocationDoesNotExist", "Delayed/Delayed", "InProgress/InProgress", "Success/Success"]);
  });

  it.each([
    ["failed", "Failed", "Failed"],
    ["timed-out", "TimedOut", "DeliveryTimedOut"],
    ["execution-timed-out", "TimedOut", "ExecutionTimedOut"],
    ["cancelled", "Cancelled", "Cancelled"],
    ["terminated", "Failed", "Terminated"],
    ["undeliverable", "Failed", "Undeliverable"],
    ["invalid-platform", "Failed", "InvalidPlatform"],
    ["access-denied", "Failed", "AccessDenied"],
  ])("ends a %s invocation with Status %s and StatusDetails %s, and no output", async (runCommand, status, details) => {
    // Prepare
    account([{ id: ID, runCommand }]);
    at(60);

    // Act
    const sent = await send([ID], ["true"]);
    at(200);
    const done = await invocation(sent.Command?.CommandId);

    // Assess
    expect(done).toMatchObject({ Status: status, StatusDetails: details, StandardOutputContent: "" });
  });
});
