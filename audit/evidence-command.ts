import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { dynamoEvidenceStore } from "../shared/aws/evidence-store.js";
import type { EvidenceRecord } from "../shared/domain/evidence.js";
import { evidenceCsv, evidenceJson, evidenceTable } from "../shared/report/evidence-table.js";
import { outputWidth } from "../shared/report/text-table.js";
import type { AuditIo } from "./command.js";
import { describeFailure } from "./failure.js";

export const EVIDENCE_USAGE = `Usage: imdsv2-guard evidence --table LEDGER_TABLE [--account ID] [--regions r1,r2]
                            [--output table|json|csv | --json | --csv]

Lists every instance the guard has judged in an account and region, with its standing verdict, the age of its proof
(when the probe last proved it from inside), how many times it was judged, and why (docs/evidence.md). Reads the
guard's event ledger (the stack's EventLedgerTable); needs dynamodb:Query on it. Doubts first, closed records last.

  --table NAME     the guard's ledger table (the EventLedgerTable resource of the stack)
  --account ID     the account whose instances to list (default: the caller's; in organization mode, a member's)
  --regions LIST   comma-separated regions (default: the SDK's region)
  --output FORMAT  table (default), json (schema docs/schemas/evidence.v1.json) or csv; --json and --csv for short
`;

/** Where the records come from: the ledger in AWS, or a test's list. */
export interface EvidenceSource {
  callerAccount(): Promise<string>;
  defaultRegion(): Promise<string>;
  list(table: string, account: string, region: string): Promise<EvidenceRecord[]>;
}

function sdkSource(): EvidenceSource {
  const settings = { maxAttempts: 3 };
  return {
    async callerAccount() {
      const sts = new STSClient(settings);
      const identity = await sts.send(new GetCallerIdentityCommand({}));
      if (!identity.Account) throw new Error("STS GetCallerIdentity named no account");
      return identity.Account;
    },
    async defaultRegion() {
      return new DynamoDBClient(settings).config.region();
    },
    async list(table, account, region) {
      // Retention matters only when writing; a listing reads.
      return dynamoEvidenceStore(new DynamoDBClient({ ...settings, region }), table, 1).list(account, region);
    },
  };
}

/** `imdsv2-guard evidence ...`; returns the exit status (2: usage, 1: AWS said no). */
export async function runEvidence(
  argv: readonly string[],
  io: AuditIo,
  source: EvidenceSource = sdkSource(),
  now: () => Date = () => new Date(),
): Promise<number> {
  let options: { table: string; account?: string; regions: string[]; format: "table" | "json" | "csv" } | "help";
  try {
    options = parseEvidenceOptions(argv);
  } catch (error) {
    io.stderr.write(
      `imdsv2-guard evidence: ${error instanceof Error ? error.message : String(error)}\n\n${EVIDENCE_USAGE}`,
    );
    return 2;
  }
  if (options === "help") {
    io.stdout.write(EVIDENCE_USAGE);
    return 0;
  }
  try {
    const account = options.account ?? (await source.callerAccount());
    const regions = options.regions.length > 0 ? options.regions : [await source.defaultRegion()];
    const records = (await Promise.all(regions.map((r) => source.list(options.table, account, r)))).flat();
    const at = now();
    io.stdout.write(
      options.format === "json"
        ? `${JSON.stringify(evidenceJson(records, at), null, 2)}\n`
        : options.format === "csv"
          ? evidenceCsv(records, at)
          : evidenceTable(records, at, io.width ?? outputWidth(process.env, io.stdout)),
    );
    return 0;
  } catch (error) {
    io.stderr.write(`imdsv2-guard evidence: ${describeFailure(error).message}\n`);
    return 1;
  }
}

function parseEvidenceOptions(argv: readonly string[]) {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      table: { type: "string" },
      account: { type: "string" },
      regions: { type: "string" },
      output: { type: "string" },
      json: { type: "boolean", default: false },
      csv: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) return "help" as const;
  if (!values.table) throw new Error("--table is required: the guard's ledger table (the stack's EventLedgerTable)");
  if (values.account !== undefined && !/^\d{12}$/.test(values.account)) {
    throw new Error(`--account must be a 12-digit account id, not ${values.account}`);
  }
  const regions = (values.regions ?? "")
    .split(",")
    .map((r) => r.trim())
    .filter(Boolean);
  const bad = regions.find((r) => !/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(r));
  if (bad) throw new Error(`--regions: ${bad} is not a region name`);
  return {
    format: tableJsonOrCsv(values),
    table: values.table,
    ...(values.account ? { account: values.account } : {}),
    regions,
  };
}

/** `--output table|json|csv`, or its short forms `--json` and `--csv`; two that disagree are an error. */
export function tableJsonOrCsv(values: { json?: boolean; csv?: boolean; output?: string }): "table" | "json" | "csv" {
  const asked = [values.output, values.json ? "json" : undefined, values.csv ? "csv" : undefined].filter(
    (v): v is string => v !== undefined,
  );
  const format = asked[0] ?? "table";
  if (format !== "table" && format !== "json" && format !== "csv") {
    throw new Error(`--output must be table, json or csv, not ${format}`);
  }
  if (asked.some((a) => a !== format)) throw new Error(`conflicting output formats: ${asked.join(" and ")}`);
  return format;
}
