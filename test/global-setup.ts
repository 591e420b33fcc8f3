import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packagedTemplate } from "../scripts/packaged-template.js";

/**
 * Runs once around the whole test run, in vitest's main process, before any test file starts:
 * - Gives the run a temporary directory of its own and removes it at the end. Every file cleans up after itself, but
 *   a fork ended mid-test (a timeout, a teardown while a probe or a packaging child still runs) cannot; this way a test
 *   run still leaves nothing in the caller's TMPDIR. The forks start after this and inherit it.
 * - Packages the templates test/iam.test.ts reads, once (scripts/packaged-template.ts caches them by their inputs;
 *   `npm run lint:stack` fills the same cache). Without it, on a fresh clone, that file's `osls package` ran in the
 *   repository at the same time as the template tests' own, and one of them never finished.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const callersTmpdir = process.env.TMPDIR;
  const runTmpdir = await mkdtemp(join(tmpdir(), "imdsv2-guard-test-run-"));
  process.env.TMPDIR = runTmpdir;
  await packagedTemplate([]);
  await packagedTemplate(["organizationId=o-a1b2c3d4e5"]);
  return async () => {
    if (callersTmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = callersTmpdir;
    await rm(runTmpdir, { recursive: true, force: true });
  };
}
