"""Deterministic reply text: a textbook section that follows the task block of the prompt."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from bookgen.money.tokens import tokenize

_SECTION_RE = re.compile(r"section\s+(\d+)\s+of\s+(\d+)", re.IGNORECASE)
_TITLE_RE = re.compile(r"^\s*Title:\s*(.+?)\s*$", re.MULTILINE)
_WORDS_RE = re.compile(r"about\s+(\d+)\s+words", re.IGNORECASE)
_POINTS_RE = re.compile(r"Key points to cover:\s*\n", re.IGNORECASE)
_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022+]|\d+[.)])\s+(.+?)\s*$")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]")

_STOPWORDS = frozenset(
    """a an and are as at be by for from how in into is it its of on or that the their this to
    what when where which who why with without within between about over under vs versus your our
    they them these those than then there do does can could should would will may might must not
    no yes using use used via per each every all any some more most less least very also""".split()  # noqa: SIM905
)

_VERBS = frozenset(
    """make makes made absorb absorbs release releases split splits use uses produce produces
    explain explains show shows drive drives form forms give gives take takes become becomes
    describe describes affect affects include includes require requires lead leads depend
    depends work works help helps allow allows convert converts create creates occur occurs
    happen happens change changes get gets set sets keep keeps let lets put puts run runs""".split()  # noqa: SIM905
)
_AN_RE = re.compile(r"\b([Aa]) ([aeiouAEIOU])")

_NOUNS = [
    "model", "process", "mechanism", "framework", "example", "measurement", "pattern",
    "principle", "system", "structure", "constraint", "assumption", "experiment", "observation",
    "variable", "approximation", "picture", "argument", "method", "perspective",
]  # fmt: skip

_SENTENCES = [
    "{A} is best understood by looking at how it shapes {b}.",
    "A common misconception is that {a} and {b} are independent, yet careful study shows "
    "they are closely linked.",
    "To see why, consider a simple {g} in which {a} changes while everything else stays fixed.",
    "The same reasoning applies to {t}, where {a} sets the pace for the rest of the {g}.",
    "Researchers first described {a} through patient observation, long before a formal {g} "
    "existed.",
    "In practice, the effect of {a} depends on the {g} and on the scale at which we look.",
    "It helps to separate what we can measure directly, such as {a}, from what we must infer, "
    "such as {b}.",
    "This distinction matters because errors in {a} propagate quickly into conclusions about {b}.",
    "Seen from another angle, {a} is a {g} for organizing what we know about {t}.",
    "Notice that {b} appears again here, which is no accident.",
    "Each step follows from the previous one, so a solid grasp of {a} pays off later on.",
    "When students work through examples of {a}, they usually discover that {b} is the harder "
    "part.",
    "A good {g} should explain both the ordinary cases and the exceptions involving {b}.",
    "The key question is how much {a} contributes compared with other factors.",
    "Put simply, {a} links the details of {b} to the broader picture of {t}.",
    "Textbook diagrams often simplify {a}, but the underlying {g} is richer than any single "
    "figure.",
    "We will return to {b} when we discuss how the ideas of this section fit together.",
    "Small changes in {a} can produce surprisingly large differences in {b}.",
    "For this reason, experts check their assumptions about {a} before drawing firm conclusions.",
    "One useful exercise is to predict what happens to {b} if {a} is doubled.",
    "The history of {t} shows how slowly these ideas about {a} gained acceptance.",
    "Although the details vary, the core idea of {a} remains the same across many settings.",
    "A careful reader will ask which {g} best accounts for {a}, and why.",
    "Working scientists treat {a} as a tool rather than as a fixed fact about {b}.",
]

_OPENERS = [
    "We now turn to {k}.",
    "This part of the section examines {k}.",
    "Next we look closely at {k}.",
    "The focus here is {k}.",
]

_FORMULAS = [
    ("$y = k x$", "$x$", "$y$"),
    ("$r = \\frac{\\Delta y}{\\Delta x}$", "$\\Delta x$", "$\\Delta y$"),
    ("$f(t) = f_0 e^{-\\lambda t}$", "$t$", "$f(t)$"),
    ("$S = \\sum_{i=1}^{n} x_i$", "$x_i$", "$S$"),
]

_CODE = [
    'def {name}(values):\n    """Average of the observed {w}."""\n'
    "    return sum(values) / len(values)",
    'def {name}(x, rate=0.5):\n    """One step of a simple {w} update."""\n'
    "    return x + rate * (1 - x)",
    "{name} = [v * 2 for v in range(5)]  # doubling each {w} value\nprint({name})",
]


@dataclass
class Task:
    """The section-specific task parsed from the prompt."""

    section: int | None
    total: int | None
    title: str
    key_points: list[str] = field(default_factory=list)
    words: int | None = None


def message_text(content: Any) -> str:
    """Text of a message content (a string or a list of content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def parse_task(text: str) -> Task | None:
    """Parse a ``# Your task: section N of M`` block; None when there is none."""
    sec = _SECTION_RE.search(text)
    title_m = _TITLE_RE.search(text)
    if sec is None and title_m is None:
        return None
    points: list[str] = []
    pm = _POINTS_RE.search(text)
    if pm:
        for line in text[pm.end() :].splitlines():
            bm = _BULLET_RE.match(line)
            if bm:
                points.append(bm.group(1))
            elif line.strip():
                break
    words_m = _WORDS_RE.search(text[sec.start() if sec else 0 :])
    section = int(sec.group(1)) if sec else None
    return Task(
        section=section,
        total=int(sec.group(2)) if sec else None,
        title=title_m.group(1).strip() if title_m else f"Section {section}",
        key_points=points,
        words=int(words_m.group(1)) if words_m else None,
    )


def find_task(messages: list[dict[str, Any]]) -> tuple[Task | None, int]:
    """The task of the first user message that has one, and that message's index (-1 if none)."""
    for i, m in enumerate(messages):
        if m.get("role") == "user":
            task = parse_task(message_text(m.get("content")))
            if task is not None:
                return task, i
    return None, -1


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _keywords(text: str) -> list[str]:
    """Content words of ``text``, preferring likely nouns (verbs and -ing/-ed forms dropped)."""
    out: list[str] = []
    for w in _WORD_RE.findall(text):
        lw = w.lower()
        if len(lw) > 2 and lw not in _STOPWORDS and lw not in out:
            out.append(lw if not w.isupper() else w)
    nouns = [w for w in out if w not in _VERBS and not w.endswith(("ing", "ed"))]
    return nouns or out


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _lower_first(s: str) -> str:
    if len(s) > 1 and s[1].isupper():  # acronym or proper noun such as "ATP" or "DNA"
        return s
    return s[:1].lower() + s[1:]


def _clean_point(point: str) -> str:
    return point.strip().rstrip(".;:!?,").strip() or "this topic"


class _Writer:
    """Builds prose sentence by sentence from a seeded RNG and a vocabulary."""

    def __init__(self, rng: random.Random, topic_words: list[str]) -> None:
        self.rng = rng
        self.topic = topic_words or ["the subject"]
        self.last = -1

    def phrase_pair(self, words: list[str]) -> tuple[str, str]:
        pool = words or self.topic
        a = self.rng.choice(pool)
        others = [w for w in pool + self.topic if w != a] or ["the wider context"]
        return a, self.rng.choice(others)

    def sentence(self, words: list[str]) -> str:
        i = self.rng.randrange(len(_SENTENCES))
        if i == self.last:
            i = (i + 1) % len(_SENTENCES)
        self.last = i
        a, b = self.phrase_pair(words)
        t = " ".join(self.topic[:2])
        text = _SENTENCES[i].format(A=_cap(a), a=a, b=b, g=self.rng.choice(_NOUNS), t=t)
        return _AN_RE.sub(r"\1n \2", text)

    def paragraph(self, words: list[str], budget: int, first: str | None = None) -> str:
        sentences = [first] if first else []
        count = sum(len(s.split()) for s in sentences)
        while count < budget:
            s = self.sentence(words)
            n = len(s.split())
            if sentences and count + n - budget > budget - count:
                break
            sentences.append(s)
            count += n
        return " ".join(sentences)


def _formula_sentence(rng: random.Random, a: str, b: str) -> str:
    formula, x, y = rng.choice(_FORMULAS)
    return (
        f"A compact way to write this relationship is {formula}, "
        f"where {x} stands for {a} and {y} for {b}."
    )


def _listing(points: list[str]) -> str:
    listing = ", ".join(_lower_first(p) for p in points[:-1])
    return f"{listing} and {_lower_first(points[-1])}" if listing else _lower_first(points[-1])


def _point_blocks(
    w: _Writer, rng: random.Random, point: str, title_words: list[str], per_point: int
) -> list[str]:
    """A subsection on ``point``: its ``###`` heading and paragraphs of about ``per_point``
    words, sometimes with a list, a code block or a formula."""
    kw = _keywords(point) or title_words
    blocks = [f"### {_cap(point)}"]
    n_par = max(1, min(3, per_point // 90 + rng.choice([0, 0, 1]) - rng.choice([0, 1])))
    extra = rng.random()
    extra_block = ""
    extras_words = 0
    if extra < 0.2 and per_point >= 60:
        a, b = w.phrase_pair(kw)
        items = [
            f"- {_cap(a)} shapes how {b} behaves.",
            f"- {_cap(b)} is easier to see once {a} is understood.",
            f"- Both connect back to {' '.join(title_words[:2]) or 'the topic'}.",
        ]
        extra_block = "Key ideas to remember:\n\n" + "\n".join(items)
    elif extra < 0.32 and per_point >= 60:
        name = re.sub(r"\W", "_", kw[0] if kw else "value").lower()
        code = rng.choice(_CODE).format(name=f"{name}_demo", w=kw[-1] if kw else "value")
        extra_block = f"```python\n{code}\n```"
    extras_words = len(extra_block.split())
    budget = max(12, per_point - extras_words)
    paragraphs = []
    for j in range(n_par):
        first = rng.choice(_OPENERS).format(k=_lower_first(point)) if j == 0 else None
        para = w.paragraph(kw, budget // n_par, first=first)
        if j == n_par - 1 and 0.32 <= extra < 0.5:
            a, b = w.phrase_pair(kw)
            para = f"{para} {_formula_sentence(rng, a, b)}"
        paragraphs.append(para)
    if extra_block:
        paragraphs.insert(1, extra_block)
    return blocks + paragraphs


def _summary_blocks(w: _Writer, task: Task, points: list[str], budget: int) -> list[str]:
    summary_first = f"In summary, {task.title} rests on {_listing(points)}."
    summary = w.paragraph(_keywords(task.title), budget - 10, first=summary_first)
    closing = "With these ideas in place, the following sections can build on them."
    return ["### Summary", f"{summary} {closing}"]


def _intro_blocks(w: _Writer, task: Task, points: list[str], budget: int) -> list[str]:
    intro_first = f"This section introduces {task.title} and covers {_listing(points)}."
    return [f"## {task.title}", w.paragraph(_keywords(task.title), budget, first=intro_first)]


def _budgets(target: int, points: int) -> tuple[int, int, int]:
    """Words for the introduction, the summary and each key point of a ``target``-word section
    (short sections get one-sentence introductions and summaries, so they stay near target)."""
    small = target < 250
    intro = max(8 if small else 25, target // 10)
    summary = max(12 if small else 20, target // 12)
    per_point = max(10 if small else 20, (target - intro - summary) // points - 3)
    return intro, summary, per_point


def section_text(
    task: Task, *, seed: int, model: str, words_factor: float, default_words: int
) -> str:
    """The full deterministic Markdown answer to ``task``."""
    rng = _rng("section", seed, model, task.section, task.title)
    target = max(40, round((task.words or default_words) * words_factor))
    title_words = _keywords(task.title)
    w = _Writer(rng, title_words)
    points = [_clean_point(p) for p in task.key_points] or [f"the main ideas of {task.title}"]
    intro_budget, summary_budget, per_point = _budgets(target, len(points))

    blocks = _intro_blocks(w, task, points, intro_budget)
    for point in points:
        blocks += _point_blocks(w, rng, point, title_words, per_point)
    blocks += _summary_blocks(w, task, points, summary_budget)
    return "\n\n".join(blocks) + "\n"


# -- planned writing: plans, writing briefs, outlines ----------------------------------------

BRIEF_MARKER = "Subsections to write now, in this order:"
_BRIEF_LINE_RE = re.compile(r"^#{2,6}\s+(.+?)\s+\(about\s+(\d+)\s+words\)(?::\s*(.*))?$")
_OUTLINE_LINE_RE = re.compile(r"^(\d+)\.\s+(.+?)\s+\(about\s+(\d+)\s+words\)\s*$")


@dataclass
class BriefItem:
    """One subsection a writing brief asks for."""

    heading: str
    words: int
    covers: str = ""


@dataclass
class Brief:
    """The subsections a request asks to write now, and whether it opens the section."""

    items: list[BriefItem]
    with_title: bool


def parse_brief(text: str) -> Brief | None:
    """The ``Subsections to write now`` block of a message, if it has one."""
    at = text.find(BRIEF_MARKER)
    if at < 0:
        return None
    items = []
    for line in text[at + len(BRIEF_MARKER) :].splitlines():
        m = _BRIEF_LINE_RE.match(line.strip())
        if m:
            items.append(BriefItem(m.group(1), int(m.group(2)), m.group(3) or ""))
        elif line.strip():
            break
    return Brief(items, "start with the section title" in text.casefold()) if items else None


NEIGHBOURS_MARKER = "Written separately from the same plan"
_NEIGHBOUR_RE = re.compile(r"^Part \d+ of \d+ \((before|after) this one\):$")


def neighbour_before(messages: list[dict[str, Any]]) -> BriefItem | None:
    """The last subsection of the part before this one, when a request for one part of a
    section names its neighbours (parts written at the same time); else None."""
    users = [message_text(m.get("content")) for m in messages if m.get("role") == "user"]
    text = users[-1] if users else ""
    at = text.find(NEIGHBOURS_MARKER)
    if at < 0:
        return None
    where, last = None, None
    for line in text[at:].splitlines()[1:]:
        m = _NEIGHBOUR_RE.match(line.strip())
        if m:
            where = m.group(1)
            continue
        item = _BRIEF_LINE_RE.match(line.strip())
        if item and where == "before":
            last = BriefItem(item.group(1), int(item.group(2)), item.group(3) or "")
    return last


def locate(
    messages: list[dict[str, Any]], task_index: int, json_mode: bool
) -> tuple[int, Brief | None]:
    """The message a reply answers (the task, the latest writing brief, or in JSON mode the
    latest request that is not a continuation) and its brief, if any."""
    users = [i for i, m in enumerate(messages) if m.get("role") == "user" and i >= task_index]
    if json_mode:
        for i in reversed(users):
            if not _CONTINUE_RE.search(message_text(messages[i].get("content"))):
                return i, None
        return task_index, None
    for i in reversed(users):
        brief = parse_brief(message_text(messages[i].get("content")))
        if brief is not None:
            return i, brief
    return task_index, None


_CONTINUE_RE = re.compile(r"\bcontinue\b", re.IGNORECASE)


def brief_text(task: Task, brief: Brief, *, seed: int, model: str, words_factor: float) -> str:
    """The subsections ``brief`` asks for (after the title and an introduction when it opens
    the section); each subsection's text depends only on the section and its heading."""
    title_words = _keywords(task.title)
    points = [_clean_point(p) for p in task.key_points] or [f"the main ideas of {task.title}"]
    blocks: list[str] = []
    if brief.with_title:
        w = _Writer(_rng("brief-intro", seed, model, task.section, task.title), title_words)
        target = (task.words or sum(i.words for i in brief.items)) * words_factor
        blocks += _intro_blocks(w, task, points, max(25, round(target) // 10))
    for item in brief.items:
        rng = _rng("brief", seed, model, task.section, task.title, item.heading)
        w = _Writer(rng, title_words)
        words = max(20, round(item.words * words_factor))
        if item.heading.strip().casefold() == "summary":
            blocks += _summary_blocks(w, task, points, words)
        else:
            blocks += _point_blocks(w, rng, item.heading, title_words, words - 3)
    return "\n\n".join(blocks) + "\n"


def plan_reply(task: Task, default_words: int) -> dict[str, Any]:
    """A plan for ``task``: one subsection per key point, then a summary."""
    target = task.words or default_words
    points = [_clean_point(p) for p in task.key_points] or [f"the main ideas of {task.title}"]
    _, summary, per_point = _budgets(target, len(points))
    subsections = [
        {"heading": _cap(p), "covers": f"Explains {_lower_first(p)}.", "words": per_point}
        for p in points
    ]
    subsections.append(
        {"heading": "Summary", "covers": "Ties the section's ideas together.", "words": summary}
    )
    return {"title": task.title, "section": task.section, "subsections": subsections}


@dataclass
class OutlineRequest:
    """A request for a book's table of contents from a topic."""

    topic: str
    sections: int
    words: int


def parse_outline_request(text: str) -> OutlineRequest | None:
    if "# Outline task" not in text:
        return None
    topic = re.search(r"^Topic:\s*(.+?)\s*$", text, re.MULTILINE)
    count = re.search(r"exactly\s+(\d+)\s+sections", text)
    words = re.search(r"about\s+(\d+)\s+words", text)
    return OutlineRequest(
        topic.group(1) if topic else "the subject",
        int(count.group(1)) if count else 5,
        int(words.group(1)) if words else 800,
    )


_ANGLES = [
    "Foundations of", "Key Ideas in", "Measuring", "Models of", "Methods for", "Applications of",
    "History of", "Limits of", "Open Questions in", "Practice with",
]  # fmt: skip
_CONCEPTS = [
    "definitions", "units", "forces", "energy", "cycles", "records", "instruments", "equations",
    "predictions", "errors", "pioneers", "controversies", "engineering", "navigation", "ecology",
    "anomalies", "simulations", "statistics", "materials", "safety", "economics", "policy",
    "laboratories", "fieldwork", "maps", "sensors", "feedback", "thresholds", "scales", "ethics",
    "archives", "satellites", "diagrams", "budgets", "hazards", "seasons", "currents", "climates",
    "surveys", "calibration", "uncertainty", "trends", "extremes", "networks", "standards",
    "software", "education", "careers", "museums", "laws", "patents", "markets", "rivers",
    "harbours", "islands", "deserts", "forests", "cities", "farms", "festivals",
]  # fmt: skip


def outline_reply(req: OutlineRequest, *, seed: int, model: str) -> dict[str, Any]:
    """A table of contents with ``req.sections`` distinct sections about the topic, each with
    key points of its own (up to ten sections share no concept)."""
    kw = _keywords(req.topic) or ["topic"]
    subject = " ".join(_cap(k) for k in kw[:3])
    sections = []
    for i in range(req.sections):
        rng = _rng("outline", seed, model, req.topic, i)
        angle = _ANGLES[i % len(_ANGLES)]
        round_no = i // len(_ANGLES)
        title = f"{angle} {subject}" + (f", Part {round_no + 1}" if round_no else "")
        concepts = [_CONCEPTS[(6 * i + k) % len(_CONCEPTS)] for k in range(6)]
        points = [
            f"{concepts[2 * k]} and {concepts[2 * k + 1]} of {rng.choice(kw)}" for k in range(3)
        ]
        sections.append({"title": title, "key_points": points, "words": req.words})
    return {"title": _cap(req.topic), "sections": sections}


def parse_outline(text: str) -> dict[int, Task]:
    """The book's outline as rendered in the system prompt (``N. Title (about W words)`` lines
    with ``- key point`` lines under each), by section number."""
    out: dict[int, Task] = {}
    current: Task | None = None
    for line in text.splitlines():
        m = _OUTLINE_LINE_RE.match(line.strip())
        if m:
            current = Task(int(m.group(1)), None, m.group(2), [], int(m.group(3)))
            out[current.section] = current  # type: ignore[index]
            continue
        b = _BULLET_RE.match(line)
        if current is not None and b and line.startswith((" ", "\t")):
            current.key_points.append(b.group(1))
        elif line.strip():
            current = None
    return out


def generic_text(subject: str, *, seed: int, model: str, words_factor: float) -> str:
    """A short deterministic Markdown reply about ``subject`` (when no task block is found)."""
    subject = subject.strip().lstrip("#").strip()[:80] or "your request"
    rng = _rng("generic", seed, model, subject)
    kw = _keywords(subject)
    w = _Writer(rng, kw)
    budget = max(30, round(120 * words_factor))
    first = f"Here is a short note about {_lower_first(subject).rstrip('.?!')}."
    return f"## {_cap(subject)}\n\n{w.paragraph(kw, budget, first=first)}\n"


def json_reply(
    task: Task | None,
    subject: str,
    *,
    seed: int,
    model: str,
    words_factor: float,
    prompt: str = "",
    default_words: int = 600,
) -> str:
    """A deterministic JSON object reply (for ``response_format: json_object``): a section's
    plan for a task, a table of contents for an outline request in ``prompt``."""
    outline = parse_outline_request(prompt) if task is None else None
    if task is not None:
        obj: dict[str, Any] = plan_reply(task, default_words)
    elif outline is not None:
        obj = outline_reply(outline, seed=seed, model=model)
    else:
        subject = subject.strip().lstrip("#").strip()[:80] or "Untitled"
        rng = _rng("json", seed, model, subject)
        kw = _keywords(subject) or ["topic"]
        w = _Writer(rng, kw)
        sections = []
        for i in range(1, 6):
            a, b = w.phrase_pair(kw)
            sections.append(
                {
                    "title": f"{_cap(a)} and {b} ({i})",
                    "key_points": [
                        f"What {a} means",
                        f"How {a} relates to {b}",
                        f"Examples of {b}",
                    ],
                    "words": max(100, round(800 * words_factor)),
                }
            )
        obj = {"title": _cap(subject), "sections": sections}
    return json.dumps(obj, indent=2, ensure_ascii=False)


def reasoning_text(task: Task | None, subject: str, n_tokens: int, *, seed: int, model: str) -> str:
    """Deterministic chain-of-thought text of exactly ``n_tokens`` tokens (or fewer if 0)."""
    if n_tokens <= 0:
        return ""
    if task is not None:
        head = (
            f'The task is section {task.section} of {task.total}: "{task.title}". '
            f"I need to cover {len(task.key_points)} key points: "
            + "; ".join(_clean_point(p) for p in task.key_points)
            + ". "
        )
        kw = _keywords(task.title + " " + " ".join(task.key_points))
    else:
        head = f"The user asks about {subject.strip()[:80]}. "
        kw = _keywords(subject)
    rng = _rng("reasoning", seed, model, head)
    w = _Writer(rng, kw)
    plans = [
        "Let me plan the structure first.",
        "I should start with an intuitive explanation and then add precision.",
        "An example would make this concrete.",
        "I must keep the length close to the target.",
        "The summary should tie the points together.",
    ]
    text = head
    while len(tokenize(text)) < n_tokens:
        text += rng.choice(plans) + " " + w.sentence(kw) + " "
    return "".join(tokenize(text)[:n_tokens])
