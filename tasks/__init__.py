"""The tasks, one `Task` instance each: the only place that knows what SST-2 and SQuAD need."""

from .squad import SQUAD, ExtractiveQA
from .sst2 import SST2, SentenceClassification
from .task import RECIPES, ReadoutChoice, Task

TASKS: dict[str, Task] = {task.name: task for task in (SST2, SQUAD)}

__all__ = ["RECIPES", "TASKS", "ExtractiveQA", "ReadoutChoice", "SentenceClassification", "Task"]
