"""Complaint results in the analysis: each customer message of a bundle with a complaint
head gets {label, score = P(yes)} from the same encoder pass; other roles, and bundles
without the head, get none; a complaint tags the conversation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlp.analyzer import Analyzer
from nlp.bundle import ModelBundle
from nlp.heads import HeadSpec, TaskHead
from nlp.schemas import Transcript
from nlp.vocabulary import COMPLAINT_LABELS

TRANSCRIPT = Transcript.model_validate(
    {
        "conversation_id": "c-1",
        "messages": [
            {"id": "m1", "role": "customer", "text": "You charged me twice and nobody answers my emails."},
            {"id": "m2", "role": "agent", "text": "I am sorry about that, let me look into it."},
            {"id": "m3", "role": "bot", "text": "Your ticket number is 1234."},
            {"id": "m4", "role": "customer", "text": "Thanks, what are your opening hours?"},
        ],
    }
)


def complaint_head(bias: float | None = None) -> TaskHead:
    """A complaint head with random weights; `bias` pushes every message to yes (> 0) or no."""
    torch.manual_seed(0)
    head = TaskHead(HeadSpec("complaint", "multiclass", list(COMPLAINT_LABELS), 768, 16, temperature=1.3))
    if bias is not None:
        with torch.no_grad():
            head.network.output.weight.zero_()
            head.network.output.bias.copy_(torch.tensor([0.0, bias]))
    return head


def analyzer_with(base: Analyzer, heads: dict[str, TaskHead]) -> Analyzer:
    bundle = ModelBundle(base.bundle.path, base.bundle.manifest, heads, base.bundle.adapter)
    return Analyzer(base.encoder, bundle)


def without_complaint(analyzer: Analyzer) -> dict[str, TaskHead]:
    return {task: head for task, head in analyzer.bundle.heads.items() if task != "complaint"}


def test_customer_messages_get_p_complaint_from_the_same_pass(analyzer):
    head = complaint_head()
    complaint_analyzer = analyzer_with(analyzer, {**without_complaint(analyzer), "complaint": head})
    result = complaint_analyzer.analyze(TRANSCRIPT)
    features = analyzer.encoder.encode([m.text for m in TRANSCRIPT.messages]).features
    expected = head.predict_proba(features)[:, 1]
    by_id = {m.id: m for m in result.messages}
    for row, message_id in ((0, "m1"), (3, "m4")):
        complaint = by_id[message_id].complaint
        assert complaint is not None and complaint.score == pytest.approx(expected[row], abs=1e-4)
        assert complaint.label == ("yes" if expected[row] > 0.5 else "no")
    assert by_id["m2"].complaint is None and by_id["m3"].complaint is None, "only customer messages"
    # The other heads read the same features as before: their results do not change.
    plain = analyzer_with(analyzer, without_complaint(analyzer)).analyze(TRANSCRIPT)
    for with_head, without in zip(result.messages, plain.messages):
        assert with_head.sentiment == without.sentiment and with_head.urgency == without.urgency


@pytest.mark.parametrize(("bias", "tagged"), [(8.0, True), (-8.0, False)])
def test_a_complaint_tags_the_conversation(analyzer, bias, tagged):
    complaint_analyzer = analyzer_with(analyzer, {**without_complaint(analyzer), "complaint": complaint_head(bias)})
    result = complaint_analyzer.analyze(TRANSCRIPT)
    customer = [m for m in result.messages if m.role.value == "customer"]
    assert all(m.complaint is not None and m.complaint.label == ("yes" if tagged else "no") for m in customer)
    assert ("complaint" in result.conversation.tags) is tagged


def test_bundles_without_the_head_report_none(analyzer):
    result = analyzer_with(analyzer, without_complaint(analyzer)).analyze(TRANSCRIPT)
    assert all(m.complaint is None for m in result.messages)
    assert "complaint" not in result.conversation.tags
    assert result.messages[0].model_dump()["complaint"] is None


def test_a_complaint_head_with_other_labels_is_refused(analyzer):
    head = complaint_head()
    head.spec.labels = ["yes", "no"]
    with pytest.raises(ValueError, match="complaint head labels"):
        analyzer_with(analyzer, {**without_complaint(analyzer), "complaint": head})


def test_p_complaint_is_the_yes_column(analyzer):
    head = complaint_head(bias=2.0)
    probabilities = head.predict_proba(np.zeros((1, 768), dtype=np.float32))
    assert probabilities[0, COMPLAINT_LABELS.index("yes")] == pytest.approx(1 / (1 + np.exp(-2.0 / 1.3)))
