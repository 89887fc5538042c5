"""The analyzer: one encoder pass per message, every head reading that one output, and
the conversation summary built from the results."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nlp.backends import load_encoder
from nlp.bundle import ModelBundle, load_bundle
from nlp.categories import CategoryConfig
from nlp.config import AnalyzerConfig
from nlp.conversation import ConversationSummarizer, summarize_conversation
from nlp.cue_model import CueModel
from nlp.encoder import EncodedBatch, SentenceEncoder
from nlp.heads import HeadStack
from nlp.message_ids import assign_message_ids
from nlp.policy import Policy, load_policy
from nlp.schemas import (
    Channel,
    ComplaintResult,
    ConversationSummary,
    EmotionScore,
    Message,
    MessageAnalysis,
    ModelInfo,
    Role,
    SentimentResult,
    Timing,
    TopicScore,
    Transcript,
    TranscriptAnalysis,
    UrgencyResult,
)
from nlp.signals import Turn
from nlp.text import has_words, sentence_spans
from nlp.token_states import TokenStates
from nlp.vocabulary import (
    COMPLAINT_LABELS,
    CUE_FAMILIES,
    SENTIMENT_LABELS,
    SUPPORT_EMOTION_SOURCES,
    URGENCY_LABELS,
)

if TYPE_CHECKING:
    from nlp.inspection import Inspection, TextInspector
    from nlp.topics.model import TopicModel

_ROUND = 4  # decimals in responses: finer is noise, and it keeps payloads small


class SupportEmotionMap:
    """Vectorised projection of the 28 GoEmotions probabilities onto the support set."""

    def __init__(self, head_labels: Sequence[str], thresholds: Sequence[float]) -> None:
        index = {label: i for i, label in enumerate(head_labels)}
        missing = sorted({s for sources in SUPPORT_EMOTION_SOURCES.values() for s in sources} - set(index))
        if missing:
            raise ValueError(f"emotion head lacks labels needed by the support set: {missing}")
        self.labels = list(SUPPORT_EMOTION_SOURCES)
        width = max(len(s) for s in SUPPORT_EMOTION_SOURCES.values())
        # Pad each source list to one width by repeating its first source (max is unaffected).
        self._sources = np.array(
            [
                [index[s] for s in sources] + [index[sources[0]]] * (width - len(sources))
                for sources in SUPPORT_EMOTION_SOURCES.values()
            ]
        )
        self._thresholds = np.asarray(thresholds, dtype=np.float32)

    def project(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, present): both (n, len(support set))."""
        gathered = probabilities[:, self._sources]  # (n, support, width)
        scores = gathered.max(axis=2)
        present = (gathered >= self._thresholds[self._sources]).any(axis=2)
        return scores, present


@dataclass(frozen=True)
class AnalyzedTurn:
    """A message's analysis and its text as it may be stored (redacted when enabled)."""

    analysis: MessageAnalysis
    stored_text: str


class Analyzer:
    """Analyses messages and conversations with a loaded model bundle, an escalation
    policy and (optionally) a spaCy text inspector for risk cues and redaction."""

    def __init__(
        self,
        encoder: SentenceEncoder,
        bundle: ModelBundle,
        policy: Policy | None = None,
        inspector: TextInspector | None = None,
        topics: TopicModel | None = None,
        topic_min_similarity: float | None = None,
        after_encode: Callable[[], object] | None = None,
    ) -> None:
        """`after_encode` is called after every encoder pass (the service returns freed heap
        memory to the OS there: `service.memory`)."""
        self.encoder = encoder
        self.after_encode = after_encode
        self.bundle = bundle
        self.policy = policy or load_policy()
        self.inspector = inspector
        self.topics = topics
        self.topic_min_similarity = topic_min_similarity
        if topics is not None and topics.dim != encoder.dim:
            raise ValueError(f"topic model centroids have {topics.dim} dimensions; the encoder gives {encoder.dim}")
        self._sentiment = bundle.heads["sentiment"]
        self._emotions = bundle.heads["emotions"]
        self._urgency = bundle.heads["urgency"]
        if self._sentiment.spec.labels != list(SENTIMENT_LABELS):
            raise ValueError(f"sentiment head labels {self._sentiment.spec.labels} != {list(SENTIMENT_LABELS)}")
        if self._urgency.spec.labels != list(URGENCY_LABELS):
            raise ValueError(f"urgency head labels {self._urgency.spec.labels} != {list(URGENCY_LABELS)}")
        # Optional: bundles before convintel-base 0.3.0 have no complaint head, and before
        # 0.5.0 no cue head (cues then come from the patterns alone).
        self._complaint = bundle.heads.get("complaint")
        if self._complaint is not None and self._complaint.spec.labels != list(COMPLAINT_LABELS):
            raise ValueError(f"complaint head labels {self._complaint.spec.labels} != {list(COMPLAINT_LABELS)}")
        cue_head = bundle.heads.get("cues")
        if cue_head is not None and cue_head.spec.labels != list(CUE_FAMILIES):
            raise ValueError(f"cue head labels {cue_head.spec.labels} != {list(CUE_FAMILIES)}")
        self._cue_model = CueModel(cue_head) if cue_head is not None and inspector and inspector.cues else None
        for head in bundle.heads.values():
            if head.spec.input_dim != encoder.feature_dim:
                raise ValueError(
                    f"head {head.spec.task!r} reads {head.spec.input_dim} features; encoder gives {encoder.feature_dim}"
                )
        # Every head reads the one encoder pass, run together as one network.
        stacked = [self._sentiment, self._emotions, self._urgency]
        self._optional = [head for head in (self._complaint, cue_head) if head is not None]
        self._heads = HeadStack(stacked + self._optional)
        self._support = SupportEmotionMap(self._emotions.spec.labels, self._emotions.spec.thresholds or [])
        self._urgency_levels = np.arange(len(URGENCY_LABELS), dtype=np.float32) / (len(URGENCY_LABELS) - 1)
        self.model_info = ModelInfo(name=bundle.name, version=bundle.version)

    @classmethod
    def load(cls, config: AnalyzerConfig, *, after_encode: Callable[[], object] | None = None) -> Analyzer:
        """Load what `config` names: the configuration files first (a bad one fails before
        the models load), then the text inspector, the topic model, the bundle and the
        encoder it was trained on, on the chosen backend."""
        from nlp.inspection import build_inspector

        policy = load_policy(config.policy_file)
        inspector = build_inspector(config.inspection)
        topics = None
        if config.topic_model is not None:
            from nlp.topics.model import load_topic_model

            topics = load_topic_model(config.topic_model)
        bundle = load_bundle(config.bundle_path)
        encoder = load_encoder(
            config.encoder, max_seq_length=bundle.manifest.encoder.max_seq_length, adapter=bundle.adapter
        )
        return cls(encoder, bundle, policy, inspector, topics, config.topic_min_similarity, after_encode)

    # --- messages ---------------------------------------------------------------------

    def encode(self, texts: Sequence[str], keep_tokens: Sequence[bool] | None = None) -> EncodedBatch:
        """Encode message texts: the one encoder pass per message (with the token vectors of
        the rows flagged in `keep_tokens`)."""
        # Only when asked: an encoder (or a wrapper) that keeps no token vectors takes texts alone.
        encoded = self.encoder.encode(texts) if keep_tokens is None else self.encoder.encode(texts, keep_tokens)
        if self.after_encode is not None:
            self.after_encode()
        return encoded

    def analyze_messages(self, messages: Sequence[Message], ids: Sequence[str]) -> list[MessageAnalysis]:
        """Analyse messages (from any number of conversations) in one batch."""
        return [turn.analysis for turn in self.analyze_turns(messages, ids)]

    def analyze_turns(self, messages: Sequence[Message], ids: Sequence[str]) -> list[AnalyzedTurn]:
        """Analyse messages and return each with the text to store (redacted if enabled)."""
        if not messages:
            return []
        encoded = self._encode_messages(messages)
        return self.turns_from_encoding(messages, ids, encoded)

    def _encode_messages(self, messages: Sequence[Message]) -> EncodedBatch:
        texts, rows = [m.text for m in messages], self.token_rows(messages)
        return self.encode(texts) if rows is None else self.encode(texts, rows)

    def token_rows(self, messages: Sequence[Message]) -> list[bool] | None:
        """Messages whose token vectors the heads need: all of them when a head attends over
        tokens (the emotions head's label-wise attention); else those the cue head may need
        to choose an evidence sentence, customer messages of more than one sentence (None:
        no cue head, none needed)."""
        if self._heads.reads_tokens:
            return [True] * len(messages)
        if self._cue_model is None:
            return None
        return [m.role == Role.customer and len(sentence_spans(m.text)) > 1 for m in messages]

    def _head_tokens(self, encoded: EncodedBatch) -> TokenStates | None:
        """The token vectors a head attends over (None when no head does)."""
        if not self._heads.reads_tokens:
            return None
        rows = encoded.tokens
        if rows is None or any(row is None for row in rows):
            raise ValueError("a head attends over token vectors: encode with keep_tokens = token_rows(...)")
        return TokenStates.from_rows(rows)  # type: ignore[arg-type]  # no None left, checked above

    def turns_from_encoding(
        self, messages: Sequence[Message], ids: Sequence[str], encoded: EncodedBatch, *, keep_text: bool = True
    ) -> list[AnalyzedTurn]:
        """Run every head (and the text inspector) on already-encoded messages. With
        `keep_text=False` (for callers that store no text) nothing is redacted but quotes, and
        `stored_text` is the original text: it must not be stored. `encoded` carries the
        token vectors of the `token_rows` (else head-only cues quote the first sentence)."""
        sentiment, emotions, urgency, *rest = self._heads.predict_proba(encoded.features, self._head_tokens(encoded))
        optional = {head.spec.task: probabilities for head, probabilities in zip(self._optional, rest)}
        complaint = optional["complaint"][:, COMPLAINT_LABELS.index("yes")] if "complaint" in optional else None
        if self._cue_model is None:
            inspections = self._inspect(messages, keep_text)
        else:
            model_cues = self._cue_model.fired(optional["cues"], [m.role == Role.customer for m in messages])
            wanted = [bool(row.any()) for row in model_cues]
            inspections = self._inspect(messages, keep_text, sentences_for=wanted)
            if inspections is not None:
                texts = [m.text for m in messages]
                inspections = self._cue_model.add_cues(
                    inspections, model_cues, texts, encoded, self.encoder.token_offsets
                )
        emotion_scores, emotion_present = self._support.project(emotions)
        polarity = sentiment[:, SENTIMENT_LABELS.index("positive")] - sentiment[:, SENTIMENT_LABELS.index("negative")]
        urgency_score = urgency @ self._urgency_levels
        topics = self._message_topics(messages, encoded)
        results: list[AnalyzedTurn] = []
        for row, (message, mid) in enumerate(zip(messages, ids)):
            present = np.flatnonzero(emotion_present[row])
            if present.size == 0:  # nothing crossed its threshold: report the likeliest
                present = np.array([int(np.argmax(emotion_scores[row]))])
            order = present[np.argsort(-emotion_scores[row, present])]
            warnings = []
            if encoded.truncated[row]:
                warnings.append("truncated")
            if not has_words(message.text):
                warnings.append("no_words")
            analysis = MessageAnalysis(
                id=mid,
                role=message.role,
                sentiment=SentimentResult(
                    label=SENTIMENT_LABELS[int(np.argmax(sentiment[row]))],
                    score=round(float(np.clip(polarity[row], -1.0, 1.0)), _ROUND),
                    probabilities=_rounded(SENTIMENT_LABELS, sentiment[row]),
                ),
                emotions=[
                    EmotionScore(label=self._support.labels[k], score=round(float(emotion_scores[row, k]), _ROUND))
                    for k in order
                ],
                urgency=UrgencyResult(
                    label=URGENCY_LABELS[int(np.argmax(urgency[row]))],
                    score=round(float(np.clip(urgency_score[row], 0.0, 1.0)), _ROUND),
                    probabilities=_rounded(URGENCY_LABELS, urgency[row]),
                )
                if message.role == Role.customer
                else None,
                complaint=_complaint(complaint[row])
                if complaint is not None and message.role == Role.customer
                else None,
                cues=inspections[row].cues if inspections else [],
                categories=inspections[row].categories if inspections else [],
                warnings=warnings,
                topics=topics[row],
            )
            stored_text = inspections[row].redacted_text if inspections else message.text
            results.append(AnalyzedTurn(analysis=analysis, stored_text=stored_text))
        return results

    def _inspect(
        self, messages: Sequence[Message], keep_text: bool, sentences_for: Sequence[bool] | None = None
    ) -> list[Inspection] | None:
        if self.inspector is None:
            return None
        texts, roles = [m.text for m in messages], [m.role for m in messages]
        return self.inspector.inspect(texts, roles, redact=keep_text, sentences_for=sentences_for)

    def _message_topics(self, messages: Sequence[Message], encoded: EncodedBatch) -> list[list[TopicScore]]:
        """Nearest topic per customer message, from the sentence embeddings already computed."""
        if self.topics is None:
            return [[] for _ in messages]
        from nlp.topics.live import message_topics

        return message_topics(self.topics, encoded.embeddings, [m.role for m in messages], self.topic_min_similarity)

    # --- conversations ----------------------------------------------------------------

    def summarize(
        self,
        analyses: Sequence[MessageAnalysis],
        turns: Sequence[Turn],
        channel: Channel | None = None,
        *,
        policy: Policy | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ConversationSummary:
        """Conversation-level summary from message analyses and turns (no encoding), under
        this analyzer's policy or another one (`convintel policy backtest` compares two)."""
        return summarize_conversation(analyses, turns, policy or self.policy, channel, self._categories(), metadata)

    def summarizer(self) -> ConversationSummarizer:
        """An empty incremental summary under this analyzer's policy: `add` a conversation's
        messages as they arrive and read its `summary` after each (same as `summarize`)."""
        return ConversationSummarizer(self.policy, self._categories())

    def _categories(self) -> CategoryConfig | None:
        return self.inspector.categories.config if self.inspector and self.inspector.categories else None

    def analyze(self, transcript: Transcript) -> TranscriptAnalysis:
        """Analyse one whole transcript."""
        return self.analyze_batch([transcript])[0]

    def analyze_batch(self, transcripts: Sequence[Transcript]) -> list[TranscriptAnalysis]:
        """Analyse transcripts with all their messages encoded together."""
        started = time.perf_counter()
        messages = [m for t in transcripts for m in t.messages]
        ids = [mid for t in transcripts for mid in assign_message_ids([m.id for m in t.messages])]
        encode_started = time.perf_counter()
        encoded = self._encode_messages(messages)
        encode_ms = (time.perf_counter() - encode_started) * 1000
        analyses = [turn.analysis for turn in self.turns_from_encoding(messages, ids, encoded, keep_text=False)]
        results: list[TranscriptAnalysis] = []
        offset = 0
        for transcript in transcripts:
            own = analyses[offset : offset + len(transcript.messages)]
            turns = [
                Turn(id=a.id, role=m.role, text=m.text, timestamp=m.timestamp) for a, m in zip(own, transcript.messages)
            ]
            offset += len(transcript.messages)
            results.append(
                TranscriptAnalysis(
                    conversation_id=transcript.conversation_id,
                    channel=transcript.channel,
                    model=self.model_info,
                    messages=own,
                    conversation=self.summarize(own, turns, transcript.channel, metadata=transcript.metadata),
                    timing=Timing(total_ms=0.0, encode_ms=round(encode_ms, 3)),
                    warnings=transcript_warnings(transcript),
                )
            )
        total_ms = round((time.perf_counter() - started) * 1000, 3)
        for result in results:
            result.timing.total_ms = total_ms
        return results


def transcript_warnings(transcript: Transcript) -> list[str]:
    """Conversation-level caveats a caller should see next to the scores."""
    warnings = []
    if transcript.language and not transcript.language.lower().startswith("en"):
        warnings.append(
            f"language '{transcript.language}': the shipped models are trained on English; scores are less reliable"
        )
    if not any(m.role.value == "customer" for m in transcript.messages):
        warnings.append("no customer messages: conversation-level customer signals are empty")
    return warnings


def _complaint(probability: float) -> ComplaintResult:
    """A customer message's complaint result from P(yes); the label is the head's argmax."""
    return ComplaintResult(label="yes" if probability > 0.5 else "no", score=round(float(probability), _ROUND))


def _rounded(labels: Sequence[str], values: np.ndarray) -> dict[str, float]:
    return {label: round(float(v), _ROUND) for label, v in zip(labels, values)}
