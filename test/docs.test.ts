import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The README is read in five minutes and everything else is one link away (issue 22), so what keeps that true is
 * checked here: the README's length and first commands, and that every relative link in the README, CONTRIBUTING.md
 * and docs/ reaches a file, and a heading where it names one.
 */

const README_MAX_LINES = 250;

/** The pages a reader can land on: every relative link in them must resolve. */
function documentationFiles(): string[] {
  const docs = readdirSync("docs", { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".md"))
    .map((name) => join("docs", name));
  return ["README.md", "CONTRIBUTING.md", ...docs.sort()];
}

/** Lines outside fenced code blocks (``` or ~~~), where a `#` starts a shell comment rather than a heading. */
function proseLines(markdown: string): string[] {
  const lines: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split("\n")) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker !== undefined && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      continue;
    }
    if (fence === undefined) lines.push(line);
  }
  return lines;
}

/**
 * GitHub's anchor for a heading (github-slugger): the rendered text lower-cased, punctuation and symbols dropped
 * (letters, marks, digits, `_`, `-` and spaces stay), each space a hyphen; a repeated slug gets `-1`, `-2`, ...
 */
function githubSlug(heading: string): string {
  const rendered = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // a link renders as its text
    .replace(/<[^>]+>/g, "") // inline HTML
    .replace(/`/g, "")
    .replace(/(\*\*|__|\*)/g, "");
  return rendered
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor a page offers, in GitHub's numbering of repeated headings. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(markdown)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const slug = githubSlug(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/**
 * Link targets of inline links, images and reference definitions, outside code blocks and code spans. A link's text
 * may wrap onto the next line, so the prose is searched whole, not line by line.
 */
function linkTargets(markdown: string): string[] {
  // A code span's text is not a link, but a link's text may be a code span: keep the brackets, blank the code.
  const prose = proseLines(markdown)
    .map((line) => line.replace(/(`+)(.+?)\1/g, "code"))
    .join("\n");
  const inline = prose.matchAll(/!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g);
  const definitions = prose.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/gm);
  return [...inline, ...definitions].flatMap((match) => (match[1] === undefined ? [] : [match[1]]));
}

/** What is wrong with each relative link of `file` (whose text is `markdown`): a missing file or heading. */
function brokenLinks(file: string, markdown: string, read: (path: string) => string | undefined): string[] {
  const problems: string[] = [];
  for (const target of linkTargets(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...: not this repository's to check
    const [pathPart = "", fragment] = target.split("#", 2);
    const path = pathPart === "" ? file : normalize(join(dirname(file), decodeURIComponent(pathPart)));
    if (path.startsWith("..")) {
      problems.push(`${file}: ${target} leaves the repository`);
      continue;
    }
    const text = read(path);
    if (text === undefined) {
      problems.push(`${file}: ${target} -> ${path} does not exist`);
      continue;
    }
    if (fragment !== undefined && path.endsWith(".md") && !anchorsOf(text).has(decodeURIComponent(fragment))) {
      problems.push(`${file}: ${target} -> no heading #${fragment} in ${path}`);
    }
  }
  return problems;
}

/** The repository as the link checker sees it: a file's text, `""` for a directory, undefined when absent. */
function readFromRepository(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch {
    return ""; // a directory: GitHub shows its listing
  }
}

describe("GitHub's heading anchors", () => {
  it.each([
    ["What `npm start` shows", "what-npm-start-shows"],
    ["Triggers: what starts the guard, and what each needs", "triggers-what-starts-the-guard-and-what-each-needs"],
    ["Crash safety: a Lambda that dies at the worst moment", "crash-safety-a-lambda-that-dies-at-the-worst-moment"],
    ["Bursts under EC2's throttling", "bursts-under-ec2s-throttling"],
    ["JSON (`--json`)", "json---json"],
    ["Windows PowerShell 5.1 and PowerShell 7", "windows-powershell-51-and-powershell-7"],
    ["Check it: `doctor` and `selftest`", "check-it-doctor-and-selftest"],
  ])("slugs %s as GitHub does", (heading, slug) => {
    expect(githubSlug(heading)).toBe(slug);
  });

  it("numbers a repeated heading and ignores '#' lines in code blocks", () => {
    // Prepare
    const page = "# Deploy\n\n```sh\n# 1. The hub\n```\n\n## Deploy\n";

    // Act
    const problems = brokenLinks("page.md", "[a](#deploy) [b](#deploy-1) [c](#1-the-hub)", () => page);

    // Assess
    expect(problems).toEqual(["page.md: #1-the-hub -> no heading #1-the-hub in page.md"]);
  });
});

describe("the link checker", () => {
  it("reports a missing file, a missing heading and a link out of the repository, and nothing else", () => {
    // Prepare
    const pages: Record<string, string> = { "docs/b.md": "# B\n\n## Known part\n", "README.md": "# R\n" };
    const markdown = [
      "[ok](b.md) [ok](b.md#known-part) [ok](../README.md) [ok](https://example.com/x.md#nothing)",
      "[`code` as text](b.md#known-part) `[not a link](nowhere.md)`",
      "[missing](c.md) [no heading](b.md#unknown) [out](../../etc/passwd) [a link whose text",
      "wraps](b.md#wrapped)",
      "```md",
      "[in a code block](nowhere.md)",
      "```",
      "[ref]: missing-too.md",
    ].join("\n");

    // Act
    const problems = brokenLinks("docs/a.md", markdown, (path) => pages[path]);

    // Assess
    expect(problems).toEqual([
      "docs/a.md: c.md -> docs/c.md does not exist",
      "docs/a.md: b.md#unknown -> no heading #unknown in docs/b.md",
      "docs/a.md: ../../etc/passwd leaves the repository",
      "docs/a.md: b.md#wrapped -> no heading #wrapped in docs/b.md",
      "docs/a.md: missing-too.md -> docs/missing-too.md does not exist",
    ]);
  });
});

describe("the documentation", () => {
  it(`keeps the README to ${README_MAX_LINES} lines`, () => {
    // Act
    const lines = readFileSync("README.md", "utf8").trimEnd().split("\n").length;

    // Assess
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it("starts the README with the two commands: npm ci && npm start, then npm test", () => {
    // Prepare
    const readme = readFileSync("README.md", "utf8");
    const firstBlock = /^```[a-z]*\n([\s\S]*?)^```/m.exec(readme);
    const firstSection = readme.search(/^## /m);

    // Act
    const commands = (firstBlock?.[1] ?? "")
      .split("\n")
      .map((line) => line.replace(/\s+#.*$/, "").trim())
      .filter((line) => line !== "");

    // Assess
    expect(firstBlock?.index).toBeLessThan(firstSection);
    expect(commands.slice(0, 2)).toEqual(["npm ci && npm start", "npm test"]);
  });

  it.each(documentationFiles())("every relative link in %s resolves, to a heading where one is named", (file) => {
    // Act
    const problems = brokenLinks(file, readFileSync(file, "utf8"), readFromRepository);

    // Assess
    expect(problems).toEqual([]);
  });

  it("links every page under docs/ from the README or another page", () => {
    // Prepare
    const files = documentationFiles();
    const linked = new Set<string>();
    for (const file of files) {
      for (const target of linkTargets(readFileSync(file, "utf8"))) {
        const pathPart = target.split("#", 1)[0] ?? "";
        if (pathPart !== "" && !/^[a-z][a-z0-9+.-]*:/i.test(target)) {
          linked.add(relative(".", normalize(join(dirname(file), pathPart))));
        }
      }
    }

    // Act
    const orphans = files.filter((file) => file.startsWith("docs") && !linked.has(file));

    // Assess
    expect(orphans).toEqual([]);
  });
});
