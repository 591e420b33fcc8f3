import type { AccountPosture } from "../domain/account-posture.js";
import type { RejectedTarget } from "../domain/event.js";
import {
  type EventRef,
  type InstanceResult,
  type Trigger,
  VERDICT_SEVERITY,
  VERDICTS,
  type Verdict,
} from "../domain/model.js";
import { allowedImdsV1, describeOrigin, describePosture, sourceFixes } from "../domain/root-cause.js";
import { type FullDetail, hiddenDetailSentence, ledgerSentence } from "./full-detail.js";
import { codeSafe, markdownSafe, plainSafe, slackEntities, toAscii } from "./text-safety.js";
import { textTable } from "./text-table.js";

/** Everything a person or a program needs to know about one triggering event. */
export interface EventReport {
  event: EventRef;
  mode: "enforce" | "audit";
  /** The worst verdict of the event: what subscriptions filter on. */
  verdict: Verdict;
  counts: Record<Verdict, number>;
  results: InstanceResult[];
  /** What is wrong with the event itself, when it could not be read. */
  problem?: string;
  trigger?: Trigger;
  accountPosture?: AccountPosture;
  /** A sweep's view of the fleet. */
  fleet?: { allowingImdsV1: number; exempt: number };
  /** Something the operator should know about how the guard itself ran (e.g. deduplication unavailable). */
  notice?: string;
  /** Where every instance's full result is kept, for when a message lists only some (full-detail.ts). */
  fullDetail?: FullDetail;
}

export interface ReportInput {
  event: EventRef;
  mode: "enforce" | "audit";
  results: InstanceResult[];
  rejected: RejectedTarget[];
  problem?: string;
  trigger?: Trigger;
  accountPosture?: AccountPosture;
  fleet?: { allowingImdsV1: number; exempt: number };
  notice?: string;
  fullDetail?: FullDetail;
}

/** Builds the report; rejected instance ids count as `error` results, so nothing an event named is left unreported. */
export function buildReport(input: ReportInput): EventReport {
  // One event is one account and region (the envelope's), so every result carries them: a reader of a merged
  // feed, or of one result, knows where the instance is.
  const where = { account: input.event.account, region: input.event.region };
  const results = [
    ...input.results,
    ...input.rejected.map(
      (r): InstanceResult => ({
        instanceId: r.value,
        verdict: "error",
        reason: `Rejected: ${r.reason}.`,
        warnings: [],
      }),
    ),
  ].map((r): InstanceResult => ({ ...r, ...where }));
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const r of results) counts[r.verdict]++;
  const verdict: Verdict = input.problem
    ? "error"
    : results.reduce<Verdict>(
        (worst, r) => (VERDICT_SEVERITY[r.verdict] > VERDICT_SEVERITY[worst] ? r.verdict : worst),
        "pass",
      );
  return {
    event: input.event,
    mode: input.mode,
    verdict,
    counts,
    results,
    ...(input.problem ? { problem: input.problem } : {}),
    ...(input.trigger ? { trigger: input.trigger } : {}),
    ...(input.accountPosture ? { accountPosture: input.accountPosture } : {}),
    ...(input.fleet ? { fleet: input.fleet } : {}),
    ...(input.notice ? { notice: input.notice } : {}),
    ...(input.fullDetail ? { fullDetail: input.fullDetail } : {}),
  };
}

/** The report with one more sentence in its notice (what the operator should know about how the guard ran). */
export function withNotice(report: EventReport, sentence: string): EventReport {
  return { ...report, notice: [report.notice, sentence].filter(Boolean).join(" ") };
}

/** Instances listed one by one in human formats; the rest are counted. Keeps every message far below SNS's 256 KB. */
const MAX_LISTED = 50;
/**
 * Instances past the detailed ones, listed as `instance  verdict` rows (about 32 bytes each): 1,000 rows keep the
 * email's text near 32 KB, well inside SNS's 256 KiB with the machine copies beside it. Any more are counted.
 */
const MAX_TABLED = 1_000;
/** Plain-text email stays readable at the classic 72 columns. */
const EMAIL_WIDTH = 72;
/** Reasons quote tag values; in human formats they are cut here (the machine report keeps them whole). */
const MAX_REASON_CHARS = 400;

const NEXT_STEPS: Partial<Record<Verdict, string>> = {
  // Only where the API showed the revert (CheckApplied saw HttpTokens go back): the event's actor launched the
  // instance, the reverter is whoever CloudTrail names.
  fail: "HttpTokens went back to optional while the guard verified it: look up ModifyInstanceMetadataOptions for the instance in CloudTrail to find who reverted it, and set `MetadataOptions.HttpTokens=required` where it is launched (launch template, AMI `ImdsSupport v2.0`, or the account default).",
  unverified:
    "Unverified means the guard could not prove it from inside: check the SSM Agent and the instance profile (AmazonSSMManagedInstanceCore), then start the instance; the next sweep checks it again, or send it now with `npx imdsv2-guard audit --start --instances <id>`.",
  error:
    "An error means the guard could not finish: the reason names the step and the AWS error; the execution in Step Functions has the full history.",
  exempt:
    "Exempt instances keep IMDSv1 by their tag; review the reason, and remove the tag once the software is fixed.",
  held: "Held instances still allow IMDSv1 because something on them uses it: find the caller (old AWS SDKs and agents; AWS's aws-imds-packet-analyzer names the process), update it to IMDSv2, and the next sweep enforces once MetadataNoToken stays at 0.",
};

/**
 * Subject line: ASCII only, one line, under 100 characters, as SNS requires for email. A `suffix` (a split report's
 * ` [part 2/3]`) is kept whole; the event name is cut to make room for it.
 */
export function subjectLine(report: EventReport, suffix = ""): string {
  const total = report.results.length;
  const worst = report.verdict.toUpperCase();
  const what = report.problem ? "event could not be read" : `${report.counts[report.verdict]} of ${total} instance(s)`;
  // The account by its name where the organization knows it (the id is in the body and the `account` attribute).
  // Where it does not fit, the event name is cut rather than the place: the account and region are what an email
  // rule or a reader sorts by.
  const head = toAscii(`[imdsv2-guard] ${worst}: ${what} - `);
  const place = toAscii(` in ${report.event.accountName ?? report.event.account}/${report.event.region}`).slice(0, 60);
  const tail = toAscii(suffix);
  const eventName = toAscii(report.event.eventName).slice(
    0,
    Math.max(0, 99 - head.length - place.length - tail.length),
  );
  return `${head}${eventName}${place}${tail}`.slice(0, 99);
}

/** The readable text for email and the `default` protocol. */
export function plainText(report: EventReport): string {
  const lines: string[] = [];
  const e = report.event;
  lines.push(`imdsv2-guard ${report.mode === "audit" ? "(audit mode: nothing was changed)" : ""}`.trim());
  lines.push(`Event:   ${plainSafe(e.eventName)} ${plainSafe(e.eventId)} at ${plainSafe(e.eventTime)}`);
  lines.push(`Actor:   ${plainSafe(e.actor)}`);
  lines.push(`Account: ${plainSafe(accountLabel(e))}  Region: ${plainSafe(e.region)}`);
  lines.push(`Verdict: ${report.verdict}  (${countsLine(report)})`);
  if (e.launchTemplate) lines.push(`Launch template in the request: ${plainSafe(launchTemplateText(e))}`);
  if (report.accountPosture) lines.push(`Account: ${plainSafe(describePosture(report.accountPosture))}`);
  if (report.fleet) {
    lines.push(
      `Fleet:   ${report.fleet.allowingImdsV1} instance(s) allow IMDSv1, ${report.fleet.exempt} of them exempt; the rest are below.`,
    );
  }
  if (report.problem) lines.push("", `Problem with the event: ${plainSafe(report.problem)}`);
  if (report.notice) lines.push("", `Notice: ${plainSafe(report.notice)}`);
  lines.push("");
  for (const r of listed(report)) {
    lines.push(
      `- ${plainSafe(r.instanceId)}: ${r.verdict.toUpperCase()} - ${plainSafe(r.reason).slice(0, MAX_REASON_CHARS)}`,
    );
    for (const w of r.warnings) lines.push(`    warning: ${plainSafe(w)}`);
    if (r.origin && allowedImdsV1(r)) lines.push(`    origin: ${plainSafe(describeOrigin(r.origin))}`);
  }
  const rest = worstFirst(report.results).slice(MAX_LISTED);
  if (rest.length > 0) lines.push(hiddenDetailSentence(rest.length, report.fullDetail));
  const tabled = rest.slice(0, MAX_TABLED);
  if (tabled.length > 0) {
    // A launch of hundreds still reads in one email: the instances past the detailed ones, one short row each.
    lines.push(
      "",
      textTable(
        [{ header: "Instance" }, { header: "Verdict" }],
        tabled.map((r) => [plainSafe(r.instanceId), r.verdict]),
        EMAIL_WIDTH,
      ),
    );
    if (rest.length > tabled.length) lines.push(`(${rest.length - tabled.length} more, counted above but not tabled)`);
  }
  const steps = nextSteps(report);
  if (steps.length > 0) lines.push("", "Next steps:", ...steps.map((s) => `- ${s.replaceAll("`", "")}`));
  return lines.join("\n");
}

/**
 * An AWS Chatbot / Amazon Q Developer custom notification. With `textType: client-markdown` Chatbot renders it in the
 * chat platform's own markdown: Slack's mrkdwn. Every user-controlled string (tag values, role and session names,
 * event fields) goes through markdownSafe, so a tag cannot forge a verdict line, a mention or a link.
 */
export function chatbotNotification(report: EventReport): string {
  const e = report.event;
  const rows = listed(report).map(
    (r) =>
      `• \`${codeSafe(r.instanceId)}\` *${r.verdict}*: ${markdownSafe(r.reason)}${r.warnings.length ? ` _(${markdownSafe(r.warnings.join("; "))})_` : ""}${r.origin && allowedImdsV1(r) ? ` — origin: ${markdownSafe(describeOrigin(r.origin))}` : ""}`,
  );
  const hidden = report.results.length - rows.length;
  if (hidden > 0) rows.push(`…and ${hidden} more`);
  const description = [
    `*${markdownSafe(e.eventName)}* by \`${codeSafe(e.actor)}\` in ${markdownSafe(e.account)}/${markdownSafe(e.region)}`,
    `Event \`${codeSafe(e.eventId)}\` at ${markdownSafe(e.eventTime)}${report.mode === "audit" ? " — audit mode, nothing changed" : ""}`,
    report.problem ? `Problem: ${markdownSafe(report.problem)}` : countsLine(report),
    ...(report.notice ? [`Notice: ${markdownSafe(report.notice)}`] : []),
    ...(e.launchTemplate ? [`Launch template: ${markdownSafe(launchTemplateText(e))}`] : []),
    ...(report.accountPosture ? [`Account: ${markdownSafe(describePosture(report.accountPosture))}`] : []),
    ...rows,
  ].join("\n");
  return JSON.stringify({
    version: "1.0",
    source: "custom",
    id: e.eventId,
    content: {
      textType: "client-markdown",
      title: `${emojiFor(report.verdict)} imdsv2-guard: ${report.verdict.toUpperCase()} (${markdownSafe(e.eventName)})`,
      description: description.slice(0, 3800),
      // Our own sentences, with code spans meant as such; what users control in them is already quoted by the domain
      // (root-cause's quotedName), so only Slack's reserved characters need their entities.
      nextSteps: nextSteps(report).slice(0, 5).map(slackEntities),
      keywords: [report.verdict, e.region, e.account, report.mode].map((k) => k.slice(0, 64)),
    },
    metadata: { threadId: e.eventId, enableCustomActions: false },
  });
}

/**
 * Bytes of full results in each machine-readable copy. SNS caps a message at 256 KiB and the report goes out twice
 * (`sqs` and `lambda`), so past this budget the remaining results travel as `[instanceId, verdict]` pairs: a
 * thousand of them take about 35 KB. The worst verdicts come first, so what is cut is detail about passes.
 */
export const FULL_RESULTS_BUDGET_BYTES = 60_000;

/** Which message of a report split over several (1-based): `{ index: 2, of: 3 }`. */
export interface ReportPart {
  index: number;
  of: number;
}

/** A machine report as read back: one part of a split report carries `part`, and only that part's results. */
export type MachineReport = EventReport & { part?: ReportPart };

/**
 * The machine-readable report for the `sqs` and `lambda` protocols; `parseMachineReport` reads it back. A part of a
 * split report says which one it is (`part`), so a consumer can put the event's parts back together.
 */
export function machineReport(report: EventReport, budgetBytes = FULL_RESULTS_BUDGET_BYTES, part?: ReportPart): string {
  const fits = Buffer.byteLength(JSON.stringify(report.results)) <= budgetBytes;
  const sorted = fits ? report.results : worstFirst(report.results);
  const full: InstanceResult[] = [];
  let bytes = 0;
  for (const r of sorted) {
    const size = Buffer.byteLength(JSON.stringify(r));
    if (bytes + size > budgetBytes) break;
    bytes += size;
    full.push(r);
  }
  const rest = sorted.slice(full.length).map((r) => [r.instanceId, r.verdict]);
  return JSON.stringify({
    schema: "imdsv2-guard.report.v1",
    ...report,
    results: full,
    ...(rest.length > 0 ? { briefResults: rest } : {}),
    ...(part ? { part } : {}),
  });
}

/** Reads a machine report back, expanding brief results into results without their detail. */
export function parseMachineReport(json: string): MachineReport {
  const parsed = JSON.parse(json) as EventReport & { briefResults?: [string, Verdict][] };
  const brief = (parsed.briefResults ?? []).map(
    ([instanceId, verdict]): InstanceResult => ({
      instanceId,
      verdict,
      reason: parsed.fullDetail
        ? `(detail left out of the SNS message to stay under its 256 KiB limit; it is in the ledger: ${parsed.fullDetail.command})`
        : "(detail left out of the SNS message to stay under its 256 KiB limit)",
      warnings: [],
    }),
  );
  const { briefResults: _brief, ...report } = parsed;
  return { ...report, results: [...report.results, ...brief] };
}

export interface SnsMessage {
  Subject: string;
  Message: string;
  MessageStructure: "json";
  MessageAttributes: Record<string, { DataType: "String" | "String.Array"; StringValue: string }>;
}

/** SNS refuses messages over 256 KiB (262,144 bytes, subject and attributes included); this leaves headroom. */
const SNS_MESSAGE_BUDGET_BYTES = 250_000;

/**
 * One SNS message per event, each protocol in its own format, with attributes subscriptions can filter on. Email
 * uses `default`. If the message would not fit in SNS's limit, the machine report's full results shrink (worst
 * verdicts kept) until it does; every instance is still listed, at least as `[instanceId, verdict]`.
 */
export function snsMessage(report: EventReport): SnsMessage {
  const text = plainText(report);
  const https = chatbotNotification(report);
  let message = "";
  for (const budget of [FULL_RESULTS_BUDGET_BYTES, 30_000, 10_000, 0]) {
    const machine = machineReport(report, budget);
    message = JSON.stringify({ default: text, https, sqs: machine, lambda: machine });
    if (Buffer.byteLength(message) <= SNS_MESSAGE_BUDGET_BYTES) break;
  }
  return {
    Subject: subjectLine(report),
    MessageStructure: "json",
    Message: message,
    MessageAttributes: messageAttributes(report),
  };
}

/** The attributes subscriptions filter on: the event's, on every part of a split report alike. */
function messageAttributes(report: EventReport): SnsMessage["MessageAttributes"] {
  const verdicts = VERDICTS.filter((v) => report.counts[v] > 0);
  return {
    verdict: { DataType: "String", StringValue: report.verdict },
    verdicts: {
      DataType: "String.Array",
      StringValue: JSON.stringify(verdicts.length ? verdicts : [report.verdict]),
    },
    // Email subscriptions of one account's team filter on these (organization mode: one hub topic for all).
    account: { DataType: "String", StringValue: toAscii(report.event.account).slice(0, 64) || "unknown" },
    region: { DataType: "String", StringValue: toAscii(report.event.region).slice(0, 64) || "unknown" },
  };
}

/**
 * Every SNS message of the event's report, to publish in order. One, exactly `snsMessage`'s, whenever that fits.
 * Past about 3,000 instances even the `[instanceId, verdict]` pairs of the machine copies pass SNS's 256 KiB, and the
 * report is split over the fewest messages that each fit: the results, worst first, as pairs (in full where a part
 * has room). Part 1 carries the whole event's email text and Chatbot notification; each later part a short text that
 * says which instances it carries. Every part's machine copy is the event's report (verdict, counts, event) with that
 * part's results and `part: { index, of }`; `mergeReportParts` puts them back together. Linear in the results: each
 * part is serialized a few times, never the whole report per result.
 */
export function snsMessages(report: EventReport): SnsMessage[] {
  const whole = snsMessage(report);
  if (Buffer.byteLength(whole.Message) <= SNS_MESSAGE_BUDGET_BYTES) return [whole];
  const sorted = worstFirst(report.results);
  const summary = { text: plainText(report), https: chatbotNotification(report) };
  // What one more result adds to a part as a pair: in both machine copies, escaped inside the message's JSON, with
  // its comma. Escaping is per character, so this is exact past a part's first pair (which brings the list's key);
  // the check after packing covers what the text's counts add.
  const cost = sorted.map(
    (r) => 2 * (Buffer.byteLength(JSON.stringify(JSON.stringify([r.instanceId, r.verdict]))) - 1),
  );
  const cheapest = cost.reduce((least, c) => Math.min(least, c), Number.POSITIVE_INFINITY);
  // While packing, the part count is not known: the result count stands in, never fewer digits than the real one.
  const atMost = Math.max(1, sorted.length);
  const ranges: [number, number][] = [];
  let start = 0;
  do {
    const index = ranges.length + 1;
    const from = start;
    const size = (to: number) =>
      publishedSize(partMessage(report, sorted, summary, from, to, { index, of: atMost }, 0));
    let end = Math.min(from + 1, sorted.length);
    let bytes = size(end);
    while (end < sorted.length && bytes + (cost[end] ?? 0) <= SNS_MESSAGE_BUDGET_BYTES) bytes += cost[end++] ?? 0;
    for (let over = size(end) - SNS_MESSAGE_BUDGET_BYTES; over > 0 && end > from; ) {
      end = Math.max(from, end - Math.ceil(over / cheapest) - 1);
      over = size(end) - SNS_MESSAGE_BUDGET_BYTES;
    }
    if (end === from && from < sorted.length) {
      throw new Error(
        `The report of event ${report.event.eventId} cannot be split: part ${index} does not fit one SNS message even with a single instance`,
      );
    }
    ranges.push([from, end]);
    start = end;
  } while (start < sorted.length);
  const of = ranges.length;
  return ranges.map(([from, to], i) => {
    const part = { index: i + 1, of };
    // Where a part has room (the last, usually), its worst results go in full, as in a single message.
    for (const budget of [FULL_RESULTS_BUDGET_BYTES, 30_000, 10_000]) {
      const message = partMessage(report, sorted, summary, from, to, part, budget);
      if (publishedSize(message) <= SNS_MESSAGE_BUDGET_BYTES) return message;
    }
    return partMessage(report, sorted, summary, from, to, part, 0);
  });
}

/**
 * One event's report from the machine copies of its messages: an unsplit report as it is, a split one with its
 * parts' results in order. Copies of one part (a retried Notify publishes its parts again) count once. Throws, naming
 * what is wrong, unless parts 1 to n of one event are all there and hold every counted instance exactly once.
 */
export function mergeReportParts(parts: readonly MachineReport[]): EventReport {
  const first = parts[0];
  if (!first) throw new Error("No report to merge: at least one message's machine copy is needed");
  const eventId = first.event.eventId;
  const of = first.part?.of;
  if (of === undefined) {
    if (parts.length > 1)
      throw new Error(`Event ${eventId}: ${parts.length} reports given, but the first is not a part`);
    return first;
  }
  const byIndex = new Map<number, MachineReport>();
  for (const p of parts) {
    if (p.event.eventId !== eventId) {
      throw new Error(`Report parts of different events: ${eventId} and ${p.event.eventId}`);
    }
    if (!p.part || p.part.of !== of || !Number.isInteger(p.part.index) || p.part.index < 1 || p.part.index > of) {
      throw new Error(
        `Event ${eventId}: a report part says ${p.part ? `${p.part.index} of ${p.part.of}` : "nothing of its part"}, the first says of ${of}`,
      );
    }
    if (!byIndex.has(p.part.index)) byIndex.set(p.part.index, p);
  }
  const indexes = Array.from({ length: of }, (_, i) => i + 1);
  const missing = indexes.filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    throw new Error(
      `Event ${eventId}: its report is in ${of} parts and part(s) ${missing.join(", ")} are missing; every result is in the ledger${first.fullDetail ? `: ${first.fullDetail.command}` : ""}`,
    );
  }
  const results = indexes.flatMap((i) => byIndex.get(i)?.results ?? []);
  const counted = VERDICTS.reduce((sum, v) => sum + first.counts[v], 0);
  const distinct = new Set(results.map((r) => r.instanceId)).size;
  if (results.length !== counted || distinct !== results.length) {
    throw new Error(
      `Event ${eventId}: its ${of} parts hold ${results.length} results (${distinct} instances), its counts ${counted}`,
    );
  }
  const { part: _part, ...report } = byIndex.get(1) ?? first;
  return { ...report, results };
}

/** Part `part` of a split report: the results `sorted[from, to)`, their detail within `budget` bytes. */
function partMessage(
  report: EventReport,
  sorted: readonly InstanceResult[],
  summary: { text: string; https: string },
  from: number,
  to: number,
  part: ReportPart,
  budget: number,
): SnsMessage {
  const results = sorted.slice(from, to);
  const machine = machineReport({ ...report, results }, budget, part);
  const first = part.index === 1;
  const text = first
    ? `${summary.text}\n\n${firstPartSentence(report, part.of)}`
    : laterPartText(report, part, from, results);
  const https = first ? summary.https : laterPartCard(report, part, from, results);
  return {
    Subject: subjectLine(report, ` [part ${part.index}/${part.of}]`),
    MessageStructure: "json",
    Message: JSON.stringify({ default: text, https, sqs: machine, lambda: machine }),
    MessageAttributes: {
      ...messageAttributes(report),
      // Only on a split report: a subscription can take part 1 alone (`part: ["1/…"]` by prefix) or leave it out.
      part: { DataType: "String", StringValue: `${part.index}/${part.of}` },
    },
  };
}

function firstPartSentence(report: EventReport, of: number): string {
  const rest = of === 2 ? "part 2 carries" : `parts 2 to ${of} carry`;
  return `This report is in ${of} SNS messages (event ${plainSafe(report.event.eventId)}): this is part 1 of ${of}, with the summary; ${rest} the verdicts of the remaining instances in their machine-readable copies (the sqs and lambda protocols).`;
}

/** The short email text of a later part: which part, which instances, and where the rest is. */
function laterPartText(report: EventReport, part: ReportPart, from: number, results: InstanceResult[]): string {
  const e = report.event;
  return [
    `imdsv2-guard: part ${part.index} of ${part.of} of the report on event ${plainSafe(e.eventId)}`,
    `Event:   ${plainSafe(e.eventName)} ${plainSafe(e.eventId)} at ${plainSafe(e.eventTime)}`,
    `Account: ${plainSafe(accountLabel(e))}  Region: ${plainSafe(e.region)}`,
    "",
    `This part carries instances ${from + 1} to ${from + results.length} of ${report.results.length} (worst verdict first): ${countsText(countsOf(results))}. Their verdicts are in this message's machine-readable copies (the sqs and lambda protocols). Part 1 has the summary: the event's verdict (${report.verdict}: ${countsLine(report)}), its actor and the next steps.`,
    "",
    report.fullDetail
      ? ledgerSentence(report.fullDetail)
      : "The guard could not store the instances' full results, so these messages' verdicts are all there is.",
  ].join("\n");
}

/** The Chatbot notification of a later part (only part 1 goes to Slack's topic; this is for the alert topic's). */
function laterPartCard(report: EventReport, part: ReportPart, from: number, results: InstanceResult[]): string {
  const e = report.event;
  return JSON.stringify({
    version: "1.0",
    source: "custom",
    id: `${e.eventId}#part-${part.index}`,
    content: {
      textType: "client-markdown",
      title: `${emojiFor(report.verdict)} imdsv2-guard: ${report.verdict.toUpperCase()} (${markdownSafe(e.eventName)}), part ${part.index} of ${part.of}`,
      description: [
        `Event \`${codeSafe(e.eventId)}\` in ${markdownSafe(e.account)}/${markdownSafe(e.region)}`,
        `Instances ${from + 1} to ${from + results.length} of ${report.results.length}: ${countsText(countsOf(results))}, their verdicts in this message's machine-readable copy`,
        "Part 1 has the summary and the next steps",
      ].join("\n"),
      nextSteps: [],
      keywords: [report.verdict, e.region, e.account, report.mode].map((k) => k.slice(0, 64)),
    },
    metadata: { threadId: e.eventId, enableCustomActions: false },
  });
}

/** The bytes SNS counts against its 256 KiB (body and attributes), and the subject too, to be safe. */
function publishedSize(message: SnsMessage): number {
  let size = Buffer.byteLength(message.Message) + Buffer.byteLength(message.Subject);
  for (const [name, a] of Object.entries(message.MessageAttributes)) {
    size += Buffer.byteLength(name) + Buffer.byteLength(a.DataType) + Buffer.byteLength(a.StringValue);
  }
  return size;
}

function countsOf(results: readonly InstanceResult[]): Record<Verdict, number> {
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const r of results) counts[r.verdict]++;
  return counts;
}

/** The account as people know it: its name in the organization where known, and its id. */
function accountLabel(e: EventRef): string {
  return e.accountName ? `${e.accountName} (${e.account})` : e.account;
}

function listed(report: EventReport): InstanceResult[] {
  return worstFirst(report.results).slice(0, MAX_LISTED);
}

/** Worst first, so a truncated list still shows what needs attention. */
function worstFirst(results: readonly InstanceResult[]): InstanceResult[] {
  return [...results].sort((a, b) => VERDICT_SEVERITY[b.verdict] - VERDICT_SEVERITY[a.verdict]);
}

/**
 * A `fail` the probe proved (it carries the probe's reading) came while EC2 said HttpTokens=required: nobody reverted
 * anything, something on the instance answers token-less requests. The fix is on the instance, not in a launch path.
 */
const FAIL_ANSWERED_DESPITE_REQUIRED =
  "IMDSv1 still answers although EC2 says HttpTokens=required: software on the instance answers token-less requests (a local metadata proxy or credential agent, or a NAT rule for 169.254.169.254 that points at one). Find the process that listens for the metadata address and make it require IMDSv2 tokens; the next sweep proves the instance again.";

/** Each verdict's next step, and for `fail` the one that fits how it failed (both, when both happened). */
function verdictSteps(report: EventReport): string[] {
  return VERDICTS.filter((v) => report.counts[v] > 0).flatMap((v) => {
    if (v !== "fail") return NEXT_STEPS[v] ? [NEXT_STEPS[v]] : [];
    const fails = report.results.filter((r) => r.verdict === "fail");
    return [
      ...(fails.some((r) => r.reading !== undefined) ? [FAIL_ANSWERED_DESPITE_REQUIRED] : []),
      ...(fails.some((r) => r.reading === undefined) && NEXT_STEPS.fail ? [NEXT_STEPS.fail] : []),
    ];
  });
}

function nextSteps(report: EventReport): string[] {
  const steps = [...sourceFixes(report.results, report.event.region, report.accountPosture), ...verdictSteps(report)];
  if (report.problem) steps.unshift("The event could not be read: look it up by its id in CloudTrail.");
  return steps;
}

function launchTemplateText(e: EventRef): string {
  const lt = e.launchTemplate;
  if (!lt) return "";
  return `${lt.id ?? lt.name ?? ""}${lt.version ? ` version ${lt.version}` : ""}`;
}

function countsLine(report: EventReport): string {
  return countsText(report.counts);
}

function countsText(counts: Record<Verdict, number>): string {
  return VERDICTS.filter((v) => counts[v] > 0)
    .map((v) => `${counts[v]} ${v}`)
    .join(", ");
}

function emojiFor(verdict: Verdict): string {
  return verdict === "pass" ? "✅" : verdict === "fail" || verdict === "error" ? "🚨" : "⚠️";
}
