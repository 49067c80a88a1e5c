"""Quality checks on one section's Markdown, and the repairs that need no API call.

Every check returns a ``Verdict`` (name, passed, value, detail) with its threshold from the
config's ``qc`` block; ``check_section`` runs them all. The API repairs that act on the failed
verdicts live in ``bookgen.writing.repair``; the cross-section overlap is computed in
``bookgen.writing.quality_report`` when the report is built.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from string import Template
from typing import Any

from bookgen.formats.book import find_headings

CHECKS = (
    "length",
    "key_points",
    "headings",
    "heading_levels",
    "truncation",
    "meta_text",
    "prompt_echo",
    "markdown",
    "part_overlap",
    "seams",
)

# Assistant chatter: phrases a textbook never contains but chat replies often do.
META_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^\W*(?:certainly|sure|of course|absolutely|great question)\s*"
        r"(?:!|[.,]?\s*$|[,.]\s*(?:here|i|let)\b)",
        r"^\W*here(?:'s| is| are)\s+(?:the|your)\s+(?:\w+\s+){0,2}"
        r"(?:section|chapter|draft|continuation|subsection)\b",
        r"\bas an ai\b",
        r"\bas a (large )?language model\b",
        r"\bi hope (this|that) helps\b",
        r"\blet me know if\b",
        r"\bfeel free to (ask|reach out|let me know)\b",
        r"\b(i'd|i would) be (happy|glad) to\b",
        r"\bwould you like me to\b",
        r"\bis there anything else\b",
    )
]
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_OPENING_FENCE_RE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[ \t]*[A-Za-z][\w+-]*[ \t]*$")
_INLINE_CODE_RE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# What may follow the last word of a sentence: emphasis, closing quotes, footnote marks.
_TRAILING_MARKS_RE = re.compile(r"(?:[*_\"'”’»]|\[\^[^\]\s]+\])+$")
_URL_END_RE = re.compile(r"(?:https?://|www\.)[^\s<>]+>?$")
# List items, numbered steps, definitions (":" or "~") and footnote definitions.
_ITEM_RE = re.compile(r"^(?:[-*+]|\d{1,3}[.)]|[A-Za-z][.)]|[:~]|\[\^[^\]\s]+\]:)\s+(.*)$")
_ATTRIBUTION_RE = re.compile(r"^(?:[—–]|--)\s*\S")
_RULE_RE = re.compile(r"^[-+=:| ]{3,}$")
_DANGLING_WORDS = frozenset({"a", "an", "and", "or", "of", "than", "the", "which", "with"})
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_SUMMARY_RE = re.compile(r"summary|conclusion|recap|wrap|takeaway|review", re.IGNORECASE)
_STOPWORDS = frozenset(
    """about above after again against also among and are because been before being below
    between both but can could does doing down during each few for from further had has have
    having her here hers him his how into its itself just more most much not now off once only
    other our ours out over own same she should some such than that the their theirs them then
    there these they this those through too under until very was were what when where which
    while who whom why will with without would you your yours""".split()  # noqa: SIM905
)


@dataclass
class Verdict:
    """One check's result; ``value`` is what was measured, ``detail`` says it for people."""

    name: str
    passed: bool
    value: Any = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    """What a section is checked against."""

    target_words: int
    key_points: tuple[str, ...] = ()
    planned_headings: list[str] | None = None  # None: the section was not planned
    echo_patterns: list[re.Pattern[str]] = field(default_factory=list)
    parts: list[list[str]] | None = None  # planned headings of each part written on its own


@dataclass
class Part:
    """A stretch of a section: the text before its first subsection heading, or a subsection."""

    heading: str | None
    start: int  # first line
    end: int  # line after the last
    words: int


# -- text structure ----------------------------------------------------------------------------


def word_count(text: str) -> int:
    """Words as the usage file counts them."""
    return len(text.split())


def code_lines(lines: list[str]) -> tuple[set[int], int | None]:
    """Indexes of lines inside fenced code (fences included), and the line of a fence left
    open: one never closed, or one inside which another block opens (```lang), which only
    happens when the first was not closed."""
    inside: set[int] = set()
    fence: str | None = None
    opened = None
    for i, line in enumerate(lines):
        m = _FENCE_RE.match(line)
        if fence is not None:
            inside.add(i)
            if m and _OPENING_FENCE_RE.match(line) and opened is not None:
                return inside, opened
            closing = m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)
            if closing and not line.strip().strip(fence[0]):
                fence = None
            continue
        if m:
            fence, opened = m.group(1), i
            inside.add(i)
    return inside, (opened if fence is not None else None)


def prose_lines(text: str) -> list[tuple[int, str]]:
    """``(index, line)`` of every line outside fenced code."""
    lines = text.splitlines()
    code, _ = code_lines(lines)
    return [(i, line) for i, line in enumerate(lines) if i not in code]


def part_at(text: str, line: int) -> Part | None:
    """The subsection holding ``line``; it ends at the next heading of its level even when an
    unclosed code block hides that heading from Markdown."""
    part = next((p for p in split_parts(text) if p.start <= line < p.end), None)
    if part is None or part.heading is None:
        return part
    lines = text.splitlines()
    marker = re.match(r"^ {0,3}(#+)\s", lines[part.start])
    if marker:
        pattern = re.compile(rf"^ {{0,3}}{marker.group(1)}\s")
        end = next((i for i in range(line + 1, part.end) if pattern.match(lines[i])), part.end)
        part = Part(part.heading, part.start, end, word_count("\n".join(lines[part.start : end])))
    return part


def split_parts(text: str) -> list[Part]:
    """The section cut at its subsection headings (the level below the title)."""
    lines = text.splitlines()
    headings = find_headings(lines)
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if headings and (
        headings[0].start == first
        or headings[0].level < min((h.level for h in headings[1:]), default=7)
    ):
        headings = headings[1:]  # the section's own title
    level = min((h.level for h in headings), default=0)
    cuts = [h for h in headings if h.level == level]
    parts = []
    starts = [0] + [h.start for h in cuts]
    ends = [h.start for h in cuts] + [len(lines)]
    names: list[str | None] = [None] + [h.text for h in cuts]
    for name, start, end in zip(names, starts, ends, strict=True):
        body = "\n".join(lines[start:end])
        if name is None and not body.strip():
            continue
        parts.append(Part(name, start, end, word_count(body)))
    return parts


def normalise_heading(text: str) -> str:
    """Heading text for comparison: no emphasis, numbering or punctuation, case-folded."""
    text = re.sub(r"[*_`#]", "", text)
    text = re.sub(r"^\s*(?:(?:part|section|chapter)\s+)?[\dIVXivx]+(?:\.\d+)*[.):]?\s+", "", text)
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def headings_match(planned: str, written: str) -> bool:
    a, b = normalise_heading(planned), normalise_heading(written)
    if a == b:
        return True
    sa, sb = set(a.split()), set(b.split())
    return bool(sa and sb) and len(sa & sb) / len(sa | sb) >= 0.75


def stems(text: str) -> set[str]:
    """Content-word stems (first five letters) of ``text``."""
    return {
        w.casefold()[:5]
        for w in _WORD_RE.findall(text)
        if len(w) > 2 and w.casefold() not in _STOPWORDS
    }


def coverage(point: str, text_stems: set[str]) -> float:
    """Share of a key point's content words that a text uses."""
    wanted = stems(point)
    return len(wanted & text_stems) / len(wanted) if wanted else 1.0


_TOKEN_RE = re.compile(r"\w+")


def shingles(text: str, size: int) -> set[int]:
    """Hashes of every run of ``size`` consecutive words of the prose (code left out)."""
    words = _TOKEN_RE.findall(" ".join(line for _, line in prose_lines(text)).casefold())
    return {hash(tuple(words[i : i + size])) for i in range(len(words) - size + 1)}


def overlap(a: set[int], b: set[int]) -> float:
    """Share of the smaller text's shingles that the other also has (1.0: a copy)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def part_spans(text: str, parts: list[list[str]]) -> list[tuple[int, int] | None]:
    """``(start, end)`` lines of each part written on its own: from its first planned
    subsection present to the next part's (part 1 from the top); None for a part none of whose
    subsections is in the text."""
    subs = [p for p in split_parts(text) if p.heading is not None]
    starts: list[int | None] = []
    for k, headings in enumerate(parts):
        found = [p.start for p in subs if any(headings_match(h, p.heading) for h in headings)]
        starts.append(0 if k == 0 else (min(found) if found else None))
    total = len(text.splitlines())
    spans: list[tuple[int, int] | None] = []
    for k, start in enumerate(starts):
        if start is None:
            spans.append(None)
            continue
        end = next((s for s in starts[k + 1 :] if s is not None and s > start), total)
        spans.append((start, end))
    return spans


def part_texts(text: str, parts: list[list[str]]) -> list[str]:
    """Each part's text ("" for a part that is missing)."""
    lines = text.splitlines()
    return ["\n".join(lines[s[0] : s[1]]) if s else "" for s in part_spans(text, parts)]


# -- the checks --------------------------------------------------------------------------------


def check_length(text: str, ctx: Context, qc: dict[str, Any]) -> Verdict:
    words = word_count(text)
    low = round(ctx.target_words * qc["min_words_ratio"])
    high = round(ctx.target_words * qc["max_words_ratio"]) + int(qc["length_slack_words"])
    state = "too short" if words < low else "too long" if words > high else "within range"
    return Verdict(
        "length",
        low <= words <= high,
        words,
        f"{words} words, target {ctx.target_words} (allowed {low}–{high}): {state}",
    )


def check_key_points(text: str, ctx: Context, qc: dict[str, Any]) -> Verdict:
    have = stems(text)
    missed = [p for p in ctx.key_points if coverage(p, have) < qc["min_key_point_coverage"]]
    detail = "every key point covered" if not missed else "not covered: " + "; ".join(missed)
    return Verdict("key_points", not missed, missed, detail)


def check_headings(text: str, ctx: Context) -> Verdict:
    """Every planned subsection heading present, in order."""
    if ctx.planned_headings is None:
        return Verdict("headings", True, None, "no plan to check against")
    written = [p.heading for p in split_parts(text) if p.heading is not None]
    missing, out_of_order, last = [], [], -1
    for planned in ctx.planned_headings:
        found = [i for i, w in enumerate(written) if headings_match(planned, w)]
        if not found:
            missing.append(planned)
        elif max(found) <= last:
            out_of_order.append(planned)
        else:
            last = min(i for i in found if i > last)
    problems = [f"missing: {h}" for h in missing] + [f"out of order: {h}" for h in out_of_order]
    return Verdict(
        "headings",
        not problems,
        {"missing": missing, "out_of_order": out_of_order},
        "; ".join(problems) or f"all {len(ctx.planned_headings)} planned headings, in order",
    )


def check_heading_levels(text: str) -> Verdict:
    jumps = []
    previous = 1
    for h in find_headings(text.splitlines()):
        if h.level > previous + 1:
            jumps.append(f"line {h.start + 1}: level {previous} to {h.level} ({h.text})")
        previous = h.level
    return Verdict("heading_levels", not jumps, jumps, "; ".join(jumps) or "no level skipped")


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _closed(content: str) -> bool:
    """A line of prose ends where a sentence may end: on . ! ? …, a closing bracket, closed
    inline math or code, a number, a URL, closing emphasis or quotes, or a footnote mark."""
    if _URL_END_RE.search(content):
        return True
    end = _TRAILING_MARKS_RE.sub("", content)
    if not end:
        return False
    if end != content:
        return True  # closed emphasis, a closing quote or a footnote mark: not a cut
    last = end[-1]
    if last in "$`":
        return end.count(last) % 2 == 0
    return last in ".!?…)]%°" or last.isdigit()


def _item_closed(content: str) -> bool:
    """A list item, definition, footnote or table cell needs no full stop: it is complete
    unless it stops on a comma, an opening bracket or a word that cannot end a phrase."""
    end = _TRAILING_MARKS_RE.sub("", content).rstrip()
    if not end or end[-1] in ",;:([{-–—/+=&":
        return False
    words = end.split()
    return words[-1].casefold() not in _DANGLING_WORDS


def is_complete(text: str) -> bool:
    """The text ends where a writer may stop: a complete sentence, or a list item, table,
    definition, footnote, quotation, code block or display math that is closed. A heading, a
    code block left open or a sentence stopped mid-way is not. A heuristic: it flags, it never
    decides a paid call (only ``finish_reason: length`` or a broken stream does that)."""
    lines = text.splitlines()
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if not filled:
        return False
    at = filled[-1]
    code, open_fence = code_lines(lines)
    headings = find_headings(lines)
    if (open_fence is not None and at in code) or (headings and headings[-1].end > at):
        return False
    raw = lines[at]
    end = raw.strip()
    if _FENCE_RE.match(raw) or end.endswith(("$$", "\\]")) or _RULE_RE.match(end):
        return True  # a closed code block, display math, a table border or a rule
    while end.startswith(">"):  # a quotation is judged by its text
        end = end[1:].strip()
    blank = max((i for i in range(at) if not lines[i].strip()), default=-1)
    block = [lines[i] for i in range(blank + 1, at + 1)]
    if "|" in end and len(block) > 1 and all("|" in line for line in block):
        return True  # a pipe table's last row
    item = _ITEM_RE.match(end)
    if item:
        return _item_closed(item.group(1))
    if raw[:1] in " \t" or _ATTRIBUTION_RE.match(end):
        return _item_closed(end)  # an item's continuation, indented code, an attribution
    return _closed(end)


def check_truncation(text: str) -> Verdict:
    end = last_line(text)
    ok = is_complete(text)
    detail = "ends on a complete sentence" if ok else f"ends mid-way: …{end[-60:]!r}"
    return Verdict("truncation", ok, end[-60:], detail)


def meta_sentences(line: str) -> list[str]:
    return [s for s in _SENTENCE_END_RE.split(line) if any(p.search(s) for p in META_PATTERNS)]


def check_meta_text(text: str) -> Verdict:
    found = [s.strip()[:80] for _, line in prose_lines(text) for s in meta_sentences(line)]
    return Verdict("meta_text", not found, found, "; ".join(found) or "no assistant chatter")


def echo_patterns(templates: list[str]) -> list[re.Pattern[str]]:
    """Patterns for the fixed wording of prompt templates (placeholders match anything).

    A template line yields a pattern when its fixed text has at least three words, so a reply
    that repeats an instruction is caught while the book's own titles and key points are not.
    """
    out = []
    for template in templates:
        for raw in template.splitlines():
            line = re.sub(r"^\s*(?:[-*]|#+)\s+", "", raw).strip()
            literal = Template(line).safe_substitute(_AnyMapping())
            pieces = [p.strip() for p in literal.split("\x00")]
            fixed = " ".join(pieces)
            if len(_WORD_RE.findall(fixed)) < 3 or len(fixed) < 15:
                continue
            regex = r".+?".join(r"\s+".join(map(re.escape, p.split())) for p in pieces)
            out.append(re.compile(regex, re.IGNORECASE))
    return out


class _AnyMapping(dict):
    def __missing__(self, key: str) -> str:
        return "\x00"


def echo_lines(text: str, patterns: list[re.Pattern[str]]) -> list[tuple[int, str]]:
    hits = []
    for i, line in prose_lines(text):
        flat = " ".join(line.split())
        if flat and any(p.search(flat) for p in patterns):
            hits.append((i, flat))
    return hits


def check_prompt_echo(text: str, ctx: Context) -> Verdict:
    found = [line[:80] for _, line in echo_lines(text, ctx.echo_patterns)]
    return Verdict("prompt_echo", not found, found, "; ".join(found) or "no prompt text repeated")


def markdown_problems(text: str) -> list[tuple[int, str]]:
    """``(line, problem)`` for unclosed code fences, display math and HTML comments."""
    lines = text.splitlines()
    code, open_fence = code_lines(lines)
    problems = []
    if open_fence is not None:
        problems.append((open_fence, f"a code block opened at line {open_fence + 1} never closed"))
    counts: dict[str, list[int]] = {
        t: [] for t in ("$$", "\\[", "\\]", "\\(", "\\)", "<!--", "-->")
    }
    for i, line in enumerate(lines):
        if i in code:
            continue
        bare = _INLINE_CODE_RE.sub("", line).strip()
        for token in ("$$", "\\(", "\\)", "<!--", "-->"):
            counts[token].extend([i] * bare.count(token))
        # \[ … \] is display math where it opens or closes a line; elsewhere "\[" is an
        # escaped bracket in prose, as pandoc reads it.
        if bare.startswith("\\["):
            counts["\\["].append(i)
        if bare.endswith("\\]"):
            counts["\\]"].append(i)
    if len(counts["$$"]) % 2:
        problems.append((counts["$$"][-1], "an odd number of $$ display-math delimiters"))
    for opener, closer, what in (
        ("\\[", "\\]", "\\[ … \\] display math"),
        ("\\(", "\\)", "\\( … \\) inline math"),
        ("<!--", "-->", "an HTML comment"),
    ):
        if len(counts[opener]) != len(counts[closer]):
            at = (counts[opener] or counts[closer])[-1]
            problems.append((at, f"unbalanced {what}"))
    return problems


def check_markdown(text: str) -> Verdict:
    problems = markdown_problems(text)
    return Verdict(
        "markdown",
        not problems,
        [p for _, p in problems],
        "; ".join(p for _, p in problems) or "code blocks and math closed",
    )


def check_part_overlap(text: str, ctx: Context, qc: dict[str, Any]) -> Verdict:
    """The parts of a section written on their own do not repeat each other: every pair's
    share of shared ``qc.shingle_words``-word shingles stays within ``qc.overlap_threshold``."""
    size = int(qc["shingle_words"])
    sets = [shingles(t, size) for t in part_texts(text, ctx.parts or [])]
    pairs = [
        {"parts": [i + 1, j + 1], "overlap": round(overlap(sets[i], sets[j]), 4)}
        for i in range(len(sets))
        for j in range(i + 1, len(sets))
    ]
    over = [p for p in pairs if p["overlap"] > qc["overlap_threshold"]]
    top = max((p["overlap"] for p in pairs), default=0.0)
    detail = (
        "; ".join(
            f"parts {a} and {b} overlap {v:.0%}"
            for (a, b), v in ((p["parts"], p["overlap"]) for p in over)
        )
        or f"{len(sets)} parts, closest pair {top:.0%}"
    )
    return Verdict("part_overlap", not over, {"max": top, "over": over}, detail)


def check_seams(text: str, ctx: Context) -> Verdict:
    """Where parts meet: no subsection heading twice (a part writing its neighbour's
    subsection), no second section title (a later part opening the section again)."""
    problems = []
    headings = find_headings(text.splitlines())
    title_level = headings[0].level if headings and headings[0].start == 0 else None
    if title_level is not None:
        problems += [
            f"the section title again at line {h.start + 1}"
            for h in headings[1:]
            if h.level <= title_level
        ]
    seen: set[tuple[int, str]] = set()
    for h in headings[1:] if title_level is not None else headings:
        key = (h.level, normalise_heading(h.text))
        if title_level is not None and h.level <= title_level:
            continue
        if key in seen:
            problems.append(f"the subsection {h.text!r} twice")
        seen.add(key)
    return Verdict("seams", not problems, problems, "; ".join(problems) or "parts join cleanly")


def repeated_subsections(text: str, parts: list[list[str]]) -> list[Part]:
    """The copies to drop of a subsection written twice: the one outside the part whose plan
    has it (else the later one)."""
    spans = part_spans(text, parts)
    drop: list[Part] = []
    by_heading: dict[str, list[Part]] = {}
    for p in split_parts(text):
        if p.heading is not None:
            by_heading.setdefault(normalise_heading(p.heading), []).append(p)
    for copies in by_heading.values():
        if len(copies) < 2:
            continue
        owner = next(
            (
                c
                for c in copies
                for k, span in enumerate(spans)
                if span
                and span[0] <= c.start < span[1]
                and any(headings_match(h, c.heading or "") for h in parts[k])
            ),
            copies[0],
        )
        drop += [c for c in copies if c is not owner]
    return drop


def join_parts(text: str, parts: list[list[str]]) -> tuple[str, int]:
    """Mend the seams without a call: drop a repeated section title, then a subsection written
    twice (the copy outside the part that planned it); returns the text and what was dropped."""
    lines: list[str | None] = list(text.splitlines())
    dropped = 0
    headings = find_headings(text.splitlines())
    if headings and headings[0].start == 0:
        for h in headings[1:]:
            if h.level <= headings[0].level:
                lines[h.start : h.end] = [None] * (h.end - h.start)
                dropped += 1
    text = "\n".join(line for line in lines if line is not None)
    lines = list(text.splitlines())
    for p in repeated_subsections(text, parts):
        lines[p.start : p.end] = [None] * (p.end - p.start)
        dropped += 1
    out = "\n".join(line for line in lines if line is not None)
    return re.sub(r"\n{3,}", "\n\n", out).strip() + "\n", dropped


def check_section(text: str, ctx: Context, qc: dict[str, Any]) -> list[Verdict]:
    """Every per-section check, in ``CHECKS`` order (the part checks only for a section
    written in parts on their own)."""
    in_parts = (
        [check_part_overlap(text, ctx, qc), check_seams(text, ctx)]
        if ctx.parts and len(ctx.parts) > 1
        else []
    )
    return [
        check_length(text, ctx, qc),
        check_key_points(text, ctx, qc),
        check_headings(text, ctx),
        check_heading_levels(text),
        check_truncation(text),
        check_meta_text(text),
        check_prompt_echo(text, ctx),
        check_markdown(text),
        *in_parts,
    ]


# -- repairs without an API call ---------------------------------------------------------------


def strip_chatter(text: str, patterns: list[re.Pattern[str]]) -> tuple[str, list[str]]:
    """Remove assistant chatter sentences and echoed prompt lines; returns what was removed."""
    lines = text.splitlines()
    echoed = {i for i, _ in echo_lines(text, patterns)}
    removed = []
    for i, line in prose_lines(text):
        if i in echoed:
            removed.append(line.strip())
            lines[i] = None  # type: ignore[call-overload]
            continue
        chatter = meta_sentences(line)
        if chatter:
            removed.extend(s.strip() for s in chatter)
            kept = [s for s in _SENTENCE_END_RE.split(line) if s not in chatter]
            lines[i] = " ".join(kept) if kept else None  # type: ignore[call-overload]
    out = "\n".join(line for line in lines if line is not None)
    return re.sub(r"\n{3,}", "\n\n", out).strip() + "\n", removed


def fix_heading_levels(text: str) -> str:
    """Lower every heading that skips levels to one below the heading before it."""
    lines = text.splitlines()
    previous = 1
    for h in find_headings(lines):
        level = min(h.level, previous + 1)
        if level != h.level:
            lines[h.start : h.end] = [f"{'#' * level} {h.text}"] + [""] * (h.end - h.start - 1)
        previous = level
    return "\n".join(lines).strip() + "\n"


def is_summary(heading: str | None) -> bool:
    return bool(heading and _SUMMARY_RE.search(heading))
