import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import {
  CloudTrailClient,
  DescribeTrailsCommand,
  GetEventSelectorsCommand,
  type GetEventSelectorsCommandOutput,
  GetTrailStatusCommand,
} from "@aws-sdk/client-cloudtrail";
import { GetDocumentCommand, ListDocumentsCommand, SSMClient } from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import {
  advancedSelectorsRecordWrites,
  basicSelectorsRecordWrites,
  type ControlPlaneClients,
  sdkTrailAndStackReaders,
  spokeThrough,
} from "../ops/aws-readers.js";
import { DOCTOR_API_CALLS, type DoctorReaders, runDoctor } from "../ops/doctor.js";
import { GUARD_PROBE_DOCUMENTS } from "../shared/probes/guard-probe-documents.js";

const REGION = "eu-west-1";
const ARN = "arn:aws:cloudtrail:us-east-1:111122223333:trail/org-trail";
const cloudtrail = mockClient(CloudTrailClient);
const cloudformation = mockClient(CloudFormationClient);

afterEach(() => {
  cloudtrail.reset();
  cloudformation.reset();
});

function readers() {
  const clients: ControlPlaneClients = {
    cloudtrail: new CloudTrailClient({ region: REGION }),
    cloudformation: new CloudFormationClient({ region: REGION }),
  };
  return sdkTrailAndStackReaders(() => clients);
}

/** A multi-Region trail homed elsewhere (a shadow trail in REGION), logging or not, with these selectors. */
function oneTrail(logging: boolean, selectors: Partial<GetEventSelectorsCommandOutput>) {
  cloudtrail
    .on(DescribeTrailsCommand, { includeShadowTrails: true })
    .resolves({ trailList: [{ Name: "org-trail", TrailARN: ARN, HomeRegion: "us-east-1", IsMultiRegionTrail: true }] });
  cloudtrail.on(GetTrailStatusCommand, { Name: ARN }).resolves({ IsLogging: logging });
  cloudtrail.on(GetEventSelectorsCommand, { TrailName: ARN }).resolves(selectors);
}

/** The doctor's trail and stack checks over these readers; the other readers answer as a healthy account. */
async function doctorChecks(sdk: ReturnType<typeof readers>) {
  const rest: DoctorReaders = {
    instances: async () => [],
    managedNodes: async () => new Set(),
    alarms: async () => [],
    runningExecutions: async () => 0,
    accountDefaults: async () => ({}),
  };
  const report = await runDoctor(
    { ...rest, ...sdk },
    {
      regions: [REGION],
      stage: "prod",
      stackName: "imdsv2-guard-prod",
      roleName: "imdsv2-guard-auditor",
      expectedVersion: "0.1.0",
      now: () => new Date("2026-12-01T00:00:00Z"),
    },
  );
  return report.checks.filter((c) => c.check === "trail" || c.check === "stack");
}

describe("doctor's CloudTrail reader", () => {
  it("reads a logging trail with all management events through its ARN, shadow trails included", async () => {
    // Arrange
    oneTrail(true, { EventSelectors: [{ ReadWriteType: "All", IncludeManagementEvents: true }] });

    // Act
    const trails = await readers().trails(REGION);

    // Assess
    expect(trails).toEqual([
      { name: "org-trail", homeRegion: "us-east-1", multiRegion: true, logging: true, writeManagementEvents: true },
    ]);
    expect(cloudtrail.commandCalls(DescribeTrailsCommand)[0]?.args[0].input).toEqual({ includeShadowTrails: true });
  });

  it("a stopped trail is read as not logging, and the doctor asks for attention", async () => {
    // Arrange
    oneTrail(false, { EventSelectors: [{ ReadWriteType: "WriteOnly", IncludeManagementEvents: true }] });

    // Act
    const trails = await readers().trails(REGION);
    cloudformation.on(DescribeStacksCommand).resolves({ Stacks: [] });
    const [trail] = await doctorChecks(readers());

    // Assess
    expect(trails[0]).toMatchObject({ logging: false, writeManagementEvents: true });
    expect(trail).toMatchObject({ check: "trail", status: "attention" });
    expect(trail?.detail).toContain("org-trail not logging write management events");
  });

  it("a trail without management events, or with read-only ones, does not record RunInstances", async () => {
    // Arrange
    oneTrail(true, {
      EventSelectors: [
        { ReadWriteType: "All", IncludeManagementEvents: false },
        { ReadWriteType: "ReadOnly", IncludeManagementEvents: true },
      ],
    });

    // Act
    const trails = await readers().trails(REGION);

    // Assess
    expect(trails[0]).toMatchObject({ logging: true, writeManagementEvents: false });
  });

  it("reads advanced event selectors: management events, writes or all, EC2 not excluded", async () => {
    // Arrange
    oneTrail(true, {
      AdvancedEventSelectors: [
        {
          Name: "management, writes",
          FieldSelectors: [
            { Field: "eventCategory", Equals: ["Management"] },
            { Field: "readOnly", Equals: ["false"] },
          ],
        },
      ],
    });

    // Act
    const trails = await readers().trails(REGION);

    // Assess
    expect(trails[0]).toMatchObject({ writeManagementEvents: true });
    expect(
      advancedSelectorsRecordWrites([{ FieldSelectors: [{ Field: "eventCategory", Equals: ["Management"] }] }]),
    ).toBe(true);
    expect(
      advancedSelectorsRecordWrites([
        {
          FieldSelectors: [
            { Field: "eventCategory", Equals: ["Management"] },
            { Field: "readOnly", Equals: ["true"] },
          ],
        },
      ]),
    ).toBe(false);
    expect(
      advancedSelectorsRecordWrites([
        {
          FieldSelectors: [
            { Field: "eventCategory", Equals: ["Management"] },
            { Field: "eventSource", NotEquals: ["ec2.amazonaws.com"] },
          ],
        },
      ]),
    ).toBe(false);
    expect(
      advancedSelectorsRecordWrites([
        {
          FieldSelectors: [
            { Field: "eventCategory", Equals: ["Data"] },
            { Field: "resources.type", Equals: ["AWS::S3::Object"] },
          ],
        },
      ]),
    ).toBe(false);
    expect(basicSelectorsRecordWrites([])).toBe(false);
    expect(basicSelectorsRecordWrites([{}])).toBe(true);
  });

  it("no trail: the doctor says launches raise no event", async () => {
    // Arrange
    cloudtrail.on(DescribeTrailsCommand).resolves({ trailList: [] });
    cloudformation.on(DescribeStacksCommand).resolves({ Stacks: [] });

    // Act
    const trails = await readers().trails(REGION);
    const [trail] = await doctorChecks(readers());

    // Assess
    expect(trails).toEqual([]);
    expect(cloudtrail.commandCalls(GetTrailStatusCommand)).toHaveLength(0);
    expect(trail).toMatchObject({ check: "trail", status: "attention" });
    expect(trail?.detail).toMatch(/^no trail records this region/);
  });
});

describe("doctor's CloudFormation reader", () => {
  it("reads the stack by name with its status, parameters and version tag", async () => {
    // Arrange
    cloudtrail.on(DescribeTrailsCommand).resolves({ trailList: [] });
    cloudformation.on(DescribeStacksCommand, { StackName: "imdsv2-guard-prod" }).resolves({
      Stacks: [
        {
          StackName: "imdsv2-guard-prod",
          CreationTime: new Date("2026-11-01T00:00:00Z"),
          StackStatus: "UPDATE_COMPLETE",
          Parameters: [
            { ParameterKey: "mode", ParameterValue: "enforce" },
            { ParameterKey: "alertEmail", ParameterValue: "ops@example.com" },
          ],
          Tags: [{ Key: "version", Value: "0.1.0" }],
        },
      ],
    });

    // Act
    const stack = await readers().stack(REGION, "imdsv2-guard-prod");
    const [, check] = await doctorChecks(readers());

    // Assess
    expect(stack).toEqual({
      name: "imdsv2-guard-prod",
      status: "UPDATE_COMPLETE",
      parameters: { mode: "enforce", alertEmail: "ops@example.com" },
      outputs: {},
      version: "0.1.0",
    });
    expect(check).toMatchObject({ check: "stack", status: "ok" });
    expect(check?.detail).toBe("imdsv2-guard-prod UPDATE_COMPLETE, mode=enforce, alertEmail set, version 0.1.0");
  });

  it("a stack osls deployed has no CloudFormation parameters: the doctor reads its mode from the outputs", async () => {
    // Arrange: as serverless.yml's outputs and version stack tag show a deployed stack.
    cloudtrail.on(DescribeTrailsCommand).resolves({ trailList: [] });
    cloudformation.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: "imdsv2-guard-prod",
          CreationTime: new Date("2026-11-01T00:00:00Z"),
          StackStatus: "UPDATE_COMPLETE",
          Outputs: [
            { OutputKey: "AlertTopicArn", OutputValue: "arn:aws:sns:eu-west-1:123456789012:imdsv2-guard-prod-alerts" },
            { OutputKey: "GuardMode", OutputValue: "audit" },
            { OutputKey: "GuardOrganizationMode", OutputValue: "hub" },
            { OutputKey: "GuardAlertEmailSet", OutputValue: "false" },
          ],
          Tags: [
            { Key: "service", Value: "imdsv2-guard" },
            { Key: "version", Value: "0.1.0" },
          ],
        },
      ],
    });

    // Act
    const [, check] = await doctorChecks(readers());

    // Assess
    expect(check).toMatchObject({ check: "stack", status: "ok" });
    expect(check?.detail).toBe(
      "imdsv2-guard-prod UPDATE_COMPLETE, mode=audit (hub), alertEmail not set, version 0.1.0",
    );
  });

  it("a stack from before the outputs shows neither parameters nor outputs: the doctor says so instead of a mode", async () => {
    // Arrange
    cloudtrail.on(DescribeTrailsCommand).resolves({ trailList: [] });
    cloudformation.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: "imdsv2-guard-prod",
          CreationTime: new Date("2026-11-01T00:00:00Z"),
          StackStatus: "UPDATE_ROLLBACK_COMPLETE",
        },
      ],
    });

    // Act
    const [, check] = await doctorChecks(readers());

    // Assess
    expect(check).toMatchObject({ check: "stack", status: "attention" });
    expect(check?.detail).toBe(
      "imdsv2-guard-prod UPDATE_ROLLBACK_COMPLETE, mode and alertEmail not readable (a stack from before 0.1.0's outputs: redeploy it)",
    );
  });

  it("a missing stack (DescribeStacks ValidationError) is undefined; other errors are thrown", async () => {
    // Arrange
    cloudtrail.on(DescribeTrailsCommand).resolves({ trailList: [] });
    const missing = Object.assign(new Error("Stack with id imdsv2-guard-prod does not exist"), {
      name: "ValidationError",
    });
    cloudformation.on(DescribeStacksCommand, { StackName: "imdsv2-guard-prod" }).rejects(missing);
    cloudformation
      .on(DescribeStacksCommand, { StackName: "imdsv2-guard-denied" })
      .rejects(Object.assign(new Error("not authorized"), { name: "AccessDenied" }));

    // Act
    const stack = await readers().stack(REGION, "imdsv2-guard-prod");
    const denied = readers().stack(REGION, "imdsv2-guard-denied");
    const [, check] = await doctorChecks(readers());

    // Assess
    expect(stack).toBeUndefined();
    await expect(denied).rejects.toThrow("not authorized");
    expect(check).toMatchObject({ check: "stack", status: "attention", detail: "stack imdsv2-guard-prod not found" });
  });

  it("every call the readers make is in DOCTOR_API_CALLS", () => {
    // Assess
    const actions = DOCTOR_API_CALLS.map((c) => c.action);
    for (const a of [
      "cloudtrail:DescribeTrails",
      "cloudtrail:GetTrailStatus",
      "cloudtrail:GetEventSelectors",
      "cloudformation:DescribeStacks",
    ])
      expect(actions).toContain(a);
  });
});

describe("doctor's spoke reader (--accounts, through the auditor role)", () => {
  const ssm = mockClient(SSMClient);
  afterEach(() => ssm.reset());
  const client = () => Promise.resolve(new SSMClient({ region: REGION }));
  const document = (platform: "linux" | "windows", content: unknown) => ({
    Name: `imdsv2-guard-probe-${platform}`,
    DocumentVersion: "3",
    DocumentType: "Command" as const,
    Content: JSON.stringify(content),
  });

  it("compares each of the guard's probe documents with this build, as SendProbe does before it sends", async () => {
    // Arrange: the Linux document is this build's (its keys reordered, as CloudFormation may store them); the
    // Windows one holds another release's script.
    ssm.on(ListDocumentsCommand).resolves({
      DocumentIdentifiers: [
        { Name: "imdsv2-guard-probe-linux" },
        { Name: "imdsv2-guard-probe-windows" },
        { Name: "someone-elses-document" },
      ],
    });
    const linux = GUARD_PROBE_DOCUMENTS.linux.content;
    const reordered = Object.fromEntries(Object.entries(linux).reverse());
    ssm.on(GetDocumentCommand, { Name: "imdsv2-guard-probe-linux" }).resolves(document("linux", reordered));
    const older = structuredClone(GUARD_PROBE_DOCUMENTS.windows.content);
    older.description = `${older.description} (an older release)`;
    ssm.on(GetDocumentCommand, { Name: "imdsv2-guard-probe-windows" }).resolves(document("windows", older));

    // Act
    const spoke = await spokeThrough(client);

    // Assess
    expect(spoke).toMatchObject({
      reachable: true,
      probeDocuments: ["imdsv2-guard-probe-linux", "imdsv2-guard-probe-windows"],
      probeDocumentsOutOfDate: ["imdsv2-guard-probe-windows"],
    });
    expect(ssm.commandCalls(GetDocumentCommand).map((c) => c.args[0].input)).toEqual([
      { Name: "imdsv2-guard-probe-linux", DocumentVersion: "$LATEST", DocumentFormat: "JSON" },
      { Name: "imdsv2-guard-probe-windows", DocumentVersion: "$LATEST", DocumentFormat: "JSON" },
    ]);
  });

  it("leaves a document it may not read uncompared, saying why, instead of failing the spoke", async () => {
    // Arrange: an auditor role from before ssm:GetDocument was granted.
    ssm.on(ListDocumentsCommand).resolves({ DocumentIdentifiers: [{ Name: "imdsv2-guard-probe-linux" }] });
    ssm
      .on(GetDocumentCommand)
      .rejects(
        Object.assign(new Error("not authorized to perform: ssm:GetDocument"), { name: "AccessDeniedException" }),
      );

    // Act
    const spoke = await spokeThrough(client);

    // Assess
    expect(spoke).toMatchObject({
      reachable: true,
      probeDocumentsOutOfDate: [],
      probeDocumentsNotCompared: ["imdsv2-guard-probe-linux (AccessDeniedException)"],
    });
  });
});
