"""Small trainable heads on a frozen Llama backbone, and the cache of what the backbone computes."""

from .cache import TokenFeatureTable
from .classification import SequenceClassifier, pool_last_token
from .frozen import FrozenBackboneHead, parameter_counts
from .qa import QuestionAnswerer, qa_loss

__all__ = ["FrozenBackboneHead", "QuestionAnswerer", "SequenceClassifier", "TokenFeatureTable", "parameter_counts",
           "pool_last_token", "qa_loss"]
