"""Mail: .eml (one message) and .mbox (many). A message is a section, titled by its subject, that
starts with its sender, recipients, date and subject; the body is its plain-text part (else its
HTML part, as visible text). Attachments of the types Hearth reads are read too, as sections of
their own under the message's subject (one level deep: a message attached to an attachment is not
opened)."""

from __future__ import annotations

import email
import email.policy
import mailbox
import tempfile
from pathlib import Path

from . import LoadError, Loaded, Section
from .html import sections_of

MAX_MESSAGES = 50_000  # of an mbox; the rest is counted and noted
_depth = 0  # attachments being read (one level only)


def _header(message, name: str) -> str:
    try:
        return " ".join(str(message.get(name, "") or "").split())
    except Exception:  # a malformed encoded word: the raw header is better than nothing
        return " ".join(str(message.get_all(name, [""])[0]).split())


def _body(message) -> str:
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        if part is None:
            return ""
        content = part.get_content()
    except (LookupError, ValueError, AttributeError, TypeError):  # unknown charset, broken encoding
        payload = message.get_payload(decode=True) if not message.is_multipart() else b""
        content = (payload or b"").decode("utf-8", errors="replace")
        part = message
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        return "\n\n".join(s.text for s in sections_of(content) if s.text.strip())
    return content.strip()


def _attachments(message, heading: str) -> tuple[list[Section], list[str]]:
    from . import is_supported, load

    global _depth
    sections, notes = [], []
    if _depth:
        return sections, notes
    for part in message.iter_attachments():
        name = Path(part.get_filename() or "").name
        if not name or not is_supported(name) or Path(name).suffix.lower() in (".eml", ".mbox"):
            continue
        data = part.get_payload(decode=True) or b""
        with tempfile.TemporaryDirectory(prefix="hearth-attachment-") as folder:
            saved = Path(folder) / ("attachment" + Path(name).suffix.lower())
            saved.write_bytes(data)
            _depth += 1
            try:
                loaded = load(saved)
            except LoadError as exc:
                notes.append(f"attachment {name} of '{heading}' not read: {exc}")
                continue
            finally:
                _depth -= 1
        for s in loaded.sections:
            s.heading = f"{heading} — {name}" + (f" — {s.heading}" if s.heading else "")
            sections.append(s)
    return sections, notes


def _message(message, offset: int) -> tuple[list[Section], list[str]]:
    subject = _header(message, "Subject") or "(no subject)"
    head = [f"{label}: {value}" for label in ("From", "To", "Date", "Subject") if (value := _header(message, label))]
    text = "\n".join(head) + "\n\n" + _body(message)
    extra, notes = _attachments(message, subject)
    return [Section(text, heading=subject, start=offset)] + extra, notes


def load_eml(path: Path) -> Loaded:
    with open(path, "rb") as fh:
        message = email.message_from_binary_file(fh, policy=email.policy.default)
    if not message.keys():
        raise LoadError("not an e-mail message (no headers)")
    sections, notes = _message(message, 0)
    return Loaded(sections, notes=notes)


def load_mbox(path: Path) -> Loaded:
    box = mailbox.mbox(str(path), factory=lambda fh: email.message_from_binary_file(fh, policy=email.policy.default),
                       create=False)
    sections, notes, offset, count = [], [], 0, 0
    try:
        for message in box:
            count += 1
            if count > MAX_MESSAGES:
                continue
            found, said = _message(message, offset)
            sections += found
            notes += said
            offset += len(found[0].text) + 2
    finally:
        box.close()
    if count == 0:
        raise LoadError("no messages found (not an mbox mailbox: messages start with a 'From ' line)")
    if count > MAX_MESSAGES:
        notes.append(f"{count:,} messages; only the first {MAX_MESSAGES:,} were read")
    notes.insert(0, f"{min(count, MAX_MESSAGES):,} message(s)")
    return Loaded(sections, notes=notes)
