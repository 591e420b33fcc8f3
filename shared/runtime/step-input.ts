import type * as z from "zod";
import { NonRetryableInvalidInputError } from "../domain/errors.js";
import { describeIssues } from "./config.js";

/**
 * Validates what a step receives against what the previous step promised. A mismatch is a bug or a tampered
 * execution, never a transient condition, so it is not retried; the message names the field.
 */
export function parseStepInput<T extends z.ZodType>(schema: T, input: unknown, step: string): z.infer<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new NonRetryableInvalidInputError(`${step} received invalid input: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}
