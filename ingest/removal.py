"""Removals a sync holds back until the user confirms them: a drive that is away must not look like
files deleted.

A folder given to a sync whose files are gone is usually a user's deletion, but the same sight comes
from a drive not mounted (its mount point left as an empty folder), another drive mounted in its
place, or a network share that came back empty. So a sync removes, without asking, only what looks
like deletion; it holds back the documents under a folder when

    more than REMOVAL_SHARE of the documents recorded under it would go, or
    any would go and the folder is on another device than when it was last synced (a drive was
    mounted or unmounted there: its device id changed)

and reports them (Report.held: folder -> HeldRemoval); the CLI refuses with exit status 6 and says
`--allow-removal`, the app asks. The device ids of the folders synced are this machine's own facts
(another machine sharing a Chroma server mounts its own drives), kept in <home>/folder-devices.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

REMOVAL_SHARE = 0.5
DEVICES_FILE = "folder-devices.json"


@dataclass(frozen=True)
class HeldRemoval:
    count: int  # documents the sync would have removed under the folder, kept
    recorded: int  # documents recorded under it
    why: str  # "device changed" or "more than half"

    def message(self, folder: str) -> str:
        cause = ("the folder is on another drive than when it was last synced (a drive mounted or unmounted "
                 "there?)" if self.why == "device changed" else
                 f"that is {self.count} of the {self.recorded} documents recorded under it (not mounted? moved?)")
        return (f"{folder}: {self.count} document{'s' if self.count != 1 else ''} would be removed and "
                f"{'were' if self.count != 1 else 'was'} kept: {cause}")


def device(folder: str) -> int | None:
    try:
        return os.stat(folder).st_dev
    except OSError:
        return None


class FolderDevices:
    """The device id each synced folder was on, as last seen by this machine."""

    def __init__(self, home: Path):
        self.path = Path(home) / DEVICES_FILE

    def load(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}  # none yet, or unreadable: no folder counts as changed

    def remember(self, folders: list[str]):
        """Record the device each of `folders` is on now; written whole, then renamed over the old file."""
        known = self.load()
        folders = {f: d for f in folders if (d := device(f)) is not None}
        if all(known.get(k) == v for k, v in folders.items()):
            return
        known.update(folders)
        tmp = self.path.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:  # private, as all of HEARTH_HOME
            fh.write(json.dumps(known, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def held_removals(folders: list[str], recorded: list[str], gone: list[str], devices: dict[str, int],
                  under) -> dict[str, HeldRemoval]:
    """The folders among `folders` (existing folders given to the sync) whose removals are held:
    `recorded` and `gone` are document paths (all known, and those the sync would remove);
    `devices`: the device ids last seen; `under(path, folder)`: is path at or under folder."""
    held = {}
    for folder in folders:
        going = sum(under(p, folder) for p in gone)
        if not going:
            continue
        known = sum(under(p, folder) for p in recorded)
        before, now = devices.get(folder), device(folder)
        if before is not None and now is not None and before != now:
            held[folder] = HeldRemoval(going, known, "device changed")
        elif going > REMOVAL_SHARE * known:
            held[folder] = HeldRemoval(going, known, "more than half")
    return held
