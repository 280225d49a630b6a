"""How a task's data set is named, read, checked and balanced: a value the task holds.

`data.sources` resolves a `--data` argument with one of these; the SST-2 and SQuAD values are
made next to their readers (`data.sst2.SST2_FORMAT`, `data.squad.squad_format`), and a task
names its own (`tasks`), so a new task over other files brings its format with it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Hashable


@dataclasses.dataclass(frozen=True)
class DataFormat:
    """One data set's files: `file_names` (training, dev) in a directory, the reader, the class a
    --limit sample keeps in proportion (`group`), a check of what was read, the bundled `sample`,
    and the canonical `--data` names it accepts (each mapped to the `data.sources.CANONICAL` download)."""

    name: str  # what the data set is called in messages
    file_names: tuple[str, str]
    read: Callable[[Path], list]
    group: Callable[[Any], Hashable]
    sample: Path
    downloads: dict[str, str]  # --data name -> CANONICAL key
    check: Callable[[list, Path], None] = lambda examples, path: None
