import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { beforeAll, describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { EVIDENCE_SCHEMA } from "../../shared/report/evidence-table.js";
import { runInstancesEvent, scenario } from "./helpers.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCENARIO = "local/scenarios/standing-truth.json";
const WEB = "i-0c0ffee000000a001";
const BATCH = "i-0c0ffee000000a002";
const PROXY = "i-0c0ffee000000a003";
const SCRATCH = "i-0c0ffee000000a004";
const CANARY = "i-0c0ffee000000a005";

/** `npm start -- ARGS` as a user runs it, from the repository root. */
function npmStart(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const { COLUMNS: _columns, INIT_CWD: _initCwd, ...inherited } = process.env;
    const child = spawn(process.execPath, ["scripts/run-local.mjs", ...args], {
      cwd: ROOT,
      env: inherited,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

interface JsonRun {
  results: { instanceId: string; verdict: string; eventName: string }[];
  evidence: { instanceId: string; verdict: string; history: { verdict: string }[]; closedAt?: string }[];
  findings: {
    Resources: { Id: string }[];
    Compliance: { Status: string };
    RecordState: string;
    ProductFields: Record<string, string>;
    RelatedFindings?: { Id: string }[];
    [attribute: string]: unknown;
  }[];
}

describe("a standing truth per instance (issue 21), as npm start shows it", () => {
  let run: JsonRun;
  beforeAll(async () => {
    const out = await npmStart(["--scenario", SCENARIO, "--json"]);
    expect(out.code, out.stderr).toBe(0);
    run = JSON.parse(out.stdout) as JsonRun;
  }, 120_000);

  const findingOf = (id: string) => run.findings.filter((f) => f.Resources[0]?.Id.endsWith(`/${id}`));

  it("ends an instance without SSM unverified at launch and pass after the sweep, both in its evidence and in --json", () => {
    // Assess
    expect(run.results.filter((r) => r.instanceId === BATCH).map((r) => [r.eventName, r.verdict])).toEqual([
      ["RunInstances", "unverified"],
      ["ReconciliationSweep", "pass"],
    ]);
    const evidence = run.evidence.find((e) => e.instanceId === BATCH);
    expect(evidence?.verdict).toBe("pass");
    expect(evidence?.history.map((h) => h.verdict)).toEqual(["unverified", "pass"]);
  });

  it("carries one finding per instance, each with the required ASFF attributes", () => {
    // Assess
    const ids = run.findings.map((f) => f.Resources[0]?.Id.split("/").at(-1));
    expect(ids.sort()).toEqual([WEB, BATCH, PROXY, SCRATCH, CANARY].sort());
    for (const f of run.findings) {
      for (const name of ["AwsAccountId", "CreatedAt", "Description", "GeneratorId", "Id", "ProductArn"]) {
        expect(f[name], name).toBeTruthy();
      }
      for (const name of ["Resources", "SchemaVersion", "Severity", "Title", "Types", "UpdatedAt"]) {
        expect(f[name], name).toBeTruthy();
      }
    }
  });

  it("says PASSED for a pass, FAILED with the probe's readings for IMDSv1 answering under required, ARCHIVED when gone", () => {
    // Assess
    expect(findingOf(WEB)[0]?.Compliance.Status).toBe("PASSED");
    expect(findingOf(WEB)[0]?.RelatedFindings?.[0]?.Id).toContain("security-control/EC2.8/");
    expect(findingOf(BATCH)[0]?.RelatedFindings).toBeUndefined();
    const proxy = findingOf(PROXY)[0];
    expect(proxy?.Compliance.Status).toBe("FAILED");
    expect(proxy?.ProductFields["imdsv2-guard/probe/ipv4/v1"]).toBe("200");
    expect(proxy?.ProductFields["imdsv2-guard/probe/ipv4/v1Credentials"]).toBe("200");
    expect(findingOf(SCRATCH)[0]?.RecordState).toBe("ARCHIVED");
    expect(findingOf(CANARY)[0]?.RecordState).toBe("ARCHIVED");
    expect(run.evidence.find((e) => e.instanceId === CANARY)?.closedAt).toBeDefined();
    expect(findingOf(WEB)[0]?.RecordState).toBe("ACTIVE");
  });

  it("lists the evidence as JSON that its schema accepts (npm start -- evidence)", async () => {
    // Act
    const json = await npmStart(["evidence", "--scenario", SCENARIO, "--output", "json"]);

    // Assess
    const listing = JSON.parse(json.stdout) as { schema: string; instances: { instanceId: string }[] };
    const schema = JSON.parse(readFileSync(`${ROOT}/docs/schemas/evidence.v1.json`, "utf8")) as object;
    const validate = new Ajv({ allErrors: true }).compile(schema);
    expect(validate(listing), JSON.stringify(validate.errors)).toBe(true);
    expect(listing.schema).toBe(EVIDENCE_SCHEMA);
    expect(listing.instances).toHaveLength(5);
  }, 120_000);
});

describe("every doubt is checked again", () => {
  it("proves an unverified instance again at the sweep once SSM has it, and leaves Security Hub alone when off", async () => {
    // Prepare: no SSM Agent at launch; it registers 15 minutes later; the sweep runs an hour in.
    const id = "i-0c0ffee000000b001";
    const s = scenario({
      events: [runInstancesEvent([id])],
      instances: [{ id, ssm: "none", ssmOnlineAfterSeconds: 900 }],
      sweepAtSeconds: [3600],
    });

    // Act
    const flow = await runFlow(s);

    // Assess
    expect(flow.findings).toEqual([]);
    expect(flow.sim.calls.BatchImportFindings).toBe(0);
    const record = flow.evidence.find((e) => e.instanceId === id);
    expect(record?.history.map((h) => h.verdict)).toEqual(["unverified", "pass"]);
    expect(flow.sweeps[0]?.reproved).toBe(1);
  });
});
