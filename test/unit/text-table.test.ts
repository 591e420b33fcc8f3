import { describe, expect, it } from "vitest";
import { outputWidth, textTable, wrapText } from "../../shared/report/text-table.js";

describe("outputWidth", () => {
  it("takes COLUMNS, else the terminal's width, else 80", () => {
    // Act + Assess
    expect(outputWidth({ COLUMNS: "72" }, { isTTY: true, columns: 200 })).toBe(72);
    expect(outputWidth({}, { isTTY: true, columns: 200 })).toBe(200);
    expect(outputWidth({ COLUMNS: "wide" }, { isTTY: false, columns: 200 })).toBe(80);
    expect(outputWidth({}, {})).toBe(80);
  });
});

describe("wrapText", () => {
  it("breaks at spaces, after a hyphen inside a long word, and keeps the leading indent", () => {
    // Act + Assess
    expect(wrapText("one two three four", 9)).toEqual(["one two", "three", "four"]);
    expect(wrapText("batch-worker-1", 8)).toEqual(["batch-", "worker-1"]);
    expect(wrapText("abcdefghij", 4)).toEqual(["abcd", "efgh", "ij"]);
    expect(wrapText("  a b c d", 5)).toEqual(["  a b", "  c d"]);
  });
});

describe("textTable", () => {
  const columns = [{ header: "id" }, { header: "reason", minWidth: 10 }, { header: "readiness" }];
  const rows = [["i-1", "a reason that is far too long for a narrow terminal to show on one line", "READY"]];

  it("wraps the wrappable column to fit, and keeps the fixed ones whole", () => {
    // Act
    const lines = textTable(columns, rows, 40).split("\n");

    // Assess
    expect(lines.every((l) => l.length <= 40)).toBe(true);
    expect(lines[2]).toMatch(/^i-1 {2}a reason .* {2}READY$/);
    expect(lines.slice(3).every((l) => l.startsWith("     ") && !l.includes("READY"))).toBe(true);
    expect(
      lines
        .slice(2)
        .map((l) => l.slice(5, l.length).replace("READY", "").trim())
        .join(" "),
    ).toBe(rows[0]?.[1]);
  });

  it("leaves a table that fits as it is", () => {
    // Act
    const text = textTable(columns, rows, 200);

    // Assess
    expect(text.split("\n")).toHaveLength(3);
  });
});
