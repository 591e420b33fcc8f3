import { commandRegion } from "../domain/root-cause.js";

/**
 * Where a report's full per-instance detail is kept when the message cannot carry it: the guard's own ledger, which
 * FinalizeBatch writes one item per batch to (`result#<batch>`), kept for a week (TTL). The stack creates the table,
 * so the pointer never names a subscription or a bucket that may not exist.
 */
export interface FullDetail {
  where: "ledger";
  tableName: string;
  eventId: string;
  region: string;
  keptForDays: number;
  /** A command that prints every stored result of the event, as JSON arrays per batch. */
  command: string;
}

/** Characters that need no shell quoting inside single quotes and in JSON: anything else becomes a placeholder. */
const SAFE_TOKEN = /^[A-Za-z0-9._:-]{1,255}$/;

/** The ledger location of an event's results, with the AWS CLI command that reads them. */
export function ledgerDetail(tableName: string, eventId: string, region: string, keptForDays: number): FullDetail {
  const table = SAFE_TOKEN.test(tableName) ? tableName : "<ledger-table>";
  const id = SAFE_TOKEN.test(eventId) ? eventId : "<eventId>";
  const values = JSON.stringify({ ":e": { S: id }, ":prefix": { S: "result#" } });
  const command = [
    `aws dynamodb query --region ${commandRegion(region)} --table-name ${table}`,
    `--key-condition-expression 'eventId = :e AND begins_with(#item, :prefix)'`,
    `--expression-attribute-names '{"#item":"item"}' --expression-attribute-values '${values}'`,
    `--query 'Items[].results.S' --output text`,
  ].join(" ");
  return { where: "ledger", tableName: table, eventId: id, region, keptForDays, command };
}

/** The sentence a human format puts where it stops listing instances. */
export function hiddenDetailSentence(hidden: number, detail: FullDetail | undefined): string {
  if (!detail) {
    return `... and ${hidden} more, not listed here; the guard could not store their detail, so only the counts above include them.`;
  }
  return `... and ${hidden} more. ${ledgerSentence(detail)}`;
}

/** Where every instance's full result is kept, with the command that prints them (a split report's later parts). */
export function ledgerSentence(detail: FullDetail): string {
  return `Every instance's full result is in the guard's ledger (DynamoDB table ${detail.tableName}, eventId ${detail.eventId}) for ${detail.keptForDays} days: ${detail.command}`;
}
