/** One line, no control characters: text for email bodies and logs. */
export function plainSafe(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ").slice(0, 1000);
}

/** Escapes markdown so user-controlled text renders as text, on one line. */
export function markdownSafe(value: string): string {
  return plainSafe(value).replace(/[\\`*_~[\]()<>#|>!{}-]/g, (c) => `\\${c}`);
}

/** Inside an inline code span only the backtick can break out. */
export function codeSafe(value: string): string {
  return plainSafe(value).replaceAll("`", "'");
}

/** Printable ASCII on one line, as SNS requires of a subject. */
export function toAscii(value: string): string {
  return plainSafe(value).replace(/[^\x20-\x7e]/g, "?");
}
