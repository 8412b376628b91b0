"""The fork server's last import (executors.WORKER_MODULES), and no other process's: once the server has imported
torch and the workers' code, gc.freeze() moves every object it holds out of the cyclic garbage collector's reach,
as the gc module's documentation advises before fork() without exec().

- A worker forked from the server never collects those objects: its collections are shorter, and they leave the
  pages it shares with the server unwritten (no copy of them made for it).
- The server's own exit, when the run that started it ends, does not collect them either: with torch imported,
  that collection was most of its ~0.5 s of CPU, spent after the run had printed its last line.

What the objects hold and how workers compute are unchanged; objects are still freed when their count drops to
zero, only cycles among the server's own imports are never collected (the server keeps them all anyway).
"""

import gc

gc.freeze()
