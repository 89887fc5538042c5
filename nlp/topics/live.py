"""Live topic assignment: each customer message gets the nearest topic from the sentence
embedding its one encoder pass already produced, and the conversation gets the topics of
its customer messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nlp.schemas import ConversationTopic, MessageAnalysis, Role, TopicScore
from nlp.topics.model import TopicModel

_ROUND = 4


def message_topics(
    model: TopicModel, embeddings: np.ndarray, roles: Sequence[Role], min_similarity: float | None = None
) -> list[list[TopicScore]]:
    """Per message: [the nearest topic] for customer messages close enough to one, else []."""
    customer = np.flatnonzero([role == Role.customer for role in roles])
    results: list[list[TopicScore]] = [[] for _ in roles]
    if customer.size == 0:
        return results
    assignment = model.assign(embeddings[customer], min_similarity)
    parent_names = {parent.id: parent.name for parent in model.manifest.parents}
    for row, topic, similarity, confidence in zip(
        customer, assignment.topic, assignment.similarity, assignment.confidence
    ):
        if topic < 0:
            continue
        entry = model.topics[int(topic)]
        results[row] = [
            TopicScore(
                id=entry.id,
                name=entry.name,
                confidence=round(float(confidence), _ROUND),
                similarity=round(float(np.clip(similarity, -1.0, 1.0)), _ROUND),
                parent=entry.parent,
                parent_name=parent_names.get(entry.parent) if entry.parent is not None else None,
            )
        ]
    return results


@dataclass
class TopicTally:
    """The customer messages' topics, gathered one message at a time."""

    customer_messages: int = 0
    totals: dict[int, float] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    members: dict[int, list[str]] = field(default_factory=dict)

    def add(self, analysis: MessageAnalysis) -> None:
        if analysis.role != Role.customer:
            return
        self.customer_messages += 1
        for topic in analysis.topics:
            self.totals[topic.id] = self.totals.get(topic.id, 0.0) + topic.confidence
            self.names[topic.id] = topic.name
            self.members.setdefault(topic.id, []).append(analysis.id)

    def topics(self) -> list[ConversationTopic]:
        """Topics of the customer messages, strongest first. A topic's confidence is the sum
        of its messages' confidences over the number of customer messages, so a topic every
        customer turn is about, confidently, scores near 1."""
        totals = self.totals
        ranked = sorted(totals, key=lambda topic_id: (-totals[topic_id], topic_id))
        return [
            ConversationTopic(
                id=topic_id,
                name=self.names[topic_id],
                confidence=round(min(totals[topic_id] / self.customer_messages, 1.0), _ROUND),
                message_ids=list(self.members[topic_id]),
            )
            for topic_id in ranked
        ]


def conversation_topics(analyses: Sequence[MessageAnalysis]) -> list[ConversationTopic]:
    """`TopicTally.topics` of a whole conversation."""
    tally = TopicTally()
    for analysis in analyses:
        tally.add(analysis)
    return tally.topics()
