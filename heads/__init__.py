"""Small trainable heads on a frozen Llama backbone."""

from .classification import SequenceClassifier, pool_last_token
from .qa import QuestionAnswerer, qa_loss

HEADS = {"sst2": SequenceClassifier, "squad": QuestionAnswerer}

__all__ = ["HEADS", "QuestionAnswerer", "SequenceClassifier", "pool_last_token", "qa_loss"]
