"""The one exception type the CLI turns into a polite message and exit code 2."""


class InvlabError(Exception):
    """A problem with the user's input (config, paths, options): the message is shown as is, no traceback."""
