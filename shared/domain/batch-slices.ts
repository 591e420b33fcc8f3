import { NonRetryableInvalidInputError } from "./errors.js";
import type { Batch, BatchInput, InstanceProgress } from "./model.js";

/**
 * The batches themselves live in the event ledger, not in the execution's state, which carries only pointers
 * (`{batchIndex, instances}`): Step Functions fails any state input or output over 256 KiB with
 * States.DataLimitExceeded, which no Catch catches ("Step Functions service quotas"; "Handling errors in Step Functions
 * workflows"), and a work list of a few thousand instances, kept for every slice, exceeds it.
 *
 * Two kinds of item, under the event's ledger key:
 * - `work#<batchIndex>`: the batch's instances as resolved, written by AdmitEvent, or by the state machine's
 *   StoreWorkList after ResolveTargets; the first slice's first task reads it, and Notify reports from it;
 * - `slice#<batchIndex>`: the batch's progress when a slice ran out of time, written by the step that suspended it;
 *   the next slice's first task reads it. The state machine no longer moves it through `States.JsonToString` /
 *   `States.StringToJson`, so no intrinsic ever re-parses a tag value (aws-local-stepfunctions 3.0.0 gets both wrong
 *   for a string holding `"` or `\`).
 *
 * An item is at most 400 KB ("Service, account, and table quotas in Amazon DynamoDB"). A work item is ids and EC2's
 * recorded HttpTokens (under 100 bytes an instance, 50 a batch). A progress item is one batch's state, which Step
 * Functions already holds under 256 KiB, so it always fits.
 */
export interface BatchLedger {
  putWork(
    ledgerKey: string,
    batchIndex: number,
    instances: readonly InstanceProgress[],
    expiresAt: number,
  ): Promise<void>;
  /** Every batch's instances as resolved, by batch index (Notify). */
  loadWork(ledgerKey: string): Promise<Map<number, InstanceProgress[]>>;
  getWork(ledgerKey: string, batchIndex: number): Promise<InstanceProgress[] | undefined>;
  putProgress(ledgerKey: string, batch: Batch, expiresAt: number): Promise<void>;
  getProgress(ledgerKey: string, batchIndex: number): Promise<Batch | undefined>;
}

/** What the state holds of one batch before its first slice: where it is, and how many instances it has. */
export interface BatchPointer {
  batchIndex: number;
  instances: number;
}

/**
 * A pointer that still carries its batch's instances (`inline`): ResolveTargets' output, which StoreWorkList writes to
 * the ledger and replaces by plain pointers, and the degraded form the state keeps when the ledger refuses the work
 * list (the batch then runs from its item, as all batches did before, and its verdicts come back inline).
 */
export interface InlinePointer extends BatchPointer {
  inline: InstanceProgress[];
}

/** The pointers to a work list that still carry it (see InlinePointer). */
export function inlinePointersTo(batches: readonly InstanceProgress[][]): InlinePointer[] {
  return batches.map((inline, batchIndex) => ({ batchIndex, instances: inline.length, inline }));
}

/** The pointers to a work list, in batch order. */
export function pointersTo(batches: readonly (readonly InstanceProgress[])[]): BatchPointer[] {
  return batches.map((instances, batchIndex) => ({ batchIndex, instances: instances.length }));
}

/**
 * The batch a step works on. Inside a slice, steps hand each other the whole batch; the first task of a slice gets
 * a pointer instead (`stored`: the work list for a new batch, the stored progress for a resumed one) and reads the
 * batch from the ledger. `orWork`: FinalizeBatch after a failed resume concludes the batch from its work list.
 */
export async function openBatch(
  input: BatchInput,
  ledger: BatchLedger | undefined,
  options: { orWork?: boolean } = {},
): Promise<Batch> {
  if (!("stored" in input)) return input;
  const { stored, ...pointer } = input;
  const key = pointer.ledgerKey;
  if (!ledger) {
    throw new NonRetryableInvalidInputError(
      `batch ${pointer.batchIndex} is a pointer, and this function has no ledger`,
    );
  }
  if (stored === "slice") {
    const progress = await ledger.getProgress(key, pointer.batchIndex);
    if (progress) {
      // The next slice starts its own clock with the first step it runs, where the pointer says.
      const { resume: _resume, sliceStartedAt: _started, next: _next, waitSeconds: _wait, ...rest } = progress;
      return {
        ...rest,
        ...(pointer.next !== undefined ? { next: pointer.next } : {}),
        ...(pointer.waitSeconds !== undefined ? { waitSeconds: pointer.waitSeconds } : {}),
        ...(pointer.failure ? { failure: pointer.failure } : {}),
      };
    }
    if (!options.orWork) {
      throw new NonRetryableInvalidInputError(
        `the stored progress of batch ${pointer.batchIndex} (${key}, slice#${pointer.batchIndex}) is missing`,
      );
    }
  }
  const instances = await ledger.getWork(key, pointer.batchIndex);
  if (!instances) {
    throw new NonRetryableInvalidInputError(
      `the work list of batch ${pointer.batchIndex} (${key}, work#${pointer.batchIndex}) is missing`,
    );
  }
  return { ...pointer, instances };
}

/** What a suspended batch hands the Route and the Suspended state: where it goes next, and no instances. */
export type SuspendedBatch = Omit<Batch, "instances" | "counts"> & { next: "suspend" };

/**
 * A batch leaving its slice (`next: "suspend"`): its progress goes to the ledger, and the state keeps the pointer
 * the Suspended state reads (`batchIndex`, `resume`). Any other batch goes on unchanged.
 */
export async function leaveSlice(batch: Batch, ledger: BatchLedger | undefined): Promise<Batch | SuspendedBatch> {
  if (batch.next !== "suspend" || !batch.resume) return batch;
  if (!ledger)
    throw new NonRetryableInvalidInputError(`batch ${batch.batchIndex} must suspend, and this function has no ledger`);
  await ledger.putProgress(batch.ledgerKey ?? batch.eventId, batch, batch.resume.expiresAt);
  const { instances: _instances, counts: _counts, ...rest } = batch;
  return { ...rest, next: "suspend" };
}
