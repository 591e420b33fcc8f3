import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { runFlow } from "../../local/runner/run-flow.js";
import { dynamodb } from "../../shared/aws/clients/dynamodb.js";
import { instanceResultSchema } from "../../shared/domain/model.js";
import { allResults, instanceIds, runInstancesEvent, scenario } from "./helpers.js";

describe("a report too big to list every instance", () => {
  it("says exactly where every instance's full result is, and the command given reads all of them", async () => {
    // Prepare: more instances than a message lists (50), in two batches.
    const ids = instanceIds(70);
    const s = scenario({ events: [runInstancesEvent(ids, "e-big-1")], instances: ids.map((id) => ({ id })) });

    // Act
    const run = await runFlow(s);

    // Assess: the email text names the ledger and gives the command.
    const [report] = run.reports;
    const detail = report?.fullDetail;
    expect(detail).toMatchObject({
      where: "ledger",
      eventId: "e-big-1",
      tableName: "imdsv2-guard-local-EventLedgerTableName",
    });
    const text = (JSON.parse(run.sim.published[0]?.input.Message ?? "{}") as { default: string }).default;
    expect(text).toContain("... and 20 more. Every instance's full result is in the guard's ledger");
    expect(text).toContain(detail?.command);
    expect(detail?.command).toContain(`--table-name ${detail?.tableName} `);
    expect(detail?.command).toContain(`"S":"e-big-1"`);

    // The same query, against the same simulated table, returns every instance's full result.
    run.sim.install();
    try {
      const page = await dynamodb.send(
        new QueryCommand({
          TableName: detail?.tableName,
          KeyConditionExpression: "eventId = :e AND begins_with(#item, :prefix)",
          ExpressionAttributeNames: { "#item": "item" },
          ExpressionAttributeValues: { ":e": { S: detail?.eventId ?? "" }, ":prefix": { S: "result#" } },
        }),
      );
      const stored = (page.Items ?? []).flatMap((item) =>
        instanceResultSchema.array().parse(JSON.parse(item.results?.S ?? "[]")),
      );
      expect(stored.map((r) => r.instanceId).sort()).toEqual([...ids].sort());
      expect(stored).toEqual(expect.arrayContaining(allResults(run).map(({ eventId: _e, ...r }) => r)));
    } finally {
      run.sim.restore();
    }
  });

  it("promises nothing when the ledger could not store the results", async () => {
    const ids = instanceIds(60);
    const run = await runFlow(scenario({ events: [runInstancesEvent(ids)], instances: ids.map((id) => ({ id })) }), {
      faults: { ledgerUnavailable: true },
    });
    expect(run.reports[0]?.fullDetail).toBeUndefined();
    const text = (JSON.parse(run.sim.published[0]?.input.Message ?? "{}") as { default: string }).default;
    expect(text).toContain("... and 10 more, not listed here; the guard could not store their detail");
    expect(text).not.toContain("SQS/Lambda subscription");
  });
});
