"""Topic discovery on message archives and live topic assignment.

Fit: shared-encoder embeddings -> PCA (or UMAP) -> HDBSCAN -> merge and outlier
reassignment -> c-TF-IDF labels over spaCy lemmas and neighbouring word pairs (readable labels with a
redacted representative message) -> parent topics; seed topics (`seeds.py`) in zero-shot or
guided mode. Curation (`edits.py`): rename, merge, split and delete, redone by refits.
Assign: nearest centroid of a message's sentence embedding, from the encoder pass the
heads use."""

from nlp.topics.config import TopicFitConfig
from nlp.topics.fit import FitResult, fit_topics
from nlp.topics.live import conversation_topics, message_topics
from nlp.topics.model import Assignment, TopicEntry, TopicManifest, TopicModel, TopicModelError, load_topic_model

__all__ = [
    "Assignment",
    "FitResult",
    "TopicEntry",
    "TopicFitConfig",
    "TopicManifest",
    "TopicModel",
    "TopicModelError",
    "conversation_topics",
    "fit_topics",
    "load_topic_model",
    "message_topics",
]
