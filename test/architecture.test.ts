import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The layout is the architecture (CONTRIBUTING.md, "Where the code lives"), so it is checked here rather than kept by
 * convention: imports flow from the steps down to the domain, never back, and nothing deployed reaches the simulator.
 */

const ROOMS = ["steps", "domain", "report", "aws", "runtime", "probes"] as const;
type Room = (typeof ROOMS)[number];

/** Which rooms of `shared/` each room may import. A room may always import itself, except `steps`. */
const MAY_IMPORT: Record<Room, readonly Room[]> = {
  // Each step's core stands alone: a step that needs another's logic means that logic belongs in the domain.
  steps: ["domain", "report", "aws", "runtime", "probes"],
  report: ["domain", "report"],
  // The probe documents' reader compares what an account holds with this build's probe (shared/probes/).
  aws: ["domain", "aws", "probes"],
  runtime: ["domain", "runtime"],
  domain: ["domain"],
  // The probe scripts, and the SSM documents built from them at build time (one source).
  probes: ["probes"],
};

/**
 * The one step that composes others: the intake runs, in one invocation, the steps that used to be the first states
 * of every execution (resolve, claim, assess), so that a duplicate or a second signal costs no state transition.
 */
const COMPOSES_STEPS: Record<string, readonly string[]> = {
  [join("shared", "steps", "admit-event.ts")]: [
    join("shared", "steps", "resolve-targets.ts"),
    join("shared", "steps", "claim-instances.ts"),
  ],
};

/** Packages each room may import; the domain is plain data and rules, so it needs no AWS SDK and no Lambda glue. */
const PACKAGES_ALLOWED: Record<Room, RegExp> = {
  steps: /^(node:|zod$|@aws-sdk\/|@aws-lambda-powertools\/logger$)/,
  report: /^(node:|zod$)/,
  aws: /^(node:|zod$|@aws-sdk\/)/,
  runtime: /^(node:|zod$|@aws-lambda-powertools\/|@middy\/|aws-lambda$)/,
  domain: /^(node:|zod$)/,
  probes: /^node:crypto$/,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs)$/.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Every module specifier a file imports or re-exports, statically or dynamically. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;"']*?\bfrom\s+["']([^"']+)["']/gms),
    ...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ];
  return found.map((m) => m[1] ?? "");
}

/** A relative specifier as a repository path (`.js` written for `.ts`, as NodeNext and esbuild resolve it). */
function resolved(from: string, specifier: string): string {
  return normalize(join(dirname(from), specifier)).replace(/\.js$/, ".ts");
}

function roomOf(path: string): Room | undefined {
  const [top, room] = relative(".", path).split("/");
  return top === "shared" && (ROOMS as readonly string[]).includes(room ?? "") ? (room as Room) : undefined;
}

const SHARED = sourceFiles("shared");

describe("the layout", () => {
  it("puts every file of shared/ in a room", () => {
    expect(SHARED.filter((f) => roomOf(f) === undefined)).toEqual([]);
  });

  it("gives every Lambda step its core in shared/steps/, named after its functions/<step>", () => {
    const steps = readdirSync("functions");
    const missing = steps.filter((step) => !SHARED.includes(join("shared", "steps", `${step}.ts`)));
    expect(missing).toEqual([]);
    for (const step of steps) {
      const imports = specifiers(join("functions", step, "handler.ts")).map((s) =>
        resolved(join("functions", step, "handler.ts"), s),
      );
      expect(imports, `functions/${step}/handler.ts`).toContain(join("shared", "steps", `${step}.ts`));
    }
  });

  it("lets imports flow one way between the rooms of shared/", () => {
    const violations: string[] = [];
    for (const file of SHARED) {
      const room = roomOf(file) as Room;
      for (const specifier of specifiers(file)) {
        if (specifier.startsWith(".")) {
          const target = resolved(file, specifier);
          const targetRoom = roomOf(target);
          const allowed =
            (targetRoom !== undefined && MAY_IMPORT[room].includes(targetRoom)) ||
            (COMPOSES_STEPS[file]?.includes(target) ?? false);
          if (!allowed) violations.push(`${file} -> ${target}`);
        } else if (!PACKAGES_ALLOWED[room].test(specifier)) {
          violations.push(`${file} -> package ${specifier}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it("has no import cycle in shared/, type-only imports included", () => {
    const graph = new Map(
      SHARED.map((f) => [
        f,
        specifiers(f)
          .filter((s) => s.startsWith("."))
          .map((s) => resolved(f, s)),
      ]),
    );
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "open") {
        cycles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
        return;
      }
      state.set(file, "open");
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, "done");
    };
    for (const file of SHARED) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it("keeps the simulator, the tests, the bench and dev-only packages out of what is deployed or shipped", () => {
    const shipped = [...sourceFiles("functions"), ...SHARED, ...sourceFiles("audit"), ...sourceFiles("bin")];
    const devOnly = /^(aws-sdk-client-mock|@sinonjs\/|aws-local-stepfunctions|esbuild|vitest|tsx)/;
    const violations = shipped.flatMap((file) =>
      specifiers(file)
        .filter((s) => {
          if (!s.startsWith(".")) return devOnly.test(s);
          const top = relative(".", resolved(file, s)).split("/")[0];
          return top === "local" || top === "test" || top === "bench";
        })
        .map((s) => `${file} -> ${s}`),
    );
    expect(violations).toEqual([]);
  });

  it("keeps tests independent of the bench", () => {
    const violations = sourceFiles("test").flatMap((file) =>
      specifiers(file)
        .filter((s) => s.startsWith(".") && relative(".", resolved(file, s)).startsWith("bench"))
        .map((s) => `${file} -> ${s}`),
    );
    expect(violations).toEqual([]);
  });
});
