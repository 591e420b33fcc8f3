#!/usr/bin/env node
// `imdsv2-guard`: runs the committed bundle of audit/cli.ts (`npm run build:cli` writes it; a test checks that it
// equals a fresh build). A bundle because the sources are TypeScript: with `npm ci --omit=dev` there is no esbuild
// or tsx to compile them, and the bundle's only imports are the package's production dependencies and node:*.

import { main } from "./imdsv2-guard-cli.mjs";

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
