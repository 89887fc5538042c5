"""The cue head joined with the cue patterns (nlp.cue_model): head ∪ patterns, `model`
cues quoting the message's most relevant sentence, redacted, and none on agent turns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlp.analyzer import Analyzer
from nlp.bundle import ModelBundle
from nlp.config import InspectionConfig
from nlp.cue_model import CueModel
from nlp.heads import HeadSpec, TaskHead
from nlp.inspection import build_inspector
from nlp.schemas import Message, Role, Transcript
from nlp.text import sentence_spans
from nlp.vocabulary import CUE_FAMILIES

NEVER = 1.01  # a threshold no probability reaches


def cue_analyzer(analyzer: Analyzer, thresholds: dict[str, float], attention_dim: int | None = None) -> Analyzer:
    """The session analyzer's encoder and bundle plus a cue head (seeded weights) whose
    families fire at the given thresholds (others never), with cue patterns and redaction;
    with `attention_dim`, a head that also attends over the token vectors."""
    torch.manual_seed(0)
    spec = HeadSpec(
        task="cues",
        kind="multilabel",
        labels=list(CUE_FAMILIES),
        input_dim=analyzer.encoder.feature_dim,
        hidden_dim=32,
        thresholds=[thresholds.get(family, NEVER) for family in CUE_FAMILIES],
        attention_dim=attention_dim,
    )
    head = TaskHead(spec)
    if head.network.attention is not None:
        with torch.no_grad():  # its label weights start at zero: give the attention a say
            head.network.attention.label_weight.normal_()
    bundle = analyzer.bundle
    heads = {**bundle.heads, "cues": head}
    inspector = build_inspector(InspectionConfig(detect_cues=True, redact_pii=True, match_categories=False))
    return Analyzer(
        analyzer.encoder, ModelBundle(bundle.path, bundle.manifest, heads, bundle.adapter), analyzer.policy, inspector
    )


@pytest.fixture(scope="module")
def always_security(analyzer: Analyzer) -> Analyzer:
    return cue_analyzer(analyzer, {"security": 0.0})


def test_sentences_split_on_end_marks_and_line_breaks():
    text = 'Hi there. Someone used my card in Spain!! I am at home.\nPlease help "now." ok'
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "Hi there.",
        "Someone used my card in Spain!!",
        "I am at home.",
        'Please help "now."',
        "ok",
    ]
    assert sentence_spans("  ") == [] and sentence_spans("one") == [(0, 3)]


class CountingEncoder:
    """The session encoder, counting its forward passes (every other attribute is its own)."""

    def __init__(self, wrapped: object) -> None:
        self.wrapped = wrapped
        self.calls: list[int] = []

    def encode(self, texts, keep_tokens=None):
        self.calls.append(len(texts))
        return self.wrapped.encode(texts, keep_tokens)  # type: ignore[attr-defined]

    def __getattr__(self, name: str):
        return getattr(self.wrapped, name)


def test_head_only_cue_quotes_the_sentence_the_head_scores_highest(always_security: Analyzer):
    text = "Hello, this is Maria Fernandez. Somebody abroad bought groceries with my card while I was at home. Thanks."
    analysis = always_security.analyze_messages([Message(role=Role.customer, text=text)], ["m1"])[0]
    security = [cue for cue in analysis.cues if cue.family == "security"]
    assert len(security) == 1 and security[0].source == "model"
    # The quote is the redacted sentence with the highest P(security) of the message's
    # sentences, each read from the message's own token vectors.
    spans = sentence_spans(text)
    sentences = [text[s:e] for s, e in spans]
    encoder = always_security.encoder
    tokens = encoder.encode([text], [True]).tokens
    assert tokens is not None and tokens[0] is not None
    cue_model = CueModel(always_security.bundle.heads["cues"])
    scores = cue_model.sentence_scores(text, spans, tokens[0], encoder.token_offsets(text))
    assert np.isfinite(scores).all()
    best = sentences[int(np.argmax(scores[:, CUE_FAMILIES.index("security")]))]
    if "Maria" in best:
        assert "Maria" not in security[0].quote and "[" in security[0].quote, "names in the evidence are redacted"
    else:
        assert security[0].quote == best


def test_a_cue_head_that_attends_over_tokens_reads_each_sentences_own(analyzer: Analyzer):
    attending = cue_analyzer(analyzer, {"security": 0.0}, attention_dim=8)
    text = "Hello, this is Maria. Somebody abroad bought groceries with my card while I was at home. Thanks."
    analysis = attending.analyze_messages([Message(role=Role.customer, text=text)], ["m1"])[0]
    (security,) = [cue for cue in analysis.cues if cue.family == "security"]
    assert security.source == "model" and security.quote in {text[s:e] for s, e in sentence_spans(text)}
    head = attending.bundle.heads["cues"]
    tokens = attending.encoder.encode([text], [True]).tokens
    assert tokens is not None and tokens[0] is not None
    args = (text, sentence_spans(text), tokens[0], attending.encoder.token_offsets(text))
    scores = CueModel(head).sentence_scores(*args)
    with torch.no_grad():
        head.network.attention.label_weight.zero_()  # the attention silenced: pooled features alone
        head.network.attention.label_bias.zero_()
    assert np.isfinite(scores).all() and not np.allclose(scores, CueModel(head).sentence_scores(*args))


def test_the_evidence_sentence_costs_no_second_encoder_pass(analyzer: Analyzer):
    counting = CountingEncoder(analyzer.encoder)
    chosen = cue_analyzer(
        Analyzer(counting, analyzer.bundle, analyzer.policy),
        {"security": 0.0},  # type: ignore[arg-type]
    )
    text = "Hi, I am Maria Fernandez. Somebody abroad keeps buying things with my card. I am at home. Please help."
    analysis = chosen.analyze_messages([Message(role=Role.customer, text=text)], ["m1"])[0]
    (security,) = [cue for cue in analysis.cues if cue.family == "security"]
    assert security.source == "model" and "Maria" not in security.quote
    assert chosen.inspector is not None
    redacted = set(chosen.inspector.inspect([text], [Role.customer], sentences_for=[True])[0].sentences)
    assert security.quote in redacted, "the evidence is one of the message's redacted sentences"
    assert counting.calls == [1], "one encoder pass for the message, none for its sentences"


def test_sentences_past_the_encoders_window_are_never_evidence(analyzer: Analyzer):
    """A sentence the encoder did not read (the message is longer than its window) scores
    -inf, so it is never chosen."""
    text = "My card was used abroad. " + "This is filler text that goes on. " * 120 + "Last words here."
    spans = sentence_spans(text)
    tokens = analyzer.encoder.encode([text], [True]).tokens
    assert tokens is not None and tokens[0] is not None
    scores = CueModel(analyzer.bundle.heads["cues"]).sentence_scores(
        text, spans, tokens[0], analyzer.encoder.token_offsets(text)
    )
    assert np.isfinite(scores[0]).all() and not np.isfinite(scores[-1]).any()


def test_single_sentence_is_its_own_evidence_and_agents_get_no_model_cues(always_security: Analyzer):
    customer = Message(role=Role.customer, text="someone in another country just bought groceries with my card")
    agent = Message(role=Role.agent, text="Thanks, I have blocked the card and ordered a new one.")
    first, second = always_security.analyze_messages([customer, agent], ["m1", "m2"])
    assert [(c.family, c.source, c.quote) for c in first.cues] == [("security", "model", customer.text)]
    assert second.cues == []


def test_pattern_cues_keep_their_quote_and_the_head_adds_only_new_families(analyzer: Analyzer):
    both = cue_analyzer(analyzer, {"security": 0.0, "cancellation": 0.0})
    text = "I want to cancel my account today. Nobody answers."
    cues = both.analyze_messages([Message(role=Role.customer, text=text)], ["m1"])[0].cues
    by_family = {cue.family: cue for cue in cues}
    assert by_family["cancellation"].source == "pattern" and by_family["cancellation"].quote != text
    assert by_family["security"].source == "model"
    assert [c.family for c in cues] == [f for f in CUE_FAMILIES if f in by_family], "reported in family order"


def test_a_head_that_never_fires_leaves_the_patterns_alone(analyzer: Analyzer):
    silent = cue_analyzer(analyzer, {})
    text = "I want to cancel my account today."
    cues = silent.analyze_messages([Message(role=Role.customer, text=text)], ["m1"])[0].cues
    assert [(c.family, c.source) for c in cues] == [("cancellation", "pattern")]


def test_a_cue_head_with_other_labels_is_refused(analyzer: Analyzer):
    bundle = analyzer.bundle
    wrong = TaskHead(
        HeadSpec(
            task="cues", kind="multilabel", labels=["a", "b"], input_dim=analyzer.encoder.feature_dim, hidden_dim=8
        )
    )
    with pytest.raises(ValueError, match="cue head labels"):
        Analyzer(analyzer.encoder, ModelBundle(bundle.path, bundle.manifest, {**bundle.heads, "cues": wrong}))


@pytest.fixture(scope="module")
def shipped(analyzer: Analyzer) -> Analyzer:
    """The shipped bundle's own cue head, with the cue patterns and redaction on."""
    inspector = build_inspector(InspectionConfig(detect_cues=True, redact_pii=True, match_categories=False))
    assert "cues" in analyzer.bundle.heads, "the shipped bundle has a cue head"
    return Analyzer(analyzer.encoder, analyzer.bundle, analyzer.policy, inspector)


def advice(shipped: Analyzer, text: str):
    transcript = Transcript.model_validate(
        {"conversation_id": "c", "channel": "chat", "messages": [{"role": "customer", "text": text}]}
    )
    result = shipped.analyze(transcript)
    return result.messages[0], result.conversation.escalation


def test_fraud_in_progress_without_its_keywords_is_a_security_cue_and_urgent(shipped: Analyzer):
    """No 'fraud', 'stolen', 'scam' or 'hacked', and no pattern fires: the head finds it."""
    message, escalation = advice(
        shipped,
        "Someone has been buying things with my card in another country while I'm at home, "
        "and I can still see new ones coming in.",
    )
    assert [(c.family, c.source) for c in message.cues] == [("security", "model")]
    assert escalation.level == "urgent"


def test_polite_fraud_in_progress_is_a_security_cue_and_urgent(shipped: Analyzer):
    """Said politely, with none of fraud's words: payments landing while the customer holds the card."""
    message, escalation = advice(
        shipped,
        "Good evening, sorry to bother you. I can see two payments to a furniture shop in Lyon on my account, "
        "but I'm at home and the card is right in front of me.",
    )
    assert "security" in {c.family for c in message.cues}
    assert (escalation.level, escalation.route_to) == ("urgent", "security")


@pytest.mark.parametrize(
    "text",
    [
        "I'm not going to cancel, I just want to know when my next bill is due.",
        "Don't worry, I'm not cancelling my subscription - could you tell me how to change my delivery day?",
    ],
)
def test_a_negated_cancellation_is_no_cue_and_stays_below_escalate(shipped: Analyzer, text: str):
    """The patterns read the negation in the parse; the head defers to them."""
    message, escalation = advice(shipped, text)
    assert "cancellation" not in {c.family for c in message.cues}
    assert escalation.level in ("none", "monitor")


def test_the_head_defers_where_the_patterns_ruled_the_family_out(analyzer: Analyzer):
    eager = cue_analyzer(analyzer, {"cancellation": 0.0, "security": 0.0})
    cues = eager.analyze_messages(
        [Message(role=Role.customer, text="I'm not going to cancel my account, I love it.")], ["m1"]
    )[0].cues
    assert [(c.family, c.source) for c in cues] == [("security", "model")], "cancellation was negated in the parse"
