"""os.open flags under one name on every system: 0 where the system lacks one. Windows has no O_NOFOLLOW and no
O_NONBLOCK, and only Windows has O_BINARY, without which its descriptors are text: a PNG's signature (\\r\\n\\x1a\\n)
would be mangled on the way in.

    fd = os.open(path, READ)  # a regular file, or a FIFO planted at its name, which this does not block on
"""

import os

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # a link at the name is refused (ELOOP) where the system can tell
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO planted at the name must not hang the command
BINARY = getattr(os, "O_BINARY", 0)
READ = os.O_RDONLY | NONBLOCK | BINARY
