"""Small trainable heads on a frozen Llama backbone, and the stores of what the backbone computes."""

from .cache import StreamedFeatures, TokenFeatureTable
from .classification import SequenceClassifier, pool_last_token, pool_mean
from .frozen import FrozenBackboneHead, parameter_counts
from .qa import QuestionAnswerer, qa_loss

__all__ = ["FrozenBackboneHead", "QuestionAnswerer", "SequenceClassifier", "StreamedFeatures", "TokenFeatureTable",
           "parameter_counts", "pool_last_token", "pool_mean", "qa_loss"]
