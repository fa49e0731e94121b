"""A hash of the code that shapes a build's output, so cached results never outlive a code edit.

`kb.__version__` only changes on a release; while developing, an edit to the renderer or a
template must still invalidate the load cache, the incremental build and the site's state, and
so must upgrading a library that renders, segments or writes the index.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from kb import __version__

SUFFIXES = (".py", ".html", ".xml", ".css", ".js")
# Libraries whose version can change what a build writes (rendering, segmentation, the index).
LIBRARIES = ("markdown-it-py", "mdit-py-plugins", "latex2mathml", "pygments", "pyyaml", "pydantic", "rjieba",
             "whoosh-reloaded", "jinja2", "pypinyin")


@lru_cache(maxsize=8)
def code_hash(*folders: Path) -> str:
    """Hash of the version, the versions of the libraries that shape the output, and every
    source file (code, templates, static) under `folders`; with no folders, the package `kb`."""
    h = hashlib.blake2b(digest_size=12)
    h.update(__version__.encode())
    for name in LIBRARIES:
        try:
            h.update(f"{name}=={metadata.version(name)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name} missing\n".encode())
    for folder in folders or (Path(__file__).resolve().parent,):
        for path in sorted(folder.rglob("*")):
            if path.suffix in SUFFIXES and "__pycache__" not in path.parts and path.is_file():
                h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
