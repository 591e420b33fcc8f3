import { describe, expect, it } from "vitest";
import { leaveSlice, openBatch } from "../../shared/domain/batch-slices.js";
import { NonRetryableInvalidInputError } from "../../shared/domain/errors.js";
import { batchInputSchema } from "../../shared/domain/model.js";
import { batchFactory, enforcing, memoryBatchLedger } from "./support.js";

const batchOf = batchFactory({ eventId: "evt-s" });
const ID_A = "i-0a000000000000001";
const ID_B = "i-0a000000000000002";
/** A tag value as hostile as EC2 allows, carried in a note across a slice boundary. */
const HOSTILE = "q\"uo'te back\\slash \u0007 é 你好";

describe("a batch between slices (shared/domain/batch-slices.ts)", () => {
  it("opens a new batch from its work list in the ledger", async () => {
    // Prepare
    const { ledger } = memoryBatchLedger();
    const batch = batchOf([enforcing(ID_A), enforcing(ID_B)]);
    await ledger.putWork("key-1", 3, batch.instances, 1796000000);
    const { instances: _instances, counts: _counts, ...place } = batch;
    const pointer = batchInputSchema.parse({ ...place, ledgerKey: "key-1", batchIndex: 3, stored: "work" });

    // Act
    const opened = await openBatch(pointer, ledger);

    // Assess
    expect(opened.instances.map((i) => i.instanceId)).toEqual([ID_A, ID_B]);
    expect(opened.batchIndex).toBe(3);
    expect("stored" in opened).toBe(false);
  });

  it("stores a suspended batch's progress and leaves only its place, which the next slice opens unchanged", async () => {
    // Prepare
    const { ledger } = memoryBatchLedger();
    const batch = {
      ...batchOf([enforcing(ID_A, { stage: "await-managed", notes: [HOSTILE] })]),
      ledgerKey: "key-2",
      next: "suspend" as const,
      sliceStartedAt: "2026-11-28T10:00:00.000Z",
      resume: { next: "check-managed" as const, waitSeconds: 15, sliceStartedAt: null, expiresAt: 1796000000 },
    };

    // Act
    const left = await leaveSlice(batch, ledger);
    const pointer = batchInputSchema.parse({
      ...left,
      stored: "slice",
      next: batch.resume.next,
      waitSeconds: batch.resume.waitSeconds,
    });
    const reopened = await openBatch(pointer, ledger);

    // Assess: the state keeps no instances; the next slice has them back, byte for byte, on its own clock.
    expect("instances" in left).toBe(false);
    expect(left).toMatchObject({ batchIndex: batch.batchIndex, next: "suspend", resume: batch.resume });
    expect(reopened.instances).toEqual(batch.instances);
    expect(reopened.instances[0]?.notes).toEqual([HOSTILE]);
    expect(reopened).toMatchObject({ next: "check-managed", waitSeconds: 15 });
    expect(reopened.sliceStartedAt).toBeUndefined();
    expect(reopened.resume).toBeUndefined();
  });

  it("refuses a pointer to progress that is not there, and FinalizeBatch falls back to the work list", async () => {
    // Prepare
    const { ledger } = memoryBatchLedger();
    const batch = batchOf([enforcing(ID_A)]);
    await ledger.putWork("key-3", batch.batchIndex, batch.instances, 1796000000);
    const { instances: _instances, counts: _counts, ...place } = batch;
    const pointer = batchInputSchema.parse({
      ...place,
      ledgerKey: "key-3",
      stored: "slice",
      failure: { Error: "NonRetryableInvalidInputError", Cause: "gone" },
    });

    // Act
    const opened = openBatch(pointer, ledger);
    const concluded = await openBatch(pointer, ledger, { orWork: true });

    // Assess
    await expect(opened).rejects.toBeInstanceOf(NonRetryableInvalidInputError);
    expect(concluded.instances.map((i) => i.instanceId)).toEqual([ID_A]);
    expect(concluded.failure?.Cause).toBe("gone");
  });

  it("goes on unchanged when the slice is not over", async () => {
    const { ledger, progress } = memoryBatchLedger();
    const batch = { ...batchOf([enforcing(ID_A)]), next: "check-applied" as const };
    expect(await leaveSlice(batch, ledger)).toBe(batch);
    expect(progress.size).toBe(0);
  });
});
