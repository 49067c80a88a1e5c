"""The assembled book and its formats, checked in the real files: book.md, HTML, EPUB, PDF and
Snakemake's own report; plus the estimate once some sections are measured."""

from __future__ import annotations

import json
import re
import zipfile
from html.parser import HTMLParser
from pathlib import PurePosixPath
from xml.etree import ElementTree

import pytest

from bookgen.config import Section
from bookgen.formats.book import find_headings, markdown_to_html, normalise_section
from tests.book import Book, short_sections

SMALL = {"sections": short_sections(350), "formats": ["html", "epub", "pdf"]}
FIRST = ("01", "02", "03")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Book:
    """A small-sections demo book: three sections, an estimate, then everything in all formats."""
    book = Book(tmp_path_factory.mktemp("formats") / "book", SMALL)
    proc = book.run(*(f"output/section_{i}.md" for i in FIRST), "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    est = book.bookgen("estimate", "--json")
    assert est.returncode == 0, est.stderr
    book.partial_estimate = json.loads(est.stdout)
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return book


def _titles(book: Book) -> list[str]:
    usage = [book.json(f"output/usage/section_{i:02d}.json") for i in range(1, 12)]
    return [f"{n}. {u['title']}" for n, u in enumerate(usage, start=1)]


# -- book.md ---------------------------------------------------------------------------------


def test_book_md_has_title_page_contents_and_every_section_in_order(built):
    md = built.file("output/book.md").read_text()
    assert md.startswith("---\ntitle: ")
    assert "How Computers Work" in md.split("---", 2)[1]
    lines = md.splitlines()
    headings = find_headings(lines)
    sections = [h for h in headings if h.level == 2 and "{#sec-" in h.text]
    assert [h.text.split(" {#")[0] for h in sections] == _titles(built)
    assert min(h.level for h in headings) == 2  # the book title lives in the title block
    anchors = re.findall(r"\{#([\w-]+)[^}]*\}\s*$", md, re.MULTILINE)
    assert len(anchors) == len(set(anchors)), "heading anchors must be unique"
    for i, h in enumerate(headings[1:], start=1):
        assert h.level <= headings[i - 1].level + 1, f"heading level jumps at {h.text!r}"
    contents = md.split(":::")[1]
    links = re.findall(r"\]\(#([\w-]+)\)", contents)
    assert set(links) <= set(anchors) and len(links) > 11
    assert contents.index("#sec-01)") < contents.index("#sec-11)")


def test_section_headings_are_normalised_and_anchors_unique():
    text = (
        "# Bits and Bytes\n\nIntro.\n\n## Counting\n\ntext\n\n#### Deep part\n\n"
        "```\n# not a heading\n```\n\nSetext part\n-----------\n\n## Summary\n\n## Summary\n"
    )
    section = Section(id="03", number=3, title="Bits", key_points=("x",), words=100)
    body, parts = normalise_section(text, section)
    headings = find_headings(body.splitlines())
    assert [(h.level, h.text) for h in headings] == [
        (2, "3. Bits {#sec-03}"),
        (3, "Counting {#sec-03-counting}"),
        (4, "Deep part {#sec-03-deep-part}"),  # was two levels down: a jump, now one
        (3, "Setext part {#sec-03-setext-part}"),
        (3, "Summary {#sec-03-summary}"),
        (3, "Summary {#sec-03-summary-2}"),
    ]
    assert "# not a heading" in body and "Bits and Bytes" not in body
    assert [a for a, _ in parts] == [
        "sec-03-counting",
        "sec-03-setext-part",
        "sec-03-summary",
        "sec-03-summary-2",
    ]


def test_math_is_rendered_as_mathml_and_nothing_is_fetched():
    html = markdown_to_html(
        "---\ntitle: T\n---\n\n## A {#a}\n\nRate $r = \\frac{\\Delta y}{\\Delta x}$.\n\n"
        "![x](https://example.com/x.png)\n"
    )
    assert "<math" in html and "<mfrac>" in html
    assert "<script" not in html and 'rel="stylesheet"' not in html


# -- HTML ------------------------------------------------------------------------------------


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.external: list[str] = []
        self.h2: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and (a.get("href") or "").startswith("#"):
            self.links.append(a["href"][1:])
        for key in ("src", "href"):
            if tag in ("img", "script", "link") and (a.get(key) or "").startswith("http"):
                self.external.append(a[key])
        self._in_h2 = tag == "h2"
        if self._in_h2:
            self.h2.append("")

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2[-1] += data


def test_html_is_one_page_with_every_section_and_working_contents_links(built):
    parser = _Anchors()
    parser.feed(built.file("output/book.html").read_text())
    headings = [" ".join(h.split()) for h in parser.h2]
    assert headings == ["Contents", *_titles(built)]
    assert len(parser.links) > 11 and set(parser.links) <= parser.ids
    assert {f"sec-{i:02d}" for i in range(1, 12)} <= set(parser.links)
    assert parser.external == []  # self-contained: no stylesheet, script or image from outside


# -- EPUB ------------------------------------------------------------------------------------


def test_epub_is_a_valid_package_with_every_section(built):
    path = built.file("output/book.epub")
    with zipfile.ZipFile(path) as z:
        first = z.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert z.read("mimetype") == b"application/epub+zip"
        assert z.testzip() is None
        ns = {
            "c": "urn:oasis:names:tc:opendocument:xmlns:container",
            "opf": "http://www.idpf.org/2007/opf",
            "dc": "http://purl.org/dc/elements/1.1/",
        }
        container = ElementTree.fromstring(z.read("META-INF/container.xml"))
        opf_path = container.find(".//c:rootfile", ns).get("full-path")
        opf = ElementTree.fromstring(z.read(opf_path))
        base = PurePosixPath(opf_path).parent
        assert "How Computers Work" in opf.find(".//dc:title", ns).text
        manifest = {i.get("id"): i.get("href") for i in opf.findall(".//opf:item", ns)}
        names = set(z.namelist())
        assert all(str(base / href) in names for href in manifest.values())
        spine = [manifest[r.get("idref")] for r in opf.findall(".//opf:itemref", ns)]
        text = " ".join(z.read(str(base / h)).decode() for h in spine)
        nav = next(h for h in manifest.values() if h.endswith("nav.xhtml"))
        nav_text = z.read(str(base / nav)).decode()
    for title in _titles(built):
        escaped = title.replace("'", "’").replace("&", "&amp;")
        assert title in text or escaped in text, title
        assert title in nav_text or escaped in nav_text, title


# -- PDF -------------------------------------------------------------------------------------


def test_pdf_pages_fit_the_text_and_contain_every_title(built):
    from pypdf import PdfReader

    reader = PdfReader(built.file("output/book.pdf"))
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    for title in _titles(built):
        assert " ".join(title.split()) in text, title
    words = len(built.file("output/book.md").read_text().split())
    pages = len(reader.pages)
    # A title page, the contents, every section on a new page; ~250-600 words a full page.
    assert 2 + 11 <= pages <= 3 + 11 + words // 250
    assert words / pages < 600


# -- targets, defaults and Snakemake's report ------------------------------------------------


def test_formats_are_their_own_targets_and_html_only_by_default(built, tmp_path):
    book = built.copy(tmp_path / "book")
    book.set_overrides({"provider": "simulator", "sections": SMALL["sections"]})
    assert book.pending() == {}
    for f in ("html", "epub", "pdf"):
        book.file(f"output/book.{f}").unlink()
    jobs = book.run("--dry-run")
    assert "output/book.html" in jobs.stdout and "output/book.pdf" not in jobs.stdout
    assert "Writing section" not in jobs.stdout
    jobs = book.run("--dry-run", "output/book.epub")
    assert "output/book.epub" in jobs.stdout and "output/book.html" not in jobs.stdout


def test_snakemake_report_has_the_book_and_the_cost_report(built, tmp_path):
    proc = built.run("--report", "output/report.html")
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = built.file("output/report.html").read_text()
    items = json.loads(re.search(r"var results = (\{.*?\});\n", html, re.S).group(1))
    assert {"output/book.html", "output/book.epub", "output/book.pdf"} <= set(items)
    assert "output/cost_report.md" in items
    assert "The whole book as <strong>html</strong>" in items["output/book.html"]["caption"]
    assert "What writing the book cost" in items["output/cost_report.md"]["caption"]


# -- estimate from measured sections ---------------------------------------------------------


def test_estimate_after_some_sections_uses_their_measurements(built):
    est = built.partial_estimate
    assert "measured" in est["assumptions"]["source"]
    assert [r["id"] for r in est["pending"]] == [f"{i:02d}" for i in range(4, 12)]
    measured = [built.json(f"output/usage/section_{i}.json") for i in FIRST]
    per_word = sum(u["totals"]["completion_tokens"] for u in measured) / (350 * len(FIRST))
    assert est["assumptions"]["completion_per_word"] == pytest.approx(per_word)
    rest = [built.json(f"output/usage/section_{i:02d}.json") for i in range(4, 12)]
    actual_out = sum(u["totals"]["completion_tokens"] for u in rest)
    assert est["totals"]["completion_tokens"] == pytest.approx(actual_out, rel=0.3)
    actual_cost = sum(u["totals"]["simulated_cost_usd"] for u in rest)  # would have cost
    period = rest[0]["calls"][0]["rates"]["period"]
    assert est["totals"]["cost_usd"]["by_period"][period] == pytest.approx(actual_cost, rel=0.3)


def test_the_title_page_names_the_simulated_sections(demo_config):
    from bookgen.config import sections_from_config
    from bookgen.formats.book import assemble_book

    sections = sections_from_config(demo_config)[:3]
    texts = [f"Text of {s.title}.\n" for s in sections]
    mixed = assemble_book(demo_config, sections, texts, simulated={"02"})
    head = mixed.split("## Contents")[0]
    assert "section(s) 2 were written by bookgen's offline simulator" in head
    assert "Written by deepseek-flash" in head
    every = assemble_book(demo_config, sections, texts, simulated={"01", "02", "03"})
    assert "Simulated text: bookgen''s offline simulator standing in for deepseek-flash" in every
    real = assemble_book(demo_config, sections, texts)
    assert "imulat" not in real.split("## Contents")[0]
