"""The tasks, one `Task` record each: the only place that knows what SST-2 and SQuAD need."""

from .squad import SQUAD
from .sst2 import SST2
from .task import Task

TASKS: dict[str, Task] = {task.name: task for task in (SST2, SQUAD)}

__all__ = ["TASKS", "Task"]
