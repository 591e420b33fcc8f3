import { describe, expect, it } from "vitest";
import { routeAfter, withInstances } from "../../shared/domain/batch.js";
import type { InstanceProgress, Stage } from "../../shared/domain/model.js";
import { batchFactory, ID_A, ID_B, isoAfter } from "./support.js";

const batchOf = batchFactory({ eventId: "evt-route" });
const NOW = new Date("2026-11-28T10:00:00.000Z");

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
    const routed = routeAfter("check-applied", batch, NOW);

    // Assess
    expect(routed).toMatchObject({ next: "check-managed", waitSeconds: 0 });
  });

  it("never reads a probe in the round that sent it: it waits, then checks", () => {
    const routed = routeAfter("send-probe", returned(at(ID_A, "await-probe")), NOW);

    expect(routed).toMatchObject({ next: "check-probe", waitSeconds: 3 });
  });

  it("starts the next round, after the steps' pause, with the first step that has work", () => {
    const routed = routeAfter("check-probe", returned(at(ID_A, "await-applied"), at(ID_B, "await-probe")), NOW);

    expect(routed).toMatchObject({ next: "check-applied", waitSeconds: 3 });
  });

  it("puts Enforce first when an instance is still to be enforced, and waits after Enforce", () => {
    expect(routeAfter("enforce", returned(at(ID_A, "enforce"), at(ID_B, "await-applied")), NOW)).toMatchObject({
      next: "enforce",
      waitSeconds: 5,
    });
    expect(routeAfter("enforce", returned(at(ID_A, "await-applied")), NOW)).toMatchObject({
      next: "check-applied",
      waitSeconds: 10,
    });
  });

  it("finalizes when every instance has its verdict", () => {
    const done = { ...at(ID_A, "done") };

    expect(routeAfter("check-probe", returned(done), NOW)).toMatchObject({ next: "finalize", waitSeconds: 0 });
  });

  it("leaves the slice when the next step would start past its budget, carrying where it was going", () => {
    // Prepare: the slice started 195 s ago, and the next round is 10 s away.
    const batch = { ...returned(at(ID_A, "await-applied")), sliceStartedAt: isoAfter(NOW, -195) };

    // Act
    const routed = routeAfter("check-applied", batch, NOW);

    // Assess
    expect(routed).toMatchObject({
      next: "suspend",
      resume: { next: "check-applied", waitSeconds: 10, sliceStartedAt: null },
    });
    expect(routeAfter("check-applied", { ...batch, sliceStartedAt: isoAfter(NOW, -190) }, NOW)).toMatchObject({
      next: "check-applied",
      waitSeconds: 10,
    });
  });

  it("starts the slice's clock with the first step a slice runs", () => {
    const routed = routeAfter("enforce", returned(at(ID_A, "await-applied")), NOW);

    expect(routed.sliceStartedAt).toBe(NOW.toISOString());
  });

  describe("the pause before a round that waits for changes to apply", () => {
    /** Enforced `enforcedSecondsAgo` ago, and (when given) observed applied `appliedAfter` seconds after that. */
    function enforced(instanceId: string, enforcedSecondsAgo: number, appliedAfter?: number): InstanceProgress {
      const enforcedAt = isoAfter(NOW, -enforcedSecondsAgo);
      return appliedAfter === undefined
        ? { ...at(instanceId, "await-applied"), enforcedAt }
        : {
            ...at(instanceId, "await-managed"),
            enforcedAt,
            appliedAt: isoAfter(NOW, appliedAfter - enforcedSecondsAgo),
          };
    }

    it("reads again when the batch's own quickest apply says the pending change is due, not a whole poll later", () => {
      // Prepare: A took 20 s to show as applied; B was enforced 19 s ago, so it is due in 1 s (the poll is 10 s).
      const batch = returned({ ...enforced(ID_A, 40, 20), stage: "done" }, enforced(ID_B, 19));

      // Act
      const routed = routeAfter("check-applied", batch, NOW);

      // Assess
      expect(routed).toMatchObject({ next: "check-applied", waitSeconds: 1 });
    });

    it("keeps the plain poll with nothing seen yet, with the change already overdue, or while backing off", () => {
      // Nothing of this batch has applied yet: no delay to go by.
      expect(routeAfter("check-applied", returned(enforced(ID_A, 5)), NOW)).toMatchObject({ waitSeconds: 10 });
      // B is past the quickest delay (EC2 is slower for it): reading more often than the poll would only add reads.
      const overdue = returned({ ...enforced(ID_A, 60, 20), stage: "done" }, enforced(ID_B, 30));
      expect(routeAfter("check-applied", overdue, NOW)).toMatchObject({ waitSeconds: 10 });
      // Due in 4 s, but the batch was just refused: the backoff decides.
      const backingOff = {
        ...returned({ ...enforced(ID_A, 40, 20), stage: "done" }, enforced(ID_B, 16)),
        throttledRounds: 1,
      };
      expect(routeAfter("check-applied", backingOff, NOW).waitSeconds).toBe(backingOff.pollSeconds);
    });

    it("never waits longer than the poll for a change due later", () => {
      const batch = returned({ ...enforced(ID_A, 60, 40), stage: "done" }, enforced(ID_B, 2));

      expect(routeAfter("check-applied", batch, NOW)).toMatchObject({ waitSeconds: 10 });
    });
  });
});
