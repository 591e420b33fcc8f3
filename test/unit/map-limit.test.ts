import { describe, expect, it } from "vitest";
import { mapLimit } from "../../shared/runtime/map-limit.js";

/** A promise and the functions that settle it, so a test decides when each call finishes. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve: (value: T) => void = () => {};
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("mapLimit", () => {
  it("returns the results in the items' order, whatever order they finish in", async () => {
    // Prepare: the later an item, the sooner it finishes.
    const items = [5, 4, 3, 2, 1];

    // Act
    const results = await mapLimit(items, 3, async (n) => {
      await new Promise((resolve) => setTimeout(resolve, n * 2));
      return `item ${n}`;
    });

    // Assess
    expect(results).toEqual(["item 5", "item 4", "item 3", "item 2", "item 1"]);
  });

  it("never has more than `limit` calls in flight, and keeps `limit` busy while items remain", async () => {
    // Prepare
    let inFlight = 0;
    let most = 0;
    const items = Array.from({ length: 10 }, (_, i) => i);

    // Act
    const results = await mapLimit(items, 3, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await tick();
      inFlight--;
      return n * 10;
    });

    // Assess
    expect(most).toBe(3);
    expect(inFlight).toBe(0);
    expect(results).toEqual(items.map((n) => n * 10));
  });

  it("runs fewer workers than `limit` when there are fewer items, and none for no items", async () => {
    // Prepare
    let calls = 0;

    // Act
    const none = await mapLimit([], 4, async () => ++calls);
    const two = await mapLimit(["a", "b"], 4, async (s) => `${s}${++calls}`);

    // Assess
    expect(none).toEqual([]);
    expect(two).toEqual(["a1", "b2"]);
  });

  it("rejects with the first error; the calls in flight finish and no new item is taken", async () => {
    // Prepare
    const gates = Array.from({ length: 5 }, () => deferred<string>());
    const started: number[] = [];
    const run = mapLimit([0, 1, 2, 3, 4], 2, (n) => {
      started.push(n);
      return (gates[n] as (typeof gates)[number]).promise;
    });
    await tick();

    // Act: item 0 fails while item 1 is still in flight; item 1 then finishes.
    gates[0]?.reject(new Error("credentials expired"));
    await expect(run).rejects.toThrow("credentials expired");
    gates[1]?.resolve("one");
    await tick();

    // Assess
    expect(started).toEqual([0, 1]);
  });
});
