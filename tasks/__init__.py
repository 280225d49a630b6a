"""The tasks, one `Task` record each: the only place that knows what each task needs.

`classification` and `qa` read the user's own files; `sst2` and `squad` are the same tasks
with SST-2's and SQuAD's files and names (presets).
"""

from .classification import CLASSIFICATION, SST2
from .squad import QA, SQUAD
from .task import Task

TASKS: dict[str, Task] = {task.name: task for task in (SST2, SQUAD, CLASSIFICATION, QA)}

__all__ = ["TASKS", "Task"]
