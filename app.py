"""Hearth's app: chat with your documents, manage the library. `make run` serves it on 127.0.0.1.

This file checks who is asking, then draws the sidebar and a page: rag/ui/sidebar.py, rag/ui/chat.py,
rag/ui/library.py (what they share: rag/ui/common.py). Everything they do goes through rag.api (the
same verbs as the CLI): a question goes chat_page() -> Hearth.ask (search, prompt, stream) ->
show_answer(); uploads go library_page() -> Hearth.add_upload -> Hearth.sync. All text a document or a model wrote is shown through rag.render, which escapes it:
nothing in it can run or fetch anything.
"""

from __future__ import annotations


import streamlit as st

from ingest.errors import StoreUnreachable
from ingest.settings import load_settings
from rag import api
from rag.api import render

st.set_page_config(page_title="Hearth", page_icon="🔥", layout="wide")
state = st.session_state


def refuse_unless_private():
    """.streamlit/config.toml beside this file binds 127.0.0.1 with telemetry off, however the app is
    started (Streamlit reads a config file next to the script over the user's and the working
    folder's). A command-line flag or STREAMLIT_* variable can still override it: then the app says
    so and shows nothing, unless HEARTH_APP_ADDRESS names that address on purpose."""
    from streamlit import config

    address = config.get_option("server.address") or "0.0.0.0"  # unset: every interface
    allowed = load_settings().app_address
    if config.get_option("browser.gatherUsageStats"):
        config.set_option("browser.gatherUsageStats", False)
        st.error("Streamlit was started with usage statistics on (browser.gatherUsageStats): Hearth turned "
                 "them off; reload the page.")
        st.stop()
    if not api.is_local(address) and address != allowed:
        st.error(render.text(f"This app was started listening on {address}, so other machines could reach "
                             "your documents. Start it with `make run` (127.0.0.1), or set HEARTH_APP_ADDRESS="
                             f"{address} to allow it."))
        st.stop()


refuse_unless_private()


FOREIGN_PAGE = "Hearth shows nothing here: this page is not addressed to this machine's own app."


def refuse_foreign_pages():
    """A page whose Host or Origin is not this app's own (a web page that rebound its name to
    127.0.0.1) gets nothing. `hearth serve` refuses it before Streamlit (rag/app_guard.py); this is
    the same check for an app started with plain `streamlit run`."""
    from rag.origin import is_own, own_names

    headers = st.context.headers  # empty only outside a server (Streamlit's AppTest): HTTP/1.1 needs a Host
    if len(headers) and not is_own(headers.get("Host"), headers.get("Origin"), own_names(load_settings().app_address),
                                   schemes=("http", "https")):  # its port and scheme are not known here
        st.error(FOREIGN_PAGE)
        st.stop()


refuse_foreign_pages()

from rag.ui.chat import chat_page  # noqa: E402  (after the guards above: they stop a foreign page first)
from rag.ui.common import current_settings, open_library, show_flash  # noqa: E402
from rag.ui.library import library_page  # noqa: E402
from rag.ui.sidebar import sidebar  # noqa: E402


def main():
    settings = current_settings()
    try:
        lib = open_library(settings)
        try:
            sidebar(settings, lib)
            if state.page == "Library":
                library_page(lib)
            else:
                show_flash()
                chat_page(lib)
            # Load the embedding model once the page is drawn: the first page shows ~3 s sooner, and a
            # question typed meanwhile runs when this finishes. (Not in a thread: torch imported beside
            # chromadb's numpy imports fails with circular-import errors.)
            lib.load_model()
        finally:
            lib.close()
    except StoreUnreachable as exc:  # a Chroma server restarting: say so; the next run reconnects
        st.error(render.text(str(exc)))
        st.button("Try again", icon=":material/refresh:")
    # The run's last Streamlit call, after its slow tail (the model loaded, the store closed): a click sent
    # meanwhile interrupts the run here, so the page run it asked for starts at once (runner.fastReruns is
    # off: .streamlit/config.toml).
    st.empty()


main()
