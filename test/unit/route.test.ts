import { describe, expect, it } from "vitest";
import { routeAfter, withInstances } from "../../shared/domain/batch.js";
import type { InstanceProgress, Stage } from "../../shared/domain/model.js";
import { batchFactory, ID_A, ID_B } from "./support.js";

const batchOf = batchFactory({ eventId: "evt-route" });

function at(instanceId: string, stage: Stage): InstanceProgress {
  return { instanceId, stage, notes: [] };
}

/** The batch as a step hands it back: counts and pause recomputed. */
function returned(...instances: InstanceProgress[]) {
  const batch = batchOf(instances);
  return withInstances(batch, batch.instances);
}

describe("routeAfter: where the batch goes after a step, as data for the round's one Choice", () => {
  it("goes on at once, within the round, to the next step with work", () => {
    // Prepare: CheckApplied just moved A on; B still waits for SSM.
    const batch = returned(at(ID_A, "await-managed"), at(ID_B, "await-applied"));

    // Act
    const routed = routeAfter("check-applied", batch);

    // Assess
    expect(routed).toMatchObject({ next: "check-managed", waitSeconds: 0 });
  });

  it("never reads a probe in the round that sent it: it waits, then checks", () => {
    const routed = routeAfter("send-probe", returned(at(ID_A, "await-probe")));

    expect(routed).toMatchObject({ next: "check-probe", waitSeconds: 3 });
  });

  it("starts the next round, after the steps' pause, with the first step that has work", () => {
    const routed = routeAfter("check-probe", returned(at(ID_A, "await-applied"), at(ID_B, "await-probe")));

    expect(routed).toMatchObject({ next: "check-applied", waitSeconds: 3 });
  });

  it("puts Enforce first when an instance is still to be enforced, and waits after Enforce", () => {
    expect(routeAfter("enforce", returned(at(ID_A, "enforce"), at(ID_B, "await-applied")))).toMatchObject({
      next: "enforce",
      waitSeconds: 5,
    });
    expect(routeAfter("enforce", returned(at(ID_A, "await-applied")))).toMatchObject({
      next: "check-applied",
      waitSeconds: 10,
    });
  });

  it("finalizes when every instance has its verdict", () => {
    const done = { ...at(ID_A, "done") };

    expect(routeAfter("check-probe", returned(done))).toMatchObject({ next: "finalize", waitSeconds: 0 });
  });
});
