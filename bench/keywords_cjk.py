"""Keyword (BM25) search in Japanese and Chinese: which FTS5 tokenizer setup finds the passage a
question is about (issue 32).

Debian's reference manual in Japanese and Chinese (the debian-reference-ja and -zh-cn packages; -en
for the check on English) cut into ~500-character passages, one throwaway FTS5 index per setup:
  unicode61  today's `porter unicode61 remove_diacritics 2` over the text as it is
  trigram    FTS5's trigram tokenizer (remove_diacritics 1 where SQLite has it, 3.45+), queried
             with Hearth's words as they are (a quoted word matches as a substring)
  trigram/3  the same index, each CJK query word cut into its overlapping 3-character pieces
             (trigram's best case: it cannot match a piece under 3 characters)
  bigrams    `porter unicode61 remove_diacritics 2` over the text with each CJK run written as its
             overlapping character pairs (ingest/language.py cjk_bigrams), the query's too
  tantivy    Hearth's keyword index since FTS5 (ingest/manifest/keywords.py: tantivy, the same pairs)
Queries go through Hearth's own query building (rag/retrieval.py query_words and keyword_query;
for the first three with cjk_bigrams switched off there). ~20 questions per language written in
users' words, each with a copied evidence string that marks its gold passage(s).

    make testdata        # Debian's reference in en, ja and zh-cn among others
    .venv/bin/python bench/keywords_cjk.py [--root FOLDER]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.chunking import is_listing  # noqa: E402
from ingest.loaders.html import sections_of  # noqa: E402
from ingest.language import _CJK, cjk_bigrams  # noqa: E402
from rag import retrieval  # noqa: E402

PASSAGE = 500
UNICODE61 = "porter unicode61 remove_diacritics 2"

# (question, evidence: a string copied from the gold passage)
QUERIES = {
    "ja": [
        ("sudoで自分のパスワードを使って管理者権限を与えるには？", "に管理者権限を (root パスワードではなく) ユーザー自身のパスワードで与える"),
        ("名前付きパイプとは何ですか？", "名前付きパイプは、パイプのように働くファイルです"),
        ("シェルでの作業をファイルに記録する方法は？", "シェル活動の記録の基本方法は script(1) の下で実行することです"),
        ("削除したパッケージの設定ファイルを完全に消すには？", "削除したパッケージが残した全ての設定ファイルを次のようにして完全削除できます"),
        ("vimとnviの両方がある時、viコマンドでどちらを実行するか選ぶには？", "nvi の両方のパッケージがインストールされた状況下で vi コマンドが"),
        ("ブートローダーはカーネルイメージをどうしますか？", "それはシステムのカーネルイメージと initrd イメージをメモリーにロードし"),
        ("良いパスワードは何文字必要ですか？", "少なくとも6から8文字の良好なパスワードを選択するべきです"),
        ("SSHでリモートシステムをシャットダウンするには？", "を使って次のようにして SSH が終了することから守る必要があります"),
        ("ロケールデータはコンパイルが必要ですか？", "ロケールデータをロケールデータベースからコンパイルする必要が有ります"),
        ("誰がシステムを利用しているか確認するには？", "だれがシステムを利用しているかは、次のようにしてチェックできます"),
        ("ログインに失敗したユーザーを表示するコマンドは？", "最後にログイン失敗したユーザーのリストを表示します"),
        ("ディスクの使用状況を調べるには？", "ディスク空間使用状況は mount と coreutils と"),
        ("ドライブのディスクイメージファイルを作るには？", "アンマウントされたドライブのディスクイメージファイル"),
        ("うっかり消去したファイルを回復できますか？", "ファイルをうっかり消去しても、そのファイルが何らかのアプリケーション"),
        ("パッチファイルを適用する方法は？", "差分ファイル (別名、パッチファイル) はプログラム更新を送るのに使われます"),
        ("古いOSで作ったファイル名をUTF-8に変換するには？", "旧 OS 下で作成されたファイル名から現代的な UTF-8 のファイル名に符号化方式を変換する"),
        ("2つのPDFファイルをマージするには？", "ファイルは Ghostscript のgs(1) をつかってマージできます"),
        ("プログラムがクラッシュしたらバックトレースを取るには？", "プログラムがクラッシュするのに出会った場合に、バックトレース情報をバグレポートに"),
        ("安定版のシステムでパッケージをリビルドするのはなぜ？", "ソースパッケージを使ってパッケージをリビルドするのが好ましいです"),
        ("スマートホスト経由でメールを送るexim4の設定は？", "スマートホスト経由のインターネットメールに関しては、exim4-* パッケージを次のように"),
        ("スクリーンが無茶苦茶になったらどうすればいい？", "スクリーンが無茶苦茶になった場合、コマンドプロンプトに"),
        ("ファイルの所有者を変更するには？", "chown(1) を使用することでファイルの所有者を変更します"),
    ],
    "zh-cn": [
        ("如何让普通用户用自己的密码获得管理员权限？", "只需输入用户密码而非 root 密码就能获得管理员权限"),
        ("什么是命名管道？", "命名管道是一个像管道一样的文件。你把内容放进了文件"),
        ("怎样把 shell 活动记录到文件中？", "将shell活动记录到文件中再来回顾它是个不错的主意"),
        ("如何清除已删除软件包的配置文件？", "您能清除所有已移除软件包的剩余配置文件"),
        ("同时安装了 vim 和 nvi 时怎么选择 vi 命令？", "例如，如果同时安装了 vim 和"),
        ("引导加载程序会把内核映像加载到哪里？", "引导加载程序是启动过程的第二阶段"),
        ("好密码应该有几个字符？", "你应该选择一个好密码，它应该由 6 到 8 个字符组成"),
        ("怎样通过 SSH 关闭远程系统？", "(参见 第 9.4.13 节 “单次任务时间安排”)来从 SSH 终端里保护"),
        ("语言环境数据需要编译吗？", "语言环境数据必须从语言环境数据库中编译"),
        ("如何查看谁登录在系统里？", "你可以通过下面的方法检查谁登录在系统里"),
        ("哪个命令显示登录失败的用户？", "lastb(1) 显示用户最后错误登录的列表"),
        ("怎么查看硬盘空间使用情况？", "硬盘空间的使用情况可以通过 mount、coreutils 和"),
        ("如何制作磁盘映像文件？", "一个未挂载设备（例如，第二个 SCSI 或 串行 ATA 设备 “/dev/sdb”）的磁盘映像文件"),
        ("不小心删除的文件还能恢复吗？", "即使你不小心删除了某个文件，只要这个文件仍然被一些应用程序所使用"),
        ("怎样应用 patch 补丁文件？", "diff 文件（通常被叫作 patch 补丁文件），用于发送一个程序更新"),
        ("如何把旧系统的文件名编码转换为 UTF-8？", "将在老的操作系统系统下创建的文件名编码，转换为现代 UTF-8"),
        ("如何合并两个 PDF 文件？", "来合并两个 PostScript(PS) 或可移植文档格式（PDF） 文件"),
        ("程序崩溃时怎样获得栈帧信息？", "当你碰到程序崩溃的时候，报告 bug 时附上栈帧信息是个不错的注意"),
        ("怎样把软件包移植到 stable 系统？", "使用源软件包在运行环境中重新构建一个软件包是不错的选择"),
        ("如何配置 exim4 通过 smarthost 发送邮件？", "对于那些通过 smarthost 的网络邮件，你应该按如下所示的 (重新) 配置 exim4-* 软件包"),
        ("谁可以修改文件的所有者？", "账户修改文件的所有者。chgrp(1)用于文件的所有者或 root"),
        ("如何重新配置系统的时区？", "下面是重新配置 Debian 系统使用的时区"),
        ("怎样列出一个进程打开的所有文件？", "你能够通过一个进程 ID(PID)来列出该进程所有打开的文件"),
    ],
}
ENGLISH_QUERIES = ["How do I change the owner of a file?", "What is a named pipe (FIFO)?",
                   "merge two PDF files", "café naïve Ärger", "recover a deleted file that is still open"]


def passages(root: Path, lang: str) -> list[str]:
    """The manual's chapters' visible text, lines packed into passages of up to PASSAGE characters
    (a longer line cut), tables of contents and indexes left out as Keywords.add leaves them out."""
    out = []
    for path in sorted((root / "usr/share/debian-reference").glob(f"ch*.{lang}.html")):
        text = "\n".join(s.text for s in sections_of(path.read_text(encoding="utf-8")))
        lines = [line[i:i + PASSAGE] for line in text.splitlines() if line.strip()
                 for i in range(0, len(line), PASSAGE)]
        current = ""
        for line in lines:
            if current and len(current) + 1 + len(line) > PASSAGE:
                out.append(current)
                current = ""
            current = f"{current}\n{line}" if current else line
        if current:
            out.append(current)
    return [p for p in out if not is_listing(p)]


def trigram_tokenizer(db: sqlite3.Connection) -> str:
    try:
        db.execute("CREATE VIRTUAL TABLE probe USING fts5(text, tokenize = 'trigram remove_diacritics 1')")
        db.execute("DROP TABLE probe")
        return "trigram remove_diacritics 1"
    except sqlite3.OperationalError:
        return "trigram"


def index(texts: list[str], tokenize: str, rewrite=lambda t: t) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE k USING fts5(text, tokenize = '{tokenize}')")
    db.executemany("INSERT INTO k (rowid, text) VALUES (?, ?)", ((i, rewrite(t)) for i, t in enumerate(texts)))
    return db


@contextmanager
def unsplit_queries():
    """rag/retrieval.py's query building as before cjk_bigrams."""
    real = retrieval.cjk_bigrams
    retrieval.cjk_bigrams = lambda text: text
    try:
        yield
    finally:
        retrieval.cjk_bigrams = real


def trigram_words(words: list[str]) -> list[str]:
    """Each CJK word as its overlapping 3-character pieces (whole when shorter); others as they are."""
    out = []
    for w in words:
        out += [w[i:i + 3] for i in range(max(len(w) - 2, 1))] if _CJK.search(w) else [w]
    return list(dict.fromkeys(out))


class TantivyIndex:
    """The passages in Hearth's own keyword index (a throwaway folder), answering ranks() as the FTS5 ones."""

    def __init__(self, texts: list[str]):
        import tempfile
        from types import SimpleNamespace

        from ingest.manifest import Database
        from ingest.manifest.keywords import Keywords

        self.folder = Path(tempfile.mkdtemp(prefix="hearth-keywords-"))
        self.keywords = Keywords(Database(self.folder / "m.sqlite3"), SimpleNamespace(collection="bench"), self.folder / "k")
        for i, text in enumerate(texts):
            self.keywords._insert(str(i), [(0, cjk_bigrams(text))])  # as add(), without leaving out listings
        self.keywords.commit()

    def rows(self, words: list[str], limit: int) -> list[int]:
        return [int(doc) for doc, _, _ in self.keywords.search(retrieval.keyword_query(words), limit)]


def ranks(db, queries, golds, words_of, limit=50) -> list[int | None]:
    """The 1-based rank of each query's first gold passage (None: not in the top `limit`)."""
    out = []
    for (question, _), gold in zip(queries, golds):
        words = words_of(question)
        if isinstance(db, TantivyIndex):
            rows = db.rows(words, limit) if words else []
        else:
            rows = [r[0] for r in db.execute("SELECT rowid FROM k WHERE k MATCH ? ORDER BY bm25(k) LIMIT ?",
                                             (retrieval.keyword_query(words), limit))] if words else []
        out.append(next((i + 1 for i, row in enumerate(rows) if row in gold), None))
    return out


def figures(found: list[int | None]) -> tuple[float, float, float]:
    n = len(found)
    return (sum(r == 1 for r in found) / n, sum(r is not None and r <= 5 for r in found) / n,
            sum(1 / r for r in found if r) / n)


def english_check(root: Path) -> None:
    """unicode61 and bigrams give the same tokens, with the same counts, on English: the rewrite
    leaves text without CJK characters exactly as it is."""
    texts = passages(root, "en")
    if not texts:
        print("English: debian-reference-en not found, not checked")
        return
    unchanged = sum(cjk_bigrams(t) == t for t in texts)
    vocab = []
    for rewrite in (lambda t: t, cjk_bigrams):
        db = index(texts, UNICODE61, rewrite)
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(k, instance)")
        vocab.append(db.execute("SELECT term, doc, offset FROM v ORDER BY term, doc, offset").fetchall())
    with unsplit_queries():
        before = [retrieval.query_words(q) for q in ENGLISH_QUERIES]
    after = [retrieval.query_words(q) for q in ENGLISH_QUERIES]
    print(f"English ({len(texts)} passages): text unchanged by cjk_bigrams in {unchanged}/{len(texts)}; "
          f"token instances {len(vocab[0])} vs {len(vocab[1])}, identical: {vocab[0] == vocab[1]}; "
          f"query words identical: {before == after}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT / ".cache/testdata/root",
                        help="where the .deb files were unpacked (default: make testdata's)")
    parser.add_argument("--misses", action="store_true", help="print the questions the bigram index misses at 5")
    args = parser.parse_args()
    trigram = trigram_tokenizer(sqlite3.connect(":memory:"))
    print(f"SQLite {sqlite3.sqlite_version}; trigram tokenizer: '{trigram}'")
    print(f"{'language':9} {'setup':10} {'queries':>7} {'hit@1':>6} {'hit@5':>6} {'MRR':>6}")
    for lang, queries in QUERIES.items():
        texts = passages(args.root, lang)
        golds = [{i for i, t in enumerate(texts) if evidence in t} for _, evidence in queries]
        lost = [q for (q, e), g in zip(queries, golds) if not g or len(e) < 16]
        assert not lost, f"evidence not found (or under 16 characters) for {lost}"
        with unsplit_queries():
            plain = index(texts, UNICODE61)
            tri = index(texts, trigram)
            setups = [("unicode61", ranks(plain, queries, golds, retrieval.query_words)),
                      ("trigram", ranks(tri, queries, golds, retrieval.query_words)),
                      ("trigram/3", ranks(tri, queries, golds, lambda q: trigram_words(retrieval.query_words(q))))]
        bigrams = index(texts, UNICODE61, cjk_bigrams)
        setups.append(("bigrams", ranks(bigrams, queries, golds, retrieval.query_words)))
        setups.append(("tantivy", ranks(TantivyIndex(texts), queries, golds, retrieval.query_words)))
        for name, found in setups:
            print(f"{lang:9} {name:10} {len(queries):>7} " + " ".join(f"{x:6.3f}" for x in figures(found)))
        if args.misses:
            for (q, _), r in zip(queries, setups[-2][1]):
                if not r or r > 5:
                    print(f"   bigrams missed: {q} (rank {r})")
        print(f"{'':9} ({len(texts)} passages, gold passages per query: {sum(map(len, golds)) / len(golds):.2f})")
    english_check(args.root)


if __name__ == "__main__":
    main()
