"""Digests of the files a run reads (images of a folder, font files): what a run records so that a later run
notices when the inputs changed.

    file_digest(Path("my_symbols/a/001.png"))     # 'a3f1...' (sha256 of the bytes, 64 hex digits)

A file is hashed streamed (FILE_CHUNK bytes at a time: a huge file costs no memory) and the digest is kept per
process by (path, size, mtime_ns), with the inode and ctime_ns, which no tool sets back (a file copied over
another, or rewritten with its old mtime restored, is hashed again): asking again for a file that did not change
costs one stat, not a read.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

FILE_CHUNK = 1 << 20  # bytes read at a time
CACHE_FILES = 200_000  # digests kept per process (about 200 bytes each), the least recently asked dropped first

_cache: OrderedDict[tuple, str] = OrderedDict()


def file_digest(path: str | Path) -> str:
    """sha256 of a regular file's bytes (hex); OSError if it cannot be read."""
    path = os.fspath(path)
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(FILE_CHUNK):
            h.update(chunk)
    _cache[key] = h.hexdigest()
    if len(_cache) > CACHE_FILES:
        _cache.popitem(last=False)
    return _cache[key]


def tree_stamp(folder: str | Path) -> tuple:
    """(relative path, size, mtime_ns, inode, ctime_ns) of every entry below `folder`, whole tree, sorted: equal
    stamps mean nothing was added, removed, renamed or rewritten (the key of a per-process cache of what was read
    from it).
    Entries that vanish while listed are left out; () if the folder cannot be listed."""
    root = Path(folder)
    out = []
    try:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                p = os.path.join(dirpath, name)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                out.append((os.path.relpath(p, root), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
    except OSError:
        return ()
    return tuple(sorted(out))
