"""What the app shows and stores: escaped text, highlighted citations, cleaned upload names."""

from __future__ import annotations

import os
import re

import pytest

from payloads import payloads
from rag import export, render, uploads
from rag.answer import Answer, Citation
from rag.retrieval import Hit
from rag.uploads import UploadError, safe_name

ATTACK = "<script>window.x=1</script> <img src=x onerror=\"alert(1)\"> :red[big] $x$ **bold** [a](javascript:1)"


def test_document_text_has_every_markdown_character_escaped():
    md = render.text(ATTACK)
    assert "<" not in md.replace("\\<", "") and "$" not in md.replace("\\$", "") and "*" not in md.replace("\\*", "")
    assert md.replace("\\", "").replace("\u2060", "") == ATTACK  # unescaped, it is exactly the document's text
    assert render.text("two\nlines   here") == "two lines here"


def test_answers_keep_markdown_but_not_html_math_or_directives():
    md = render.answer("Use **read.csv** and `df$x`:\n\n- <b>one</b> costs $5 and $6 :red[x]")
    assert "**read\\.csv**" in md and "`df$x`" in md and "- " in md  # formatting and code kept
    assert "\\<b\\>" in md and "\\$5" in md and "\\:red" in md
    assert render.answer("  1. one\n    - two\n## Head") == "   1. one\n      - two\n## Head"


def _tags(markdown: str) -> list[tuple[str, list]]:
    """Every HTML element a CommonMark + GFM viewer (markdown-it, with linkify) makes of `markdown`."""
    from html.parser import HTMLParser

    from markdown_it import MarkdownIt

    tags = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: tags.append((tag, attrs))
    parser.feed(MarkdownIt("gfm-like").render(markdown))
    return tags


INERT = {"p", "strong", "em", "code", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "hr"}


@pytest.mark.parametrize("payload", payloads("http://127.0.0.1:9"))
def test_nothing_a_model_or_document_writes_becomes_a_link_image_or_html(payload):
    for markdown in (render.answer(payload), render.text(payload), render.passage(payload, [(0, len(payload) // 2)])):
        tags = _tags(markdown.replace(":orange-background[", "").replace("]", ""))
        assert all(tag in INERT and not attrs for tag, attrs in tags), (payload, markdown, tags)
    assert "127.0.0.1:9" in render.answer(payload).replace("\\", "")  # shown as text, not dropped
    for markdown in (render.answer(payload), render.text(payload)):  # no URL or address for a viewer to link
        prose = re.sub(r"`[^`]*`", "", markdown.replace("\\", ""))
        assert not re.search(r"(?i)(https?|data|javascript)://|www\.|\w@\w", prose), prose


@pytest.mark.parametrize("payload", payloads("http://127.0.0.1:9"))
def test_an_export_links_only_to_its_own_footnotes(payload):
    hit = Hit(payload, f"/lib/{payload[:40]}.md", 2, 0.9, "d:0", payload)
    answer = Answer(payload, payload + " [1]", [Citation(1, hit.source, 2, payload, payload, "d:0")], [hit],
                    payload, error=payload)
    for markdown in (export.answer_markdown(answer, collection=payload), export.chat_markdown([answer, answer])):
        for tag, attrs in _tags(markdown):
            assert tag in INERT | {"a", "section", "sup", "br", "hr"}, (tag, attrs)
            hrefs = [v for k, v in attrs if k in ("href", "src", "style", "poster", "srcset")]
            assert all(v.startswith("#") for v in hrefs if v is not None), (payload, attrs)


def test_unclosed_and_mid_line_fences_leave_the_rest_escaped():
    assert render.answer("see ```x ![a](http://h/i.png)").endswith("\\!\\[a\\]\\(http\u2060\\:\\/\\/h\\/i\\.png\\)")
    md = render.answer("```python\nx = '![a](b)' ``` \n")
    assert md.startswith("````\n") and md.endswith("\n````")  # run to the end, then closed, by a longer fence
    assert [tag for tag, _ in _tags(render.answer("``` `` ``` and `x`"))] == ["p", "code", "code"]
    fenced = render.answer("```\nclose ```` early?\n```")
    assert fenced.splitlines()[0] == "`````" and fenced.splitlines()[-1] == "`````"  # longer than any run inside


@pytest.mark.parametrize("name, expected", [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("C:\\Users\\me\\notes.md", "notes.md"),
    ("/abs/path/x.docx", "x.docx"),
    ("nul\x00byte.txt", "nul_byte.txt"),
    ("new\nline.txt", "new_line.txt"),
    (".hidden.md", "hidden.md"),
    ("~$lock.docx", "upload-lock.docx"),
    ("CON.txt", "CON_.txt"),
    ("..", "upload-"),
    ("Ünïcödé résumé.pdf", "Ünïcödé résumé.pdf"),
])
def test_upload_names_are_cleaned(name, expected):
    assert safe_name(name) == expected


def test_long_names_are_cut_to_fit_any_filesystem():
    name = safe_name("é" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= uploads.MAX_NAME_BYTES


def test_save_stays_inside_the_folder_and_never_overwrites(tmp_path):
    folder = tmp_path / "library" / "default"
    first = uploads.save(folder, "../../escape.txt", b"one", max_mb=1)
    assert first == folder / "escape.txt" and first.read_bytes() == b"one"
    assert uploads.save(folder, "escape.txt", b"one", max_mb=1) == first  # same bytes: same file
    second = uploads.save(folder, "escape.txt", b"two", max_mb=1)
    assert second == folder / "escape (2).txt" and first.read_bytes() == b"one"
    assert sorted(os.listdir(folder)) == ["escape (2).txt", "escape.txt"]  # no temp file left
    assert not (tmp_path / "escape.txt").exists()


def test_save_refuses_big_and_unsupported_files(tmp_path):
    with pytest.raises(UploadError, match="too large"):
        uploads.save(tmp_path, "big.txt", b"x" * (2 * 2**20), max_mb=1)
    with pytest.raises(UploadError, match="not a supported type"):
        uploads.save(tmp_path, "tool.exe", b"MZ", max_mb=1)
    assert list(tmp_path.iterdir()) == []


def test_printable_shows_control_and_bidi_characters_as_escapes():
    from rag.render import printable

    assert printable("a\x1b[31mb\u202ec\td\ne") == "a\\x1b[31mb\\u202ec\td\ne"
    assert printable("x\ny\tz", keep="") == "x\\x0ay\\x09z"
    assert printable("ünïcödé ｒésumé") == "ünïcödé ｒésumé"


def test_an_upload_never_writes_through_a_symlink(tmp_path):
    folder, outside = tmp_path / "library" / "default", tmp_path / "outside.txt"
    folder.mkdir(parents=True)
    outside.write_text("keep me")
    os.symlink(outside, folder / "notes.txt")  # planted where an upload of "notes.txt" would land
    saved = uploads.save(folder, "notes.txt", b"uploaded", max_mb=1)
    assert outside.read_text() == "keep me" and saved.parent == folder and not saved.is_symlink()
    assert saved.read_bytes() == b"uploaded"


def test_a_name_that_is_all_extension_ends_and_fits():
    for name in ("x." + "a" * 300, "." + "b" * 400, "report." + "é" * 200):
        clean = safe_name(name)
        assert clean and len(clean.encode()) <= uploads.MAX_NAME_BYTES
    assert safe_name("." + "b" * 400).startswith("b")  # the "extension" was the name


def test_two_uploads_of_one_name_at_once_each_keep_their_bytes(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    folder = tmp_path / "library"
    blobs = [f"version {i} ".encode() * 2000 for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        saved = list(pool.map(lambda data: uploads.save(folder, "notes.txt", data, max_mb=1), blobs))
    assert len(set(saved)) == 8  # none overwrote another
    assert sorted(p.read_bytes() for p in saved) == sorted(blobs)
    assert sorted(os.listdir(folder)) == sorted(p.name for p in saved)  # no temp file left
