"""List or clear the stored frozen states (heads/store.py), which train.py and eval.py reuse between runs.

    python states.py list                       # each entry: size, sequences done, last use, readout
    python states.py clear                      # remove every entry no running job holds
    python states.py list --cache-dir DIR       # another store than the default

The default store is ~/.cache/llama-heads/states (or $LLAMA_HEADS_STATES), as for train.py's --cache-dir auto.
"""

from __future__ import annotations

from pathlib import Path

from errors import ArgumentParser
from heads.store import clear, default_root, describe


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["list", "clear"])
    p.add_argument("--cache-dir", default=str(default_root()), help="the store's directory")
    args = p.parse_args(argv)
    root = Path(args.cache_dir).expanduser()
    if args.command == "list":
        print("\n".join(describe(root)))
    else:
        removed, in_use = clear(root)
        print(f"removed {removed} entries from {root}" + (f"; {in_use} in use by a running job kept" if in_use else ""))


if __name__ == "__main__":
    main()
