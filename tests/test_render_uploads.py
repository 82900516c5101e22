"""What the app shows and stores: escaped text, highlighted citations, cleaned upload names."""

from __future__ import annotations

import os

import pytest

from rag import render, uploads
from rag.uploads import UploadError, safe_name

ATTACK = "<script>window.x=1</script> <img src=x onerror=\"alert(1)\"> :red[big] $x$ **bold** [a](javascript:1)"


def test_document_text_has_every_markdown_character_escaped():
    md = render.text(ATTACK)
    assert "<" not in md.replace("\\<", "") and "$" not in md.replace("\\$", "") and "*" not in md.replace("\\*", "")
    assert md.replace("\\", "") == ATTACK  # unescaped, it is exactly the document's text
    assert render.text("two\nlines   here") == "two lines here"


def test_answers_keep_markdown_but_not_html_math_or_directives():
    md = render.answer("Use **read.csv** and `df$x`:\n\n- <b>one</b> costs $5 and $6 :red[x]")
    assert "**read.csv**" in md and "`df$x`" in md and "- " in md  # formatting and code untouched
    assert "\\<b\\>" in md and "\\$5" in md and "\\:red" in md


def test_the_sentence_an_answer_cites_is_highlighted():
    passage = ("Receipts and bank statements must be kept for six years after the tax year ends. "
               "Scan them and store the scans in the folder called Archive. The boiler is serviced in October.")
    answer = "Keep receipts for six years after the tax year ends. [2] Put scans in the Archive folder [2][3]."
    claims = render.claims_citing(answer, 2)
    assert len(claims) == 2 and render.claims_citing(answer, 3) == [claims[1]]
    marked = [text for text, cited in render.cited_segments(passage, claims) if cited]
    assert marked == ["Receipts and bank statements must be kept for six years after the tax year ends.",
                      "Scan them and store the scans in the folder called Archive."]
    md = render.passage(passage, claims)
    assert md.count(":orange-background[") == 2 and "The boiler is serviced in October\\." in md
    assert render.passage(passage, []) == render.text(passage)  # uncited: plain escaped text


def test_no_highlight_without_shared_words():
    assert not any(c for _, c in render.cited_segments("Tomatoes need sun.", ["The tax is due in July [1]."]))


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
