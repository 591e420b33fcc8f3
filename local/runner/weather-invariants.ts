import type { SimAccount } from "../sim/sim-account.js";
import type { FlowRun } from "./run-flow.js";

/**
 * What must hold under any weather, judged against the same scenario's calm run (no weather) and against the
 * simulated account's own truth, never against what the guard says of itself:
 * - exactly one report per event the calm run reported, listing the same instances, each once: weather may delay,
 *   duplicate or throttle, but never lose or double a verdict or a report;
 * - every execution ends (none failed, nothing left in a dead-letter queue);
 * - never `pass` while something on the instance still answers IMDSv1 (the simulated instance's truth at the end);
 * - never `fail` where the calm run had none: a stale read or a throttle is not a revert;
 * - never a claim of a change not made: `set-required` only where the account saw the guard's modify take effect.
 * Returns one sentence per violation; empty when all hold.
 */
export function weatherViolations(calm: FlowRun, run: FlowRun): string[] {
  const violations: string[] = [];
  const reportsByEvent = (r: FlowRun) => {
    const out = new Map<string, string[][]>();
    for (const report of r.reports) {
      const lists = out.get(report.event.eventId) ?? [];
      lists.push(report.results.map((x) => x.instanceId));
      out.set(report.event.eventId, lists);
    }
    return out;
  };
  const expected = reportsByEvent(calm);
  const got = reportsByEvent(run);
  for (const [eventId, [instances = []]] of expected) {
    const lists = got.get(eventId) ?? [];
    if (lists.length !== 1) {
      violations.push(`event ${eventId}: ${lists.length} reports, expected 1`);
      continue;
    }
    const listed = lists[0] ?? [];
    if (new Set(listed).size !== listed.length) violations.push(`event ${eventId}: an instance is listed twice`);
    const missing = instances.filter((id) => !listed.includes(id));
    const extra = listed.filter((id) => !instances.includes(id));
    if (missing.length) violations.push(`event ${eventId}: no verdict for ${missing.join(", ")}`);
    if (extra.length)
      violations.push(`event ${eventId}: verdicts for instances it does not cover: ${extra.join(", ")}`);
  }
  for (const eventId of got.keys()) {
    if (!expected.has(eventId)) violations.push(`event ${eventId}: reported, but the calm run reported nothing`);
  }
  for (const e of run.executions.filter((x) => x.status === "failed")) {
    violations.push(`execution ${e.name ?? e.eventIndex} failed: ${e.error}`);
  }
  for (const a of run.asyncInvocations.filter((x) => x.deadLettered !== undefined)) {
    violations.push(`${a.functionName} ended in its dead-letter queue: ${a.deadLettered}`);
  }

  const calmFails = new Set(
    calm.reports.flatMap((r) =>
      r.results.filter((x) => x.verdict === "fail").map((x) => `${r.event.eventId}/${x.instanceId}`),
    ),
  );
  const sims = accountsOf(run);
  const lastVerdict = new Map<string, string>();
  for (const report of run.reports) {
    for (const result of report.results) {
      const key = `${report.event.eventId}/${result.instanceId}`;
      lastVerdict.set(result.instanceId, result.verdict);
      if (result.verdict === "fail" && !calmFails.has(key)) {
        violations.push(`${key}: fail under weather, not in the calm run (${result.reason})`);
      }
      if (result.enforcement?.kind === "set-required") {
        const modified = sims.some((sim) => sim.modifiedInstanceIds.includes(result.instanceId));
        if (!modified) violations.push(`${key}: claims set-required, but no modify of the guard took effect`);
      }
    }
  }
  for (const [instanceId, verdict] of lastVerdict) {
    if (verdict !== "pass") continue;
    const state = sims.map((sim) => sim.instance(instanceId)).find((s) => s !== undefined);
    if (!state || state.state === "terminated") continue;
    const answersV1 =
      state.httpEndpoint === "enabled" &&
      (state.spec.imds === "answers-without-token" || state.imdsTokens === "optional");
    if (answersV1) violations.push(`${instanceId}: its last verdict is pass, but it still answers IMDSv1`);
  }
  return violations;
}

/** The simulated accounts of a run: the one account, or the hub and every member account of the organization. */
function accountsOf(run: FlowRun): SimAccount[] {
  return [run.sim, ...(run.org?.memberAccounts().map((m) => m.sim) ?? [])];
}
