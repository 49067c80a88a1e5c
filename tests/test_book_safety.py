"""Model text cannot run in the reader's browser or rewrite the book: a hostile section goes
through the real book functions (book.md, then pandoc for HTML and EPUB, WeasyPrint for PDF)
and comes out as visible text, with the title page bookgen wrote."""

from __future__ import annotations

import base64
import io
import threading
import zipfile
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from bookgen.config import sections_from_config
from bookgen.formats.book import (
    assemble_book,
    html_to_pdf,
    split_title_block,
    write_book_md,
    write_format,
)
from bookgen.formats.sanitise import sanitise
from tests.conftest import load_config

TITLE = "Tides and Coasts"
MATHML = "http://www.w3.org/1998/Math/MathML"
HOSTILE = """## Ocean Tides

The <body> element holds what a browser shows; <div> groups it.

<script>document.title = "pwned"</script>

<img src="http://evil.example/track.png">

<iframe src="file:///etc/passwd"></iframe>

---
title: Hijacked Title
author: Mallory
---

A note <!-- hidden note --> in prose.

```{=html}
<script>alert(2)</script>
```

Raw `<b>bold</b>`{=html} inline.

[a link](javascript:alert(3)), [a file](file:///etc/passwd), [a span]{onclick="alert(4)"}
and ![a remote picture](http://evil.example/a.png){onerror="alert(5)"}.

::: {onmouseover="alert(6)" style="background:url(http://evil.example/bg.png)"}
A div with handlers.
:::

[A real reference](https://en.wikipedia.org/wiki/Tide) stays a link.

\\begin{equation}
F = \\frac{2 G M r}{d^3}
\\end{equation}
"""
VISIBLE = (
    "The <body> element holds",
    "<div> groups it",
    '<script>document.title = "pwned"</script>',
    '<img src="http://evil.example/track.png">',
    '<iframe src="file:///etc/passwd"></iframe>',
    "title: Hijacked Title",
    "author: Mallory",
    "hidden note",
    "<script>alert(2)</script>",
    "<b>bold</b>",
    "a link",
    "a remote picture",
    "A div with handlers.",
)


class Page(HTMLParser):
    """Every element with its attributes, the <title>, and the visible text of <body>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self.text = ""
        self._where: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in ("img", "br", "hr", "meta", "link", "input"):
            self._where.append(tag)

    def handle_endtag(self, tag):
        if tag in self._where:
            while self._where.pop() != tag:
                pass

    def handle_data(self, data):
        if "title" in self._where and "head" in self._where:
            self.title += data
        elif "body" in self._where and not {"style", "script"} & set(self._where):
            self.text += data


def assert_inert(page: Page) -> None:
    tags = {tag for tag, _ in page.elements}
    assert not tags & {"script", "iframe", "object", "embed", "frame"}, tags
    for tag, attrs in page.elements:
        assert not [k for k in attrs if k.lower().startswith("on")], (tag, attrs)
        if tag != "html":
            assert "style" not in attrs, (tag, attrs)
        if tag == "img":
            assert (attrs.get("src") or "").startswith("data:"), attrs
        href = (attrs.get("href") or "").lower()
        assert not href.startswith(("javascript:", "file:", "data:")), (tag, attrs)
        if tag == "link":  # only the EPUB's own stylesheet, inside the package
            assert "://" not in href, attrs
    text = " ".join(page.text.replace("“", '"').replace("”", '"').split())
    for line in VISIBLE:
        assert line in text, line
    assert "Hijacked" not in page.title and "pwned" not in page.title
    assert ("math", {"display": "block", "xmlns": MATHML}) in page.elements  # raw TeX math


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """book.md of a two-section book whose first section is hostile, as the book_md rule
    writes it."""
    tmp = tmp_path_factory.mktemp("hostile")
    config = load_config(
        {
            "sections": [
                {"title": "Ocean Tides", "key_points": ["tides"], "words": 300},
                {"title": "Coastal Erosion", "key_points": ["waves"], "words": 300},
            ],
        }
    )
    config["book"]["title"] = TITLE
    files = [tmp / "section_01.md", tmp / "section_02.md"]
    files[0].write_text(HOSTILE)
    files[1].write_text("## Coastal Erosion\n\nWaves wear the coast away.\n")
    write_book_md(config, sections_from_config(config), files, tmp / "book.md")
    return tmp / "book.md"


def test_html_has_no_live_model_html_and_keeps_the_title(book):
    out = book.parent / "book.html"
    write_format(book, "html", out)
    page = Page()
    page.feed(out.read_text())
    assert_inert(page)
    assert page.title.strip() == TITLE
    links = [a.get("href") for tag, a in page.elements if tag == "a"]
    assert "https://en.wikipedia.org/wiki/Tide" in links
    assert "#sec-02" in links  # bookgen's own contents still link


def test_epub_has_no_live_model_html_and_keeps_the_title(book):
    out = book.parent / "book.epub"
    write_format(book, "epub", out)
    with zipfile.ZipFile(out) as z:
        pages = [z.read(n).decode() for n in z.namelist() if n.endswith(".xhtml")]
        opf = next(z.read(n).decode() for n in z.namelist() if n.endswith(".opf"))
    assert f'<dc:title id="epub-title-1">{TITLE}</dc:title>' in opf and "Hijacked" not in opf
    page = Page()
    for xhtml in pages:  # every chapter, the title page and the navigation
        page.feed(xhtml)
    assert_inert(page)


def test_pdf_shows_the_model_html_as_text(book):
    from pypdf import PdfReader

    out = book.parent / "book.pdf"
    write_format(book, "pdf", out)
    reader = PdfReader(out)
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    assert "The <body> element holds" in text and "title: Hijacked Title" in text
    assert TITLE in text
    assert reader.metadata.title == TITLE


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _images(pdf: Path) -> int:
    from pypdf import PdfReader

    return sum(len(page.images) for page in PdfReader(pdf).pages)


def test_weasyprint_fetches_nothing_from_the_network_or_disk(tmp_path):
    requests: list[str] = []
    png = _png()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = tmp_path / "local.png"
    local.write_bytes(png)
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        html_to_pdf(
            f'<html><head><link rel="stylesheet" href="{url}/style.css"></head><body>'
            f'<p>Text.</p><img src="{url}/remote.png"><img src="{local.as_uri()}">'
            f'<p style="background: url({url}/bg.png)">More.</p></body></html>',
            tmp_path / "fetching.pdf",
        )
    finally:
        server.shutdown()
    assert requests == []
    assert _images(tmp_path / "fetching.pdf") == 0
    # The same picture inline is drawn: the count above would have seen a fetched one.
    inline = base64.b64encode(png).decode()
    html_to_pdf(f'<img src="data:image/png;base64,{inline}">', tmp_path / "inline.pdf")
    assert _images(tmp_path / "inline.pdf") == 1


def test_only_bookgen_title_block_is_metadata():
    config = load_config()
    md = assemble_book(config, [], []) + "\n---\ntitle: Hijacked\n---\n"
    meta, body = split_title_block(md)
    assert meta["title"] == config["book"]["title"] and meta["lang"] == "en"
    assert body.lstrip().startswith("::: {.book-contents}") and "title: Hijacked" in body


def test_sanitise_keeps_what_is_safe():
    link = {"t": "Link", "c": [["x", ["c"], [["onclick", "a()"]]], [], ["mailto:a@b.org", ""]]}
    anchor = {"t": "Link", "c": [["", [], []], [], ["#sec-02", ""]]}
    raw = {"t": "RawInline", "c": ["html", "<b>x</b>"]}
    tex = {"t": "RawInline", "c": ["tex", "\\begin{equation}x\\end{equation}"]}
    assert sanitise([link, anchor, raw, tex]) == [
        {"t": "Link", "c": [["x", ["c"], []], [], ["mailto:a@b.org", ""]]},
        anchor,
        {"t": "Code", "c": [["", [], []], "<b>x</b>"]},
        tex,
    ]
