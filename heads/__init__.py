"""Small trainable heads on a frozen Llama backbone, and the stores of what the backbone computes."""

from .cache import StreamedStates, TokenStateTable
from .classification import SequenceClassifier, pool_last_token, pool_mean
from .frozen import FrozenBackboneHead, parameter_counts
from .qa import QuestionAnswerer, qa_loss
from .readout import ClassifierReadout, SpanReadout

__all__ = ["ClassifierReadout", "FrozenBackboneHead", "QuestionAnswerer", "SequenceClassifier", "SpanReadout",
           "StreamedStates", "TokenStateTable", "parameter_counts", "pool_last_token", "pool_mean", "qa_loss"]
