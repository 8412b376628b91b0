"""The one exception hierarchy of invlab, and the helpers that word its messages.

Every problem with the user's input is an InvlabError: the CLI prints its message as one paragraph and exits with
code 2, no traceback. The subclasses say which kind of input was wrong, so a caller can catch one kind:

    InvlabError
      ConfigError       a config file, a --set override or a command-line option
      DataError         images, an image folder, glyphs or fonts
      FactoryError      a model of the user's own (factory, kwargs, weights that do not fit)
      RunFolderError    a run, sweep, study or measure folder: missing, unfinished, or not made by invlab
        DiskFullError   a file invlab writes, on a disk (or quota) that is full
      CheckpointError   a checkpoint or weights file: unreadable, from elsewhere, or not matching its settings
"""

from __future__ import annotations

import difflib
import numbers
from typing import Iterable

# User input quoted in a message is cut to this many characters: a message stays one readable paragraph even
# when the input is a huge string or an expanded YAML structure.
MAX_QUOTE = 200


class InvlabError(Exception):
    """A problem with the user's input (config, paths, options): the message is shown as is, no traceback."""


class ConfigError(InvlabError):
    """A config that does not validate: the message names the file, the dotted key path and the value."""


class DataError(InvlabError):
    """Images, an image folder, glyphs or fonts that cannot be used as given."""


class FactoryError(InvlabError):
    """A model of the user's own that cannot be built, called or loaded as given."""


class RunFolderError(InvlabError):
    """A run, sweep, study or measure folder that is missing, unfinished or not invlab's."""


class DiskFullError(RunFolderError):
    """No space left on the disk (or in the quota) for a file invlab writes: the message names the file."""


class CheckpointError(InvlabError):
    """A checkpoint or weights file that cannot be read, or does not match the settings it is loaded for."""


def quote(value, limit: int = MAX_QUOTE) -> str:
    """repr(value), cut to `limit` characters. Large containers are not expanded (their repr could be huge)."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 50:
        return f"<{type(value).__name__} of {len(value)} items>"
    try:
        text = repr(value)
    except Exception:  # a repr that fails must not hide the real message
        text = f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    tail = f"... ({len(text)} chars)"
    return text[: max(limit - len(tail), 0)] + tail


def clip(text: str, limit: int = MAX_QUOTE) -> str:
    """Plain text (an exception's message) cut to `limit` characters, first line only."""
    text = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def choose(what: str, value, choices: Iterable, error: type[Exception] = InvlabError):
    """Return `value` if it is one of `choices`; otherwise raise `error` saying so, listing the valid names
    and the closest one ("unknown downsample 'maxx'; did you mean 'max'? choose one of: none, max, ...")."""
    choices = list(choices)
    try:
        ok = value in choices
    except TypeError:  # an unhashable value against a dict's keys
        ok = False
    if ok:
        return value
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1) if isinstance(value, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    raise error(f"unknown {what} {quote(value)}{hint} choose one of: {', '.join(map(str, choices))}")


def whole(what: str, value, minimum: int = 1, error: type[Exception] = InvlabError) -> int:
    """`value` as an int if it is a whole number (a Python or numpy integer, not a bool) of at least `minimum`;
    otherwise raise `error` naming `what` (a Python argument such as batch_size, n_images)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise error(f"{what} must be a whole number of at least {minimum}; got {quote(value)}")
    return int(value)


# what torch's allocators say when memory runs out (CPU: DefaultCPUAllocator; CUDA: torch.cuda.OutOfMemoryError)
OUT_OF_MEMORY = ("can't allocate memory", "out of memory", "cannot allocate memory")


def out_of_memory(e: BaseException) -> bool:
    """Whether an exception is memory running out: MemoryError, or torch's allocator's RuntimeError."""
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError)
                                          and any(w in str(e).lower() for w in OUT_OF_MEMORY))
