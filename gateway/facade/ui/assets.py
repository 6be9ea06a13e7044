"""The UI's style sheet, script and icon, read once from the package and served from
memory, with an ETag (a browser revalidates and gets a 304).

From memory rather than from files: nothing to open per request, so nothing left open when
a browser drops a request half-way (Quart's file responses are closed only when they are
sent to the end).

Example::

    assets = Assets.load()
    body, content_type, etag = assets.get("ui.css")
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

__all__ = ["Asset", "Assets"]

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


class Assets:
    """Every file of ``static/`` beside this module, by name."""

    def __init__(self, files: dict[str, Asset]) -> None:
        self._files = files

    @classmethod
    def load(cls) -> Assets:
        files = {}
        for entry in resources.files(__package__).joinpath("static").iterdir():
            suffix = "." + entry.name.rpartition(".")[2]
            if entry.is_file() and suffix in _TYPES:
                body = entry.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                files[entry.name] = Asset(body, _TYPES[suffix], etag)
        return cls(files)

    def get(self, name: str) -> Asset | None:
        return self._files.get(name)
