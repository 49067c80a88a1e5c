"""The book: every section assembled into one Markdown file, converted to HTML, EPUB and PDF.

``book.md`` is pandoc Markdown: a YAML title block (title page), a generated table of contents,
then the sections in order. Each section starts with ``## N. Title {#sec-NN}`` and its parts
are ``###`` or deeper, levels never skipping; every heading carries an explicit anchor prefixed
with its section's id, so anchors are unique across the book whatever the model wrote.

Conversions run pandoc from ``pypandoc_binary`` (a PyPI wheel that ships the binary) in
``--sandbox`` mode, so text written by a model can make pandoc read no local file and fetch
nothing; the sections are read without raw HTML or metadata blocks and sanitised
(``book_document``). PDF comes from WeasyPrint (PyPI; uses the system's Pango) rendering the
HTML, reading only inline ``data:`` resources: no TeX.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pypandoc
import yaml

from bookgen.config import Section
from bookgen.formats.sanitise import sanitise
from bookgen.fsutil import atomic_output, atomic_write_text

FORMATS = ("html", "epub", "pdf")
TEMPLATES = files("bookgen") / "templates"
SECTION_LEVEL = 2  # "## N. Title"; a section's parts start one level deeper
# How the book's contents are read: Markdown without raw HTML, raw blocks or metadata blocks,
# so "<script>" or "the <body> element" in a section is text and a "---" block in one is no
# title. Raw TeX stays: pandoc turns \begin{equation} into MathML and writes no other TeX to HTML.
SECTION_FORMAT = "markdown-raw_html-raw_attribute-yaml_metadata_block-pandoc_title_block"
_TITLE_BLOCK_RE = re.compile(r"---\n(.*?)\n(?:---|\.\.\.)\n", re.DOTALL)
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_CLOSING_HASHES_RE = re.compile(r"(?:^|[ \t]+)#+$")
_ATTRIBUTES_RE = re.compile(r"[ \t]*\{[^{}]*\}$")
_LANGUAGE_CODES = {
    "english": "en",
    "german": "de",
    "deutsch": "de",
    "french": "fr",
    "français": "fr",
    "spanish": "es",
    "español": "es",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
    "polish": "pl",
    "russian": "ru",
    "chinese": "zh",
    "japanese": "ja",
    "korean": "ko",
}


class BookFormatError(RuntimeError):
    """A conversion failed; the message names the format and the tool's complaint."""


@dataclass(frozen=True)
class Heading:
    """One heading found in a section's Markdown."""

    start: int  # first line of the heading
    end: int  # line after it (setext headings span two lines)
    level: int
    text: str


def slug(text: str, max_len: int = 40) -> str:
    """An ASCII anchor fragment: lower case, words joined by hyphens, cut at a word boundary."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split()
    out = ""
    for w in words:
        if out and len(out) + 1 + len(w) > max_len:
            break
        out = f"{out}-{w}" if out else w[:max_len]
    return out


def find_headings(lines: list[str]) -> list[Heading]:
    """ATX (``### x``) and setext (``x`` over ``---``) headings, ignoring fenced code blocks."""
    found: list[Heading] = []
    fence: str | None = None
    previous_plain = False  # the line before could be the text of a setext heading
    for i, line in enumerate(lines):
        m = _FENCE_RE.match(line)
        if fence is not None:
            closing = m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)
            if closing and not line.strip().strip(fence[0]):
                fence = None
            previous_plain = False
            continue
        if m:
            fence = m.group(1)
            previous_plain = False
            continue
        atx = _ATX_RE.match(line)
        if atx:
            text = _CLOSING_HASHES_RE.sub("", atx.group(2) or "").strip()
            found.append(Heading(i, i + 1, len(atx.group(1)), text))
            previous_plain = False
            continue
        setext = _SETEXT_RE.match(line)
        if setext and previous_plain:
            level = 1 if setext.group(1)[0] == "=" else 2
            found.append(Heading(i - 1, i + 1, level, lines[i - 1].strip()))
            previous_plain = False
            continue
        stripped = line.strip()
        previous_plain = bool(stripped) and not stripped.startswith(("-", "*", "+", ">", "|"))
    return found


def normalise_section(text: str, section: Section) -> tuple[str, list[tuple[str, str]]]:
    """The section's Markdown with book-wide heading levels and unique anchors.

    The model's own title heading (the first line, when it is the section's top heading) is
    replaced by ``## N. Title {#sec-NN}`` from the outline; the remaining headings are shifted
    so the highest becomes ``###``, and a heading never goes more than one level below the one
    before it. Returns the text and its parts' ``(anchor, heading text)`` for the contents.
    """
    lines = text.strip("\n").splitlines()
    headings = find_headings(lines)
    first_text_line = next((i for i, line in enumerate(lines) if line.strip()), None)
    top = headings[0] if headings else None
    if top and top.start == first_text_line and top.level <= min(h.level for h in headings):
        lines[top.start : top.end] = [""] * (top.end - top.start)
        headings = headings[1:]
    base = f"sec-{section.id}"
    shift = SECTION_LEVEL + 1 - min((h.level for h in headings), default=SECTION_LEVEL + 1)
    used: set[str] = {base}
    parts: list[tuple[str, str]] = []
    previous = SECTION_LEVEL
    for h in headings:
        level = min(max(h.level + shift, SECTION_LEVEL + 1), previous + 1, 6)
        previous = level
        title = _ATTRIBUTES_RE.sub("", h.text).strip() or "Untitled"
        anchor = f"{base}-{slug(title) or 'part'}"
        n = 2
        while anchor in used:
            anchor = f"{base}-{slug(title) or 'part'}-{n}"
            n += 1
        used.add(anchor)
        if level == SECTION_LEVEL + 1:
            parts.append((anchor, title))
        # Blank lines around it: pandoc reads an ATX heading only after a blank line.
        lines[h.start : h.end] = [f"\n{'#' * level} {title} {{#{anchor}}}\n"] + [""] * (
            h.end - h.start - 1
        )
    heading = f"{'#' * SECTION_LEVEL} {section_heading(section)} {{#{base}}}"
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return f"{heading}\n\n{body}\n", parts


def section_heading(section: Section) -> str:
    return f"{section.number}. {section.title}"


def language_code(language: str) -> str | None:
    """A BCP 47 code for ``book.language`` ("English" -> "en"), or None when unknown."""
    value = language.strip()
    if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", value):
        return value
    return _LANGUAGE_CODES.get(value.casefold())


def title_block(config: dict[str, Any], simulated_all: bool = False) -> str:
    """The YAML metadata block pandoc turns into the title page (and the EPUB's metadata)."""
    book = config["book"]
    meta: dict[str, Any] = {"title": book["title"]}
    if book.get("subtitle"):
        meta["subtitle"] = book["subtitle"]
    meta["author"] = f"Written by {config['model']} with bookgen"
    if simulated_all:
        meta["author"] = (
            f"Simulated text: bookgen's offline simulator standing in for {config['model']}"
        )
    lang = language_code(book["language"])
    if lang:
        meta["lang"] = lang
    meta["description"] = " ".join(book["audience"].split())
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n"


def _link_text(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


def simulated_note(sections: list[Section], simulated: set[str]) -> str:
    """The title page's word on which sections the offline simulator wrote ("" when none)."""
    if not simulated or len(simulated) == len(sections):
        return ""
    names = ", ".join(str(s.number) for s in sections if s.id in simulated)
    return (
        f"::: {{.simulated-note}}\n**Simulated text:** section(s) {names} were written by "
        "bookgen's offline simulator, not by the model; a real run rewrites them.\n:::\n"
    )


def assemble_book(
    config: dict[str, Any],
    sections: list[Section],
    texts: list[str],
    simulated: set[str] | None = None,
) -> str:
    """``book.md``: title block, table of contents, then every section in book order.
    ``simulated``: the ids of the sections whose text the offline simulator wrote; the title
    page says which (or that all of them are)."""
    simulated = simulated or set()
    bodies = []
    toc = ["::: {.book-contents}", "## Contents {#contents .unnumbered .unlisted}", ""]
    for section, text in zip(sections, texts, strict=True):
        body, parts = normalise_section(text, section)
        bodies.append(body)
        toc.append(f"- [{_link_text(section_heading(section))}](#sec-{section.id})")
        toc.extend(f"    - [{_link_text(title)}](#{anchor})" for anchor, title in parts)
    toc += ["", ":::", ""]
    head = title_block(config, bool(sections) and len(simulated) == len(sections))
    return "\n".join([head, simulated_note(sections, simulated), "\n".join(toc), *bodies])


def write_book_md(
    config: dict[str, Any],
    sections: list[Section],
    section_files: list[Path],
    out: Path,
    simulated: set[str] | None = None,
) -> None:
    texts = [Path(p).read_text(encoding="utf-8") for p in section_files]
    atomic_write_text(out, assemble_book(config, sections, texts, simulated))


# -- conversions -----------------------------------------------------------------------------


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _pandoc(
    source: str,
    to: str,
    extra_args: list[str],
    outputfile: Path | None = None,
    source_format: str = "json",
) -> str:
    args = ["--sandbox", *extra_args]
    try:
        return pypandoc.convert_text(
            source, to, format=source_format, extra_args=args, outputfile=outputfile
        )
    except RuntimeError as e:
        raise BookFormatError(f"pandoc could not write {to}: {e}") from None


def split_title_block(markdown: str) -> tuple[dict[str, Any], str]:
    """``book.md`` cut into the metadata of bookgen's own title block (``title_block``) and
    the rest."""
    m = _TITLE_BLOCK_RE.match(markdown)
    if not m:
        return {}, markdown
    return yaml.safe_load(m.group(1)) or {}, markdown[m.end() :]


def book_document(markdown: str) -> str:
    """``book.md`` as pandoc's JSON AST: the metadata only from bookgen's title block, the
    contents read as ``SECTION_FORMAT`` and sanitised (``bookgen.formats.sanitise``), so text
    written by a model can neither run in the reader's browser nor change the title page."""
    meta, body = split_title_block(markdown)
    doc = json.loads(_pandoc(body, "json", [], source_format=SECTION_FORMAT))
    doc["meta"] = {key: {"t": "MetaString", "c": str(value)} for key, value in meta.items()}
    doc["blocks"] = sanitise(doc["blocks"])
    return json.dumps(doc, ensure_ascii=False)


def markdown_to_html(markdown: str, math: str = "mathml") -> str:
    """One self-contained HTML page: styles inline, math as MathML (``math="plain"``: Unicode).
    No ``--embed-resources``: pandoc's standalone template already puts its styles inline and
    the sanitised document links no local file, so it only re-encoded the page (0.6 s of a
    67,000-word book's 1.8 s, the same page but for line breaks inside tags)."""
    style = f"<style>\n{_template('book.css')}</style>"
    args = ["--standalone", f"--variable=header-includes:{style}"]
    if math == "mathml":
        args.append("--mathml")
    return _pandoc(book_document(markdown), "html5", args)


def write_html(markdown: str, out: Path) -> None:
    atomic_write_text(out, markdown_to_html(markdown))


def write_epub(markdown: str, out: Path) -> None:
    """EPUB 3: one chapter file per section, navigation from the headings, math as MathML."""
    with atomic_output(out) as tmp:
        _pandoc(
            book_document(markdown), "epub3", ["--mathml", f"--split-level={SECTION_LEVEL}"], tmp
        )


def write_pdf(markdown: str, out: Path) -> None:
    """PDF through WeasyPrint from the HTML (math as Unicode text: WeasyPrint has no MathML)."""
    html_to_pdf(markdown_to_html(markdown, math="plain"), out)


def html_to_pdf(html: str, out: Path) -> None:
    """Render ``html`` with the print stylesheet; only inline ``data:`` resources are read, so a
    URL or file path in the page fetches nothing, local or remote."""
    import weasyprint  # here, not at the top: 1 s to import, and only a PDF needs it

    stylesheet = weasyprint.CSS(string=_template("print.css"))
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})
    with atomic_output(out) as tmp:
        weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf(tmp, stylesheets=[stylesheet])


WRITERS = {"html": write_html, "epub": write_epub, "pdf": write_pdf}


def write_format(book_md: Path, fmt: str, out: Path) -> None:
    """Convert ``book.md`` to ``fmt`` (one of FORMATS), written atomically to ``out``."""
    if fmt not in WRITERS:
        raise BookFormatError(f"unknown book format {fmt!r}: choose one of {', '.join(FORMATS)}")
    WRITERS[fmt](Path(book_md).read_text(encoding="utf-8"), Path(out))
