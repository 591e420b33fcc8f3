import type { PublishCommandInput } from "@aws-sdk/client-sns";
import { awsError, type SimContext } from "./sim-context.js";

/** A published SNS message as the simulated topic received it. */
export interface SimPublished {
  at: number;
  input: PublishCommandInput;
}

/**
 * The simulated SNS topic the guard publishes its reports to.
 *
 * | Behaviour | AWS documentation page |
 * | --- | --- |
 * | A message whose body and attributes exceed 262,144 bytes (256 KiB, the topic's default MaximumMessageSize) is refused with InvalidParameter | "Amazon SNS quotas" ("Amazon Simple Notification Service endpoints and quotas"); "Publishing large messages with Amazon SNS" |
 * | A 500 (InternalErrorException) the scenario asks for, this many times first | "Publish" (Errors) |
 */
export class SimSns {
  readonly published: SimPublished[] = [];

  constructor(
    private readonly ctx: SimContext,
    private failuresLeft: number,
  ) {}

  async publish(input: PublishCommandInput) {
    const now = Date.now();
    this.ctx.gate("Publish", now);
    const size = publishedBytes(input);
    if (size > SNS_MAX_MESSAGE_BYTES) {
      throw awsError(
        "InvalidParameterException",
        `Invalid parameter: Message too long (${size} bytes; at most ${SNS_MAX_MESSAGE_BYTES} with its attributes)`,
      );
    }
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw awsError("InternalErrorException", "simulated SNS 500", 500);
    }
    this.published.push({ at: now, input });
    return { MessageId: `sim-${this.published.length}` };
  }
}

/** A topic's default MaximumMessageSize: 256 KiB, body and attributes together. */
export const SNS_MAX_MESSAGE_BYTES = 262_144;

/** The bytes SNS counts: the UTF-8 message, and each attribute's name, type and value. */
export function publishedBytes(input: PublishCommandInput): number {
  let size = Buffer.byteLength(input.Message ?? "", "utf8");
  for (const [name, attribute] of Object.entries(input.MessageAttributes ?? {})) {
    size += Buffer.byteLength(name, "utf8") + Buffer.byteLength(attribute.DataType ?? "", "utf8");
    size += Buffer.byteLength(attribute.StringValue ?? "", "utf8") + (attribute.BinaryValue?.byteLength ?? 0);
  }
  return size;
}
