"""The package's one exception, and the command-line guard that prints it as one line.

`LlamaError` is raised where a problem with the user's input is known (a missing file, a
config of another architecture, a truncated checkpoint) with a message naming the fix.
The package imports only torch and its listed dependencies, so it can be copied out alone.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable, NoReturn, TypeVar

T = TypeVar("T")


class LlamaError(Exception):
    """A problem with a checkpoint, config, tokenizer or argument that the user can fix."""


def exit_on(errors: tuple[type[Exception], ...]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator for a CLI `main`: print one of `errors` (or Ctrl-C) as one line and exit, no traceback."""

    def decorate(main: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(main)
        def guarded(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except errors as err:
                print(f"error: {err}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                sys.exit(130)

        return guarded

    return decorate


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one `error:` line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
