"""The tasks, one `Task` instance each: the only place that knows what each task needs.

`classification` and `qa` read the user's own files; `sst2` and `squad` are the same tasks with
SST-2's and SQuAD's data sets (presets).
"""

from .classification import CLASSIFICATION, SST2, OwnClassification, SentenceClassification
from .squad import QA, SQUAD, ExtractiveQA, OwnQA
from .task import FILE_FLAGS, RECIPES, ReadoutChoice, Task

TASKS: dict[str, Task] = {task.name: task for task in (SST2, SQUAD, CLASSIFICATION, QA)}

__all__ = ["FILE_FLAGS", "RECIPES", "TASKS", "ExtractiveQA", "OwnClassification", "OwnQA", "ReadoutChoice",
           "SentenceClassification", "Task"]
