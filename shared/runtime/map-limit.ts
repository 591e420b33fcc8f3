/**
 * Runs `fn` over `items`, at most `limit` at a time; results keep the items' order. A bounded fan-out, so that one
 * account's or region's calls never starve another's budget. The first rejection rejects the whole: the calls in
 * flight finish and no new item is taken, so a failure that concerns every item is not repeated over the rest.
 * A caller that wants a row per failure catches inside `fn`.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
