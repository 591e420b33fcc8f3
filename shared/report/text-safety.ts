/** One line, no control characters: text for email bodies and logs. */
export function plainSafe(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ").slice(0, 1000);
}

/**
 * Slack's three reserved characters as the HTML entities Slack asks for: `<` opens a link, a mention or `<!here>`,
 * `&` an entity, and `>` at a line start a quote. Our own text needs this too (`--instances <id>`).
 */
export function slackEntities(value: string): string {
  return value.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * Mrkdwn's formatting marks, and the look-alike each is shown as in user-controlled text. Slack has no escape
 * character (a backslash shows as a backslash), so a tag value's `*PASS*` is shown with U+2217 and cannot turn bold.
 */
const SLACK_MARKS: Record<string, string> = { "*": "\u2217", _: "\u02cd", "~": "\u223c", "`": "'" };

/**
 * User-controlled text (tag values, names, event fields) for an AWS Chatbot `client-markdown` card, which Slack
 * renders as mrkdwn: on one line, Slack's reserved characters as entities, and formatting marks as look-alikes.
 * Everything else (parentheses, hyphens, colons, timestamps) shows as typed, without backslashes.
 */
export function markdownSafe(value: string): string {
  return (
    slackEntities(plainSafe(value))
      .replace(/[*_~`]/g, (c) => SLACK_MARKS[c] ?? c)
      // Mrkdwn has no `[text](url)` link, but the other chat platforms Chatbot renders for (Teams) do: a space
      // between the brackets keeps a tag from dressing a URL as other text, and leaves ordinary parentheses alone.
      .replaceAll("](", "] (")
  );
}

/** Inside an inline code span only the backtick can break out. */
export function codeSafe(value: string): string {
  return plainSafe(value).replaceAll("`", "'");
}

/** Printable ASCII on one line, as SNS requires of a subject. */
export function toAscii(value: string): string {
  return plainSafe(value).replace(/[^\x20-\x7e]/g, "?");
}
