"""rag/evaluate.py's hit rule on text written without spaces: each kana or kanji counts as a word."""

from rag import evaluate

GOLD_JA = "パッケージを完全に削除するには「apt purge」を使います。"


def test_latin_rule_unchanged():
    gold = evaluate._grams("one two three four five six seven eight nine")
    assert gold[1] == evaluate.RUN == 8
    assert evaluate.is_hit("x ONE two, three four five six seven eight y", gold)
    assert not evaluate.is_hit("one two three four five six seven", gold)
    assert evaluate.words("Grüße, apt-get über") == ["grüße", "apt", "get", "über"]


def test_japanese_counts_characters():
    gold = evaluate._grams(GOLD_JA)
    assert gold[1] == evaluate.CJK_RUN == 16
    # the sentence inside a longer passage, wrapped at a line break: a hit
    assert evaluate.is_hit("設定について。パッケージを完全に\n削除するには「apt purge」を使います。以上", gold)
    # sixteen consecutive words of it are enough (fifteen characters and a Latin word), fifteen are not
    assert evaluate.is_hit("…パッケージを完全に削除するには「apt」", gold)
    assert not evaluate.is_hit("…パッケージを完全に削除するには", gold)
    # a passage sharing a few words but not the run is no hit (before, the whole clause was one
    # "word", so any passage with the same eight clauses hit and none with a line break in one did)
    assert not evaluate.is_hit("パッケージを削除するには apt remove を使います", gold)
    assert not evaluate.is_hit("パッケージを完全に削除", gold)


def test_short_japanese_gold_needs_all_of_it():
    gold = evaluate._grams("削除します")
    assert gold[1] == 5
    assert evaluate.is_hit("ファイルを削除します。", gold)
    assert not evaluate.is_hit("削除しない", gold)


def test_answer_set_facts_match_accents_and_japanese():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from answer_set import contains, too_short

    assert contains("Sie müssen die Datei löschen", "löschen")
    assert not contains("Sie müssen die Datei löschen", "ssen")  # inside "müssen": ü is a letter
    assert not contains("usé", "sé") and contains("no sé bien", "sé")
    assert not contains("I know", "no") and contains("no way", "no")
    assert contains("パッケージを\n削除する", "削除")  # no word edges in Japanese, line breaks dropped
    assert contains("apt-getを使う", "apt-get")
    assert too_short("削除します") and not too_short("どのユーザーシェルプロンプトからでも")
