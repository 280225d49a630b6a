"""Small trainable heads on a frozen Llama backbone, the stores of what the backbone computes, and
`load`, which puts a trained head to use on new text."""

from .cache import StreamedStates, TokenStateTable
from .classification import SequenceClassifier, pool_last_token, pool_mean
from .frozen import FrozenBackboneHead, parameter_counts
from .qa import QuestionAnswerer, qa_loss
from .readout import ClassifierReadout, SpanReadout
from .trained import TrainedAnswerer, TrainedClassifier, load

__all__ = ["ClassifierReadout", "FrozenBackboneHead", "QuestionAnswerer", "SequenceClassifier", "SpanReadout",
           "StreamedStates", "TokenStateTable", "TrainedAnswerer", "TrainedClassifier", "load", "parameter_counts",
           "pool_last_token", "pool_mean", "qa_loss"]
