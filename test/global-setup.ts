import { packagedTemplate } from "../scripts/packaged-template.js";

/**
 * Packages, once and before any test file starts, the templates test/iam.test.ts reads (scripts/packaged-template.ts
 * caches them by their inputs; `npm run lint:stack` fills the same cache). Without it, on a fresh clone, that file's
 * `osls package` ran in the repository at the same time as the template tests' own, and one of them never finished.
 */
export default async function packageTemplatesOnce(): Promise<void> {
  await packagedTemplate([]);
  await packagedTemplate(["organizationId=o-a1b2c3d4e5"]);
}
