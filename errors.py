"""The project's exception for problems a user can fix, and the CLI guard that prints them.

Errors are raised where the problem is known (a malformed data file, an output directory
holding another run) as `UserError`, with a message that names the problem and the fix.
The `llama` package raises its own `LlamaError` (it stands alone); scripts wrap their
`main` in `exit_on_user_error`, which prints either as one line and exits 2, no traceback.
"""

from __future__ import annotations

from llama.errors import ArgumentParser, LlamaError, exit_on


class UserError(Exception):
    """A problem with the user's input or environment; the message says how to fix it."""


exit_on_user_error = exit_on((UserError, LlamaError))

__all__ = ["ArgumentParser", "LlamaError", "UserError", "exit_on_user_error"]
