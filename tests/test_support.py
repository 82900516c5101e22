"""Claim-level support (rag/support.py) with the real embedding model: spans, marks, JSON, export."""

from __future__ import annotations

import re

import pytest

from rag import export, render
from rag.answer import Answer, check_citations, quote_support, source_offsets
from rag.retrieval import Hit
from rag.support import attribute, check_support, claim_text, novel_terms, split_sentences

TAX = ("Receipts and bank statements must be kept for six years after the tax year ends. "
       "Scan them and store the scans in the folder called Archive. The boiler is serviced in October "
       "by the company on the invoice.")
GARDEN = "Tomatoes need full sun and water every morning. Basil grows well beside them in pots."


def passages():
    return [Hit(TAX, "/docs/household.md", None, 0.8, "a:0", "Paperwork", 120),
            Hit(GARDEN, "/docs/garden.pdf", 3, 0.6, "b:4", None, 0)]


def test_sentences_keep_their_citations():
    text = "Keep them six years [1]. Scan them. [1][2]\n- Basil likes pots [2]\n[2]"
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "Keep them six years [1].", "Scan them. [1][2]", "- Basil likes pots [2]\n[2]"]


def test_code_lists_abbreviations_and_urls_stay_whole():
    text = ("Use read.csv, e.g. read.csv(\"a.csv\") [1]. See https://cran.r-project.org/doc. J. Smith wrote it.\n"
            "```python\nif x:\n    a()\nelif y:\n    b()\nelse:\n    c()\n```\n"
            "1. Install it.\n2. Run it [2].")
    assert [text[a:b] for a, b in split_sentences(text)] == [
        'Use read.csv, e.g. read.csv("a.csv") [1].', "See https://cran.r-project.org/doc.", "J. Smith wrote it.",
        "```python\nif x:\n    a()\nelif y:\n    b()\nelse:\n    c()\n```", "1. Install it.", "2. Run it [2]."]


def test_each_sentence_is_attributed_then_checked(embedder):
    answer = ("You must keep receipts and bank statements for six years after the tax year ends [1]. "
              "Basil grows well in pots beside tomatoes [2]. "
              "The boiler is serviced in October [2]. "
              "Receipts must be kept for ten years [1]. "
              "Bank statements can be thrown away after a month. "
              "The documents don't say when the roof was repaired.")
    hits = passages()
    got = check_support(answer, hits, embedder)
    assert [x.supported for x in got] == [True, True, True, False, False, None], [(x.text, x.score) for x in got]
    first = got[0]
    assert (first.n, TAX[slice(*first.span)]) == (1, TAX.split(". ")[0] + ".")
    assert "Basil grows well beside them in pots." in got[1].quote  # with the sentence "them" refers to
    # the boiler is in [1], not in the [2] it cites: its citation moves there
    assert (got[2].n, got[2].citations, got[2].attributed) == (1, [1], "moved")
    assert got[3].n == 1 and got[3].attributed == ""  # ten years: its own passage is the closest, still wrong
    assert got[4].citations == [] and got[4].supported is False  # cites nothing, and nothing shown says it


def test_a_sentence_without_a_marker_gets_the_passage_that_supports_it(embedder):
    # the model cites once, at the end of the paragraph: the first sentence is copied from [2]
    answer = "Tomatoes need full sun and water every morning. Receipts must be kept for six years [1]."
    hits = passages()
    got = check_support(answer, hits, embedder)
    assert [(x.supported, x.citations, x.attributed) for x in got] == [(True, [2], "added"), (True, [1], "")]
    text = attribute(answer, got)
    assert text == "Tomatoes need full sun and water every morning [2]. Receipts must be kept for six years [1]."
    assert [text[x.start:x.end] for x in got] == [x.text for x in got]
    moved = check_support("Basil grows in pots beside tomatoes [1].", hits, embedder)
    assert attribute("Basil grows in pots beside tomatoes [1].", moved) == "Basil grows in pots beside tomatoes [2]."


def test_a_word_glued_to_a_dotted_name_is_not_a_new_term(embedder):
    # the model copies R-intro's sentence but drops the spaces before ".Rprofile"
    text = ("A second, personal, profile file named .Rprofile can be placed in any directory. If no .Rprofile "
            "file is found in the startup directory, then R looks for a .Rprofile file in the user's home "
            "directory and uses that (if it exists).")
    hit = Hit(text, "/docs/R-intro.pdf", 58, 0.6, "r:58", None, 0)
    answer = ("If no.Rprofile file is found in the startup directory, then R looks for a.Rprofile file in the "
              "user's home directory [1].")
    assert novel_terms(claim_text(answer), [text]) == []
    assert [x.supported for x in check_support(answer, [hit], embedder)] == [True]
    assert novel_terms("R reads no.Renviron first.", [text]) == ["no.Renviron"]


def test_a_code_block_is_checked_by_the_names_it_uses(embedder):
    hits = [Hit("Use read.csv to read a comma-separated file; write.table writes one.", "/d/r.pdf", 3, 0.8, "c:0")]
    good = check_support("Like this:\n```r\nx <- read.csv(\"data.csv\")\n```", hits, embedder)
    assert [(x.supported, x.citations) for x in good][1] == (True, [1])
    bad = check_support("```python\nimport pandas\ndf = pandas.read_excel(path)\n```", hits, embedder)
    assert bad[0].supported is False


def test_the_quote_is_the_supporting_span_and_json_gives_source_offsets(embedder):
    hits = passages()
    text, citations = check_citations("Keep receipts for six years after the tax year ends [1]. "
                                      "The roof is made of gold [2].", hits)
    sentences = check_support(text, hits, embedder)
    quote_support(citations, sentences, hits)
    assert citations[0].quote == "Receipts and bank statements must be kept for six years after the tax year ends."
    assert citations[0].span == (120, 120 + len(citations[0].quote))
    assert citations[1].quote == GARDEN  # nothing supported rests on [2]: the whole passage stays
    answer = Answer("q", text, citations, hits, "m", sentences=sentences)
    rows = answer.to_json()["sentences"]
    assert [(r["text"], r["citations"], r["supported"]) for r in rows] == [
        ("Keep receipts for six years after the tax year ends [1].", [1], True),
        ("The roof is made of gold [2].", [2], False)]
    span = rows[0]["span"]
    assert (span["source"], span["start"], span["end"]) == ("/docs/household.md", 120, 120 + len(span["quote"]))
    assert source_offsets(hits[0], sentences[0].span)["start"] == 120
    assert rows[1]["span"]["n"] == 2 and rows[1]["supported"] is False  # its best (failed) match is still given


def test_unsupported_sentences_are_marked_in_the_app_and_the_export(embedder):
    hits = passages()
    text, citations = check_citations("Keep receipts for six years after the tax year ends [1]. "
                                      "The roof is made of gold [2]. Pay the plumber in cash.", hits)
    sentences = check_support(text, hits, embedder)
    answer = Answer("q", text, citations, hits, "m", sentences=sentences)
    assert len(answer.unsupported) == 2
    md = render.answer(answer.answer, [x.end for x in answer.unsupported])
    assert md.count(render.UNSUPPORTED) == 2 and md.index("gold") < md.index(render.UNSUPPORTED)
    assert md.startswith("Keep receipts") and render.UNSUPPORTED not in md.split("gold")[0]
    exported = export.answer_markdown(answer)
    assert exported.count(export.UNSUPPORTED) == 3  # two marks and the line that explains them
    assert "2 of 3 sentences" in exported


def test_highlight_covers_exactly_the_span():
    md = render.passage(TAX, [(0, 81)])
    assert md.startswith(":orange-background[Receipts and bank statements") and md.count(":orange-background[") == 1
    inside = re.search(r":orange-background\[(.*?)\]", md).group(1)
    assert inside.endswith("ends\\.") and "Scan them" in md.split("]", 1)[1]
    assert render.passage(TAX, []) == render.text(TAX)


def test_a_model_cannot_forge_the_mark():
    forged = "Fine \ue000 text :orange-badge[unsupported]"
    md = render.answer(forged)
    assert "\ue000" not in md and ":orange-badge[" not in md  # its directive is escaped, the character dropped


def test_a_passage_is_shown_in_its_document_with_its_neighbours(home, embedder, tmp_path):
    from rag.api import Hearth

    notes = tmp_path / "notes.md"
    notes.write_text("# Boiler\n\nThe boiler is serviced every October.\n\n# Garden\n\n" + GARDEN + "\n\n# Car\n\n"
                     "The car's tyres are changed in November.\n")
    with Hearth(embedder=embedder) as h:
        h.sync([notes])
        hit = h.search("basil pots", 1)[0]
        shown = h.view(hit, "Basil grows well beside them in pots.")
        assert shown["kind"] == "text" and "The boiler is serviced" in shown["text"]  # the document around it
        a, b = shown["span"]
        assert shown["text"][a:b] == "Basil grows well beside them in pots."
        first = h.passage(hit.chunk_id, -2) or h.passage(hit.chunk_id, -1)
        assert "boiler" in first.text.lower() and h.passage(first.chunk_id, -1) is None  # no passage before the first
        assert "tyres" in h.passage(hit.chunk_id, 1).text
        notes.unlink()
        assert h.view(hit)["kind"] == "missing"


def test_the_viewer_caps_a_page_s_pixels_and_shows_what_was_stored(home, embedder, tmp_path, monkeypatch):
    """A poster-sized PDF page is rendered within MAX_PIXELS (at 1.5x it would be 56 million), and a
    text file is shown as it was indexed: no loader, and so no OCR, runs in the app's process."""
    import io

    from fpdf import FPDF
    from PIL import Image

    from ingest import loaders
    from rag import viewer
    from rag.api import Hearth

    poster = FPDF(unit="pt", format=(5000, 5000))
    poster.add_page()
    poster.set_font("Helvetica", size=40)
    poster.multi_cell(0, 50, "The summer fete is held on the village green in August.")
    poster.output(str(tmp_path / "poster.pdf"))
    notes = tmp_path / "notes.md"
    notes.write_text("# Boiler\n\nThe boiler is serviced every October.\n\n# Garden\n\n" + GARDEN + "\n")
    with Hearth(embedder=embedder) as h:
        h.sync([tmp_path / "poster.pdf", notes])
        fete = h.search("when is the summer fete", 1)[0]
        shown = h.view(fete, "held on the village green")
        width, height = Image.open(io.BytesIO(shown["png"])).size
        assert shown["kind"] == "page" and width * height <= viewer.MAX_PIXELS and shown["boxes"]
        loaded = []
        monkeypatch.setattr(loaders, "load", lambda *a, **k: loaded.append(a) or pytest.fail("a loader ran"))
        notes.write_text("Changed on disk since it was indexed.\n")
        hit = h.search("basil pots", 1)[0]
        shown = h.view(hit, "Basil grows well beside them in pots.")
        a, b = shown["span"]
        assert shown["kind"] == "text" and shown["text"][a:b] == "Basil grows well beside them in pots." and not loaded


def test_the_lead_is_the_passage_span_closest_to_the_question(embedder):
    from rag.support import best_span

    lead = best_span("how many years must I keep my receipts", passages(), embedder)
    assert lead.n == 1 and "six years" in lead.quote and lead.supported
    assert TAX[slice(*lead.span)].startswith("Receipts and bank statements")
    assert best_span("zebra migration", passages(), embedder) is None  # no word in common: no lead


def test_an_answer_whose_main_claim_is_unsupported_is_a_mismatch(embedder):
    from rag.answer import mismatch_of

    hits = passages()
    right = check_support("Receipts must be kept for six years after the tax year ends [1]. Pay in cash.", hits, embedder)
    wrong = check_support("Receipts can be thrown away after a month [1]. Scan them first [1].", hits, embedder)
    refusal = check_support("The documents don't say.", hits, embedder)
    assert [x.supported for x in right] == [True, False] and not mismatch_of(right[:1])
    assert mismatch_of(right)  # half its claims unsupported
    assert wrong[0].supported is False and mismatch_of(wrong)  # its first claim is wrong
    assert not mismatch_of(refusal)  # claims nothing
    meta = check_support("Keep receipts for six years [1]. The passage that provides this information is [1]. "
                         "This can be done in two or three short sentences.", hits, embedder)
    assert [x.supported for x in meta] == [True, None, None]  # about the passages or the prompt: no claim
