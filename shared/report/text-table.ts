/** Used when neither COLUMNS nor a terminal says how wide the output may be (a pipe, a file, CI logs): a terminal's. */
export const DEFAULT_WIDTH = 80;

/**
 * How wide terminal output may be: COLUMNS when set (shells export it, and a user can), else the terminal's width,
 * else DEFAULT_WIDTH.
 */
export function outputWidth(env: Record<string, string | undefined>, stream: { isTTY?: boolean; columns?: number }) {
  const fromEnv = Number.parseInt(env.COLUMNS ?? "", 10);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  if (stream.isTTY && typeof stream.columns === "number" && stream.columns > 0) return stream.columns;
  return DEFAULT_WIDTH;
}

export interface TableColumn {
  header: string;
  /** Right-aligned (numbers). */
  right?: boolean;
  /**
   * The column may be narrowed to this many characters to fit the width; its text then wraps inside the column,
   * on more lines. Columns without it keep their width, so short, decisive cells (a verdict, a readiness) stay whole.
   */
  minWidth?: number;
}

const GAP = "  ";

/**
 * A plain-text table that fits `width`: wrappable columns give up width, the one with most to spare first, until the rows fit or every
 * one is at its minimum. Continuation lines leave the other columns blank, so each row still reads left to right.
 */
export function textTable(
  columns: readonly TableColumn[],
  rows: readonly (readonly string[])[],
  width: number,
): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? "").length)));
  const total = () => widths.reduce((a, b) => a + b, 0) + GAP.length * (columns.length - 1);
  let overflow = total() - width;
  while (overflow > 0) {
    // The column with the most to spare gives first: a long exemption reason wraps before a short name does.
    let widest = -1;
    let widestSlack = 0;
    for (const [i, c] of columns.entries()) {
      const slack = c.minWidth === undefined ? 0 : (widths[i] ?? 0) - Math.max(c.minWidth, c.header.length);
      if (slack > widestSlack) {
        widest = i;
        widestSlack = slack;
      }
    }
    if (widest < 0) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
    overflow--;
  }
  const render = (cells: readonly string[]): string[] => {
    const wrapped = columns.map((c, i) =>
      c.minWidth === undefined ? [cells[i] ?? ""] : wrapText(cells[i] ?? "", widths[i] ?? 0),
    );
    const height = Math.max(...wrapped.map((w) => w.length));
    return Array.from({ length: height }, (_, line) =>
      columns
        .map((c, i) => {
          const text = wrapped[i]?.[line] ?? "";
          const w = widths[i] ?? 0;
          if (c.right) return text.padStart(w);
          return i === columns.length - 1 ? text : text.padEnd(w);
        })
        .join(GAP)
        .trimEnd(),
    );
  };
  return [
    ...render(columns.map((c) => c.header)),
    widths.map((w) => "-".repeat(w)).join(GAP),
    ...rows.flatMap(render),
  ].join("\n");
}

/**
 * Breaks text into lines of at most `width` characters: at spaces where it can, after a hyphen or inside a word
 * where it must. Leading spaces are kept on every line.
 */
export function wrapText(text: string, width: number): string[] {
  if (text.length <= width) return [text];
  const indent = /^ */.exec(text)?.[0] ?? "";
  const room = width - indent.length;
  if (room < 1) return [text];
  const lines: string[] = [];
  let line = "";
  for (const whole of text.slice(indent.length).split(/ +/).filter(Boolean)) {
    let word = whole;
    while (word.length > 0) {
      const space = line === "" ? room : room - line.length - 1;
      if (word.length <= space) {
        line = line === "" ? word : `${line} ${word}`;
        word = "";
      } else if (line !== "" && (word.length <= room || space < 2)) {
        lines.push(line);
        line = "";
      } else {
        const piece = word.slice(0, space);
        const hyphen = piece.lastIndexOf("-");
        const cut = hyphen > 0 ? hyphen + 1 : piece.length;
        lines.push(line === "" ? word.slice(0, cut) : `${line} ${word.slice(0, cut)}`);
        line = "";
        word = word.slice(cut);
      }
    }
  }
  if (line !== "") lines.push(line);
  return lines.map((l) => `${indent}${l}`);
}
