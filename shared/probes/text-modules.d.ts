// Probe scripts ship inside the bundles as text (esbuild's `text` loader, and the same in vitest): the script
// that is reviewed in the repo is byte for byte the script that runs on the instance.
declare module "*.sh" {
  const text: string;
  export default text;
}
declare module "*.ps1" {
  const text: string;
  export default text;
}
