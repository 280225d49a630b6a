"""One exception type for problems a user can fix, and the CLI guard that prints them.

Errors are raised where the problem is known (a missing file, a bad config) as
`UserError` with a message that names the problem and the fix. Scripts wrap their
`main` in `exit_on_user_error`, which prints that message as one line and exits
non-zero, with no traceback.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable, NoReturn, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem with the user's input or environment; the message says how to fix it."""


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Run `main`; turn a UserError (or Ctrl-C) into one line on stderr and exit code."""

    @functools.wraps(main)
    def guarded(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return guarded


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one `error:` line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
