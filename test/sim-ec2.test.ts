import {
  DescribeInstancesCommand,
  EC2Client,
  type Instance,
  ModifyInstanceMetadataOptionsCommand,
} from "@aws-sdk/client-ec2";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseScenario } from "../local/runner/scenario.js";
import { SimAccount, type SimFaults } from "../local/sim/sim-account.js";

/**
 * The contract table of local/sim/sim-ec2.ts, provoked through the real EC2 client ("Eventual consistency in the
 * Amazon EC2 API"; "Modify instance metadata options for existing instances").
 */

const T0 = Date.parse("2026-11-28T09:00:00Z");
const ID = "i-0a1b2c3d4e5f60001";
const ec2 = new EC2Client({ region: "eu-west-1" });
let sim: SimAccount | undefined;

function account(instance: Record<string, unknown> = {}, faults: SimFaults = {}): SimAccount {
  const scenario = parseScenario({ name: "ec2", instances: [{ id: ID, ...instance }] }, "ec2");
  sim = new SimAccount(scenario.instances, faults);
  sim.install();
  return sim;
}

async function described(): Promise<Instance | undefined> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [ID] }));
  return out.Reservations?.[0]?.Instances?.[0];
}

const at = (seconds: number) => vi.setSystemTime(T0 + seconds * 1000);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  at(0);
});
afterEach(() => {
  sim?.restore();
  sim = undefined;
  vi.useRealTimers();
});

describe("the simulated EC2: eventual consistency after a modify", () => {
  it("answers the modify with the new options, while describes show the old ones for the drawn lag, then the new", async () => {
    // Prepare
    account({}, { weather: { seed: 7, describeLagMinSeconds: 5, describeLagMaxSeconds: 5 } });

    // Act
    const answer = await ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: ID, HttpTokens: "required" }));
    const right = await described();
    at(4.9);
    const stillStale = await described();
    at(5);
    const caughtUp = await described();

    // Assess
    expect(answer.InstanceMetadataOptions).toMatchObject({ HttpTokens: "required", State: "pending" });
    expect(right?.MetadataOptions).toMatchObject({ HttpTokens: "optional", State: "applied" });
    expect(stillStale?.MetadataOptions?.HttpTokens).toBe("optional");
    expect(caughtUp?.MetadataOptions).toMatchObject({ HttpTokens: "required", State: "pending" });
  });

  it("lags by default: the default weather never shows a modify to the very next describe", async () => {
    // Prepare
    account();

    // Act
    await ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: ID, HttpTokens: "required" }));

    // Assess
    expect((await described())?.MetadataOptions?.HttpTokens).toBe("optional");
    at(30);
    expect((await described())?.MetadataOptions).toMatchObject({ HttpTokens: "required", State: "applied" });
  });

  it("filters on metadata-options.http-tokens as the describe shows them, lag included", async () => {
    // Prepare
    account({}, { weather: { describeLagMinSeconds: 3, describeLagMaxSeconds: 3 } });
    await ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: ID, HttpTokens: "required" }));
    const optional = () =>
      ec2.send(
        new DescribeInstancesCommand({
          Filters: [{ Name: "metadata-options.http-tokens", Values: ["optional"] }],
          MaxResults: 5,
        }),
      );

    // Act
    const during = await optional();
    at(3);
    const after = await optional();

    // Assess
    expect(during.Reservations).toHaveLength(1);
    expect(after.Reservations).toHaveLength(0);
  });

  it("draws the same lags from the same seed, and other lags from another", async () => {
    const lags = async (seed: number) => {
      at(0);
      const s = account({}, { weather: { seed, describeLagMinSeconds: 0, describeLagMaxSeconds: 60 } });
      const drawn: number[] = [];
      for (let i = 0; i < 3; i++) {
        at(i * 100);
        await ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: ID, HttpTokens: "required" }));
        drawn.push((s.instance(ID)?.stale?.until ?? T0 + i * 100_000) - (T0 + i * 100_000));
      }
      s.restore();
      return drawn;
    };
    const [a, b, c] = [await lags(1), await lags(1), await lags(2)];
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe("the simulated EC2: a stopped instance", () => {
  it.each(["stopped", "stopping"] as const)(
    "accepts the modify on a %s instance, keeps it pending, and applies it when the instance starts",
    async (state) => {
      // Prepare
      const s = account(
        { state, applyDelaySeconds: 5 },
        { weather: { describeLagMinSeconds: 0, describeLagMaxSeconds: 0 } },
      );

      // Act
      await ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: ID, HttpTokens: "required" }));
      at(600);
      const whileStopped = await described();
      const imdsWhileStopped = s.instance(ID)?.imdsTokens;
      s.startInstance(ID);
      const started = await described();

      // Assess
      expect(whileStopped?.MetadataOptions).toMatchObject({ HttpTokens: "required", State: "pending" });
      expect(imdsWhileStopped).toBe("optional");
      expect(started?.MetadataOptions).toMatchObject({ HttpTokens: "required", State: "applied" });
      expect(s.instance(ID)?.imdsTokens).toBe("required");
    },
  );

  it.each(["shutting-down", "terminated"] as const)("refuses the modify on a %s instance", async (state) => {
    account({ state });
    await expect(
      ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: ID, HttpTokens: "required" })),
    ).rejects.toMatchObject({ name: "IncorrectInstanceState" });
  });
});
