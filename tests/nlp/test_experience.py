"""The experience score: the policy's fitted formula applied exactly, the hand-set formula
kept for policies without an `experience:` section, and the section's validation. Hand-
built message analyses, no model."""

from __future__ import annotations

import pytest

from nlp.experience import FEATURES, ExperienceModel
from nlp.policy import PolicyError, load_policy
from nlp.schemas import MessageAnalysis, Role
from tests.nlp.test_conversation import message
from tests.nlp.test_conversation import summarize as summarize_under

FITTED_POLICY = """\
version: 1
experience:
  intercept: 0.5
  weights:
    last_sentiment: 1.0
    mean_sentiment: 0.4
    resolved: 0.5
    customer_turns: -0.1
    agent_acknowledged: 0.2
  scale: {low: -2, high: 2}
"""


def summarize(policy, *analyses: MessageAnalysis, texts=None, minutes=None):
    """The insights of the conversation of `analyses` under `policy`."""
    return summarize_under(*analyses, texts=texts, minutes=minutes, policy=policy).insights


@pytest.fixture
def fitted(tmp_path):
    path = tmp_path / "fitted.yaml"
    path.write_text(FITTED_POLICY)
    return load_policy(path)


@pytest.fixture
def handset(tmp_path):
    path = tmp_path / "handset.yaml"
    path.write_text("version: 1\n")
    policy = load_policy(path)
    assert policy.experience is None
    return policy


def test_fitted_formula_is_applied_exactly(fitted):
    insights = summarize(
        fitted,
        message("a", -0.4),
        message("b", 0.1, role=Role.agent),
        message("c", 0.8),
        texts={"b": "Sorry about that.", "c": "That worked, thank you!"},
    )
    # satisfaction 0.5 + 1.0*0.8 + 0.4*mean(-0.4, 0.8) + 0.5*resolved - 0.1*2 turns + 0.2*acknowledged = 1.88;
    # score 100 * (1.88 + 2) / 4 = 97; 25 points per satisfaction unit
    assert insights.resolution.label == "resolved"
    assert insights.experience_score == 97
    breakdown = insights.experience_breakdown
    assert list(breakdown) == ["base", *FEATURES]
    expected = {
        "base": 62.5,
        "last_sentiment": 20.0,
        "mean_sentiment": 2.0,
        "resolved": 12.5,
        "customer_turns": -5.0,
        "agent_acknowledged": 5.0,
    }
    assert breakdown == {name: expected.get(name, 0.0) for name in breakdown}
    assert sum(breakdown.values()) == pytest.approx(97.0)


def test_fitted_formula_clips_to_0_and_100(fitted):
    unhappy = summarize(fitted, *(message(str(i), -1.0) for i in range(30)))
    assert unhappy.experience_score == 0 and sum(unhappy.experience_breakdown.values()) < 0
    assert summarize(fitted, message("a", 1.0), texts={"a": "Perfect, thanks"}).experience_score == 100


def test_no_customer_turns_scores_50_either_way(fitted, handset):
    for policy in (fitted, handset):
        insights = summarize(policy, message("x", -0.9, role=Role.agent))
        assert insights.experience_score == 50 and insights.experience_breakdown == {"base": 50.0}


def test_policy_without_the_section_keeps_the_hand_set_score(handset):
    resolved = summarize(
        handset,
        message("a", -0.4),
        message("b", 0.1, role=Role.agent),
        message("c", 0.8),
        texts={"c": "That worked, thank you!"},
    )
    assert resolved.experience_score == 93  # 50 + 35 * 0.8 + 15
    assert resolved.experience_breakdown == {
        "base": 50.0,
        "last_sentiment": 28.0,
        "resolved": 15.0,
        "unresolved": 0.0,
        "effort_cues": 0.0,
        "longest_wait_minutes": 0.0,
    }
    effort = summarize(
        handset,
        message("a", -0.2, cues=[("repeat_contact", "third time")]),
        message("b", 0.0, role=Role.agent),
        message("c", -0.6, cues=[("repeat_contact", "again")]),
        texts={"c": "It's still not working."},
    )
    assert effort.experience_score == 4  # 50 - 35 * 0.6 - 15 - 2 * 5 (two effort cues)
    waited = summarize(handset, message("a", 0.2), message("b", 0.0, role=Role.agent), minutes={"a": 0, "b": 20})
    assert waited.experience_score == 47  # 50 + 35 * 0.2 - 10 (waited over 15 minutes)
    medium_wait = summarize(handset, message("a", -0.2), message("b", 0.0, role=Role.agent), minutes={"a": 0, "b": 6})
    assert medium_wait.experience_score == 38  # 50 - 35 * 0.2 - 5 (waited over 5 minutes)
    many_cues = summarize(handset, message("a", 0.0, cues=[("repeat_contact", "again")] * 5))
    assert many_cues.experience_score == 35  # effort capped at - 15


def test_shipped_policy_carries_fitted_weights_for_every_feature():
    section = load_policy().experience
    assert isinstance(section, ExperienceModel)
    assert set(section.weights.model_dump()) == set(FEATURES)
    assert section.weights.longest_wait_minutes == 0.0  # STC-3 has no timestamps: not fitted
    assert section.scale.low == -2 and section.scale.high == 2


@pytest.mark.parametrize(
    "section,named",
    [
        ("experience: {intercept: 0, weights: {last_sentimnet: 1.0}}", "experience.weights.last_sentimnet"),
        ("experience: {intercept: 0, weights: {}, offset: 3}", "experience.offset"),
        ("experience: {weights: {}}", "experience.intercept"),
        ("experience: {intercept: 0, weights: {urgency: high}}", "experience.weights.urgency"),
        ("experience: {intercept: 0, weights: {}, scale: {low: 2, high: -2}}", "experience.scale"),
    ],
)
def test_bad_experience_section_names_the_key(tmp_path, section, named):
    path = tmp_path / "policy.yaml"
    path.write_text(f"version: 1\n{section}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert named in str(caught.value) and str(path) in str(caught.value)
