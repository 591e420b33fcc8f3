import type {
  AwsSecurityFinding,
  AwsSecurityFindingFilters,
  BatchImportFindingsCommandInput,
  GetFindingsCommandInput,
  StringFilter,
} from "@aws-sdk/client-securityhub";

/**
 * The simulated Security Hub CSPM of one account and region: it keeps the findings imported into it and refuses what
 * AWS refuses. Each promise cites its AWS page (Security Hub User Guide, Partner Guide or API Reference):
 *
 * | Behaviour                                                                   | Source                                                   |
 * |-----------------------------------------------------------------------------|----------------------------------------------------------|
 * | At most 100 findings per BatchImportFindings call                           | "Guidelines for using the BatchImportFindings API"       |
 * | At most 240 KB per finding                                                  | "Guidelines for using the BatchImportFindings API"       |
 * | Caller's account must be each finding's AwsAccountId (default product ARN)  | "BatchImportFindings" (API Reference); Partner Guide     |
 * | ProductArn of a custom integration is product/ACCOUNT/default of the caller | "Integrating Security Hub CSPM with custom products"     |
 * | Required: AwsAccountId, CreatedAt, Description, GeneratorId, Id, ProductArn,| "Required top-level ASFF attributes"                     |
 * |   Resources, SchemaVersion, Severity, Title, Types, UpdatedAt               |                                                          |
 * | SchemaVersion 2018-10-08; Title ≤ 256 and Description ≤ 1024 characters     | "Guidelines for mapping findings into the ASFF"          |
 * | Compliance.Status ∈ PASSED, WARNING, FAILED, NOT_AVAILABLE                  | "Compliance" (API Reference)                             |
 * | RecordState ∈ ACTIVE, ARCHIVED                                              | "AwsSecurityFinding" (API Reference)                     |
 * | Same ProductArn and Id again updates the finding                            | "Guidelines for mapping findings into the ASFF"          |
 * | FindingProviderFields fill the top-level Severity, Types, RelatedFindings   | "FindingProviderFields" (API Reference)                  |
 * | GetFindings: at most 10 filtered attributes, 20 values each; MaxResults≤100 | "AwsSecurityFindingFilters", "GetFindings"               |
 *
 * Stricter than AWS where AWS's own answer is not documented: a call breaking any rule above is refused as a whole
 * (InvalidInputException, or AccessDeniedException for another account's finding), never half-imported.
 */
export class SimSecurityHub {
  /** Findings by ProductArn and Id, as imported (the latest import of each). */
  private readonly stored = new Map<string, AwsSecurityFinding>();
  /** Every BatchImportFindings call answered, with its size: what the bench prices. */
  readonly imports: { at: number; findings: number }[] = [];

  constructor(
    /** The account and region this Security Hub belongs to. */
    private readonly identity: () => { account: string; region: string },
    /** The control findings Security Hub CSPM itself generates here (EC2.8), evaluated when asked. */
    private readonly controlFindings: () => AwsSecurityFinding[] = () => [],
  ) {}

  /** Imported findings, in the order first imported. */
  get findings(): AwsSecurityFinding[] {
    return [...this.stored.values()];
  }

  batchImportFindings(input: BatchImportFindingsCommandInput): { SuccessCount: number; FailedCount: number } {
    const findings = input.Findings ?? [];
    if (findings.length === 0) throw invalid("Findings: at least one finding is required");
    if (findings.length > 100) {
      throw invalid(`Findings: ${findings.length} findings; at most 100 per BatchImportFindings call`);
    }
    const { account, region } = this.identity();
    const ownProduct = `arn:aws:securityhub:${region}:${account}:product/${account}/default`;
    findings.forEach((f, i) => {
      const missing = REQUIRED.filter((name) => isEmpty(f[name]));
      if (missing.length > 0) throw invalid(`Findings.${i}: missing required attribute(s) ${missing.join(", ")}`);
      if (f.AwsAccountId !== account) {
        throw accessDenied(
          `Findings.${i}: AwsAccountId ${f.AwsAccountId} is not the calling account ${account}; with the default product ARN an account imports only its own findings`,
        );
      }
      if (f.ProductArn !== ownProduct) {
        throw accessDenied(`Findings.${i}: ProductArn ${f.ProductArn} is not this account's ${ownProduct}`);
      }
      if (f.SchemaVersion !== "2018-10-08") throw invalid(`Findings.${i}.SchemaVersion must be 2018-10-08`);
      if ((f.Title ?? "").length > 256) throw invalid(`Findings.${i}.Title is longer than 256 characters`);
      if ((f.Description ?? "").length > 1024)
        throw invalid(`Findings.${i}.Description is longer than 1024 characters`);
      if (Buffer.byteLength(JSON.stringify(f)) > 240 * 1024) throw invalid(`Findings.${i} is larger than 240 KB`);
      const status = f.Compliance?.Status;
      if (status !== undefined && !COMPLIANCE_STATUSES.includes(status)) {
        throw invalid(`Findings.${i}.Compliance.Status ${status} is not one of ${COMPLIANCE_STATUSES.join(", ")}`);
      }
      if (f.RecordState !== undefined && f.RecordState !== "ACTIVE" && f.RecordState !== "ARCHIVED") {
        throw invalid(`Findings.${i}.RecordState must be ACTIVE or ARCHIVED`);
      }
      if (!Array.isArray(f.Resources) || f.Resources.some((r) => !r.Id || !r.Type)) {
        throw invalid(`Findings.${i}.Resources: every resource needs Type and Id`);
      }
    });
    for (const f of findings) {
      const provider = f.FindingProviderFields;
      this.stored.set(`${f.ProductArn}#${f.Id}`, {
        ...f,
        RecordState: f.RecordState ?? "ACTIVE",
        // The provider's values are what the top-level fields show until a customer changes them.
        ...(provider?.RelatedFindings ? { RelatedFindings: provider.RelatedFindings } : {}),
        ...(provider?.Types ? { Types: provider.Types } : {}),
      });
    }
    this.imports.push({ at: Date.now(), findings: findings.length });
    return { SuccessCount: findings.length, FailedCount: 0 };
  }

  getFindings(input: GetFindingsCommandInput): { Findings: AwsSecurityFinding[]; NextToken?: string } {
    const filters = input.Filters ?? {};
    const used = Object.entries(filters).filter(([, v]) => Array.isArray(v) && v.length > 0) as [
      keyof AwsSecurityFindingFilters,
      StringFilter[],
    ][];
    if (used.length > 10) throw invalid("Filters: at most 10 finding attributes");
    for (const [name, values] of used) {
      if (values.length > 20) throw invalid(`Filters.${name}: at most 20 values`);
      if (!(name in FIELDS)) throw invalid(`Filters.${name}: the simulation does not evaluate this filter`);
      if (values.some((v) => v.Comparison !== "EQUALS")) {
        throw invalid(`Filters.${name}: the simulation evaluates EQUALS only`);
      }
    }
    const max = input.MaxResults ?? 100;
    if (max < 1 || max > 100) throw invalid("MaxResults must be between 1 and 100");
    const all = [...this.controlFindings(), ...this.stored.values()].filter((f) =>
      used.every(([name, values]) => {
        const field = FIELDS[name as keyof typeof FIELDS];
        const have = field ? field(f) : [];
        return values.some((v) => have.includes(v.Value ?? ""));
      }),
    );
    const start = input.NextToken ? Number(input.NextToken) : 0;
    const page = all.slice(start, start + max);
    return {
      Findings: page,
      ...(start + max < all.length ? { NextToken: String(start + max) } : {}),
    };
  }
}

const REQUIRED = [
  "AwsAccountId",
  "CreatedAt",
  "Description",
  "GeneratorId",
  "Id",
  "ProductArn",
  "Resources",
  "SchemaVersion",
  "Severity",
  "Title",
  "Types",
  "UpdatedAt",
] as const;

const COMPLIANCE_STATUSES: string[] = ["PASSED", "WARNING", "FAILED", "NOT_AVAILABLE"];

/** The filters the simulation evaluates, each as the values a finding has for it. */
const FIELDS: Partial<Record<keyof AwsSecurityFindingFilters, (f: AwsSecurityFinding) => string[]>> = {
  ComplianceSecurityControlId: (f) => (f.Compliance?.SecurityControlId ? [f.Compliance.SecurityControlId] : []),
  ResourceId: (f) => (f.Resources ?? []).flatMap((r) => (r.Id ? [r.Id] : [])),
  RecordState: (f) => [f.RecordState ?? "ACTIVE"],
  AwsAccountId: (f) => (f.AwsAccountId ? [f.AwsAccountId] : []),
  ProductArn: (f) => (f.ProductArn ? [f.ProductArn] : []),
  Id: (f) => (f.Id ? [f.Id] : []),
  ComplianceStatus: (f) => (f.Compliance?.Status ? [f.Compliance.Status] : []),
};

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0);
}

function invalid(message: string): Error {
  return Object.assign(new Error(message), {
    name: "InvalidInputException",
    $fault: "client",
    $metadata: { httpStatusCode: 400 },
  });
}

function accessDenied(message: string): Error {
  return Object.assign(new Error(message), {
    name: "AccessDeniedException",
    $fault: "client",
    $metadata: { httpStatusCode: 403 },
  });
}

/**
 * The EC2.8 control finding Security Hub CSPM generates for an instance ("Security Hub CSPM controls for Amazon
 * EC2", EC2.8: instances should use IMDSv2): PASSED when the API says HttpTokens=required, FAILED otherwise.
 */
export function ec28ControlFinding(
  account: string,
  region: string,
  instanceId: string,
  httpTokens: string,
  at: string,
): AwsSecurityFinding {
  const arn = `arn:aws:ec2:${region}:${account}:instance/${instanceId}`;
  return {
    SchemaVersion: "2018-10-08",
    Id: `arn:aws:securityhub:${region}:${account}:security-control/EC2.8/finding/sim-${instanceId}`,
    ProductArn: `arn:aws:securityhub:${region}::product/aws/securityhub`,
    GeneratorId: "security-control/EC2.8",
    AwsAccountId: account,
    Types: ["Software and Configuration Checks/Industry and Regulatory Standards"],
    CreatedAt: at,
    UpdatedAt: at,
    Severity: { Label: "HIGH" },
    Title: "EC2 instances should use Instance Metadata Service Version 2 (IMDSv2)",
    Description: "This control checks whether your EC2 instance metadata version is configured with IMDSv2.",
    Resources: [{ Type: "AwsEc2Instance", Id: arn }],
    Compliance: { Status: httpTokens === "required" ? "PASSED" : "FAILED", SecurityControlId: "EC2.8" },
    RecordState: "ACTIVE",
  };
}
