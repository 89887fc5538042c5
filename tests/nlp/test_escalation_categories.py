"""The shipped tag categories the escalation policy reads (routes by topic, deadlines today,
a stopped business): general phrasings match, near misses do not."""

from __future__ import annotations

import pytest

from nlp.categories import CategoryMatcher, load_categories
from nlp.schemas import CategoryHit, Role
from nlp.spacy_pipeline import load_pipeline
from tests.nlp.test_conversation import message, summarize


@pytest.fixture(scope="module")
def shipped() -> CategoryMatcher:
    return CategoryMatcher(load_pipeline(), load_categories())


def names(matcher: CategoryMatcher, text: str) -> set[str]:
    return {span.name for span in matcher.match_doc(load_pipeline()(text), Role.customer)}


@pytest.mark.parametrize(
    "name, text",
    [
        ("deadline_today", "My visa application has to be submitted by 5pm today and the portal won't load."),
        ("deadline_today", "The tribunal hearing is this afternoon and I still have no bundle."),
        ("business_stopped", "None of our staff can log in to the booking system."),
        ("business_stopped", "We cannot take card payments in either shop."),
        ("business_stopped", "Our customers can't book and we're turning people away."),
        ("service_outage", "The broadband keeps failing every evening."),
        ("service_outage", "The app shows error 503 whenever I open it."),
        ("billing_dispute", "Forty pounds was deducted from my account for nothing."),
        ("billing_dispute", "Your direct debit took the wrong amount again."),
    ],
)
def test_general_phrasings_match(shipped, name, text):
    assert name in names(shipped, text)


@pytest.mark.parametrize(
    "name, text",
    [
        ("deadline_today", "My parcel is due today, can you confirm the slot?"),
        ("deadline_today", "The court case was settled last year."),
        ("business_stopped", "I can take the payment over the phone if that helps."),
        ("service_outage", "Everything is working again, thanks."),
    ],
)
def test_near_misses_do_not_match(shipped, name, text):
    assert name not in names(shipped, text)


def pressing(categories: list[str], p_high: float = 0.9):
    hits = [CategoryHit(name=name, quote="q") for name in categories]
    return message("m1", -0.5, p_high=p_high).model_copy(update={"categories": hits})


def test_a_stopped_business_or_a_deadline_today_is_urgent():
    """The guideline's urgent cases without a risk cue: an outage that stops a business (to the
    engineers) and a hard deadline today (to a supervisor), when the customer's matter is pressing."""
    stopped = summarize(pressing(["business_stopped", "service_outage"])).escalation
    assert (stopped.level, stopped.route_to) == ("urgent", "technical")
    deadline = summarize(pressing(["deadline_today"])).escalation
    assert (deadline.level, deadline.route_to) == ("urgent", "supervisor")
    # The same outage, but not pressing: no urgent rule fires on the topic alone.
    calm = summarize(pressing(["business_stopped"], p_high=0.0)).escalation
    assert calm.level != "urgent"


def test_disputed_money_escalates_to_billing_until_the_customer_ends_satisfied():
    """The guideline's "money lost and unresolved": a disputed charge with no satisfied end."""
    disputed = message("m1", -0.3).model_copy(update={"categories": [CategoryHit(name="billing_dispute", quote="q")]})
    open_case = summarize(disputed, message("m2", -0.1)).escalation
    assert (open_case.level, open_case.route_to) == ("escalate", "billing")
    assert summarize(disputed, message("m2", 0.8)).escalation.level != "escalate"
