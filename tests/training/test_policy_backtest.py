"""`convintel policy backtest`: the whole backtest.json of a hand-checked fixture (worked
in fixtures/escalation/README.md), the self-contained page, one encoder pass whatever
the policies, and the errors for a bad policy or data file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlp.analyzer import Analyzer
from nlp.policy import load_policy
from service.cli import app
from tests.conftest import FIXTURES
from training.escalation_eval import read_labelled
from training.policy_backtest import PolicyUnderTest, backtest, direction, render_summary

ESCALATION = FIXTURES / "escalation"
DATA = ESCALATION / "backtest_conversations.jsonl"
CANDIDATE = ESCALATION / "backtest_candidate.yaml"
BASELINE = ESCALATION / "backtest_baseline.yaml"
LEVELS = ["none", "monitor", "escalate", "urgent"]
ALL_ROUTES = {"none": 3, "senior_agent": 2, "supervisor": 1}
MESSAGES = 3 + 4 + 5 + 3 + 7 + 4


def figures(confusion: list, accuracy: float, prf: float, route: tuple, predicted_routes: dict) -> dict:
    """score_conversations' figures for all six conversations or the two held out (n from the
    confusion matrix). Precision, recall and F1 of `recommended` are equal in every part
    here, and no prediction is two levels off (level within one: 1.0). `route` is the
    number of labels naming a route other than none, and the route accuracy on them."""
    n = sum(map(sum, confusion))
    return {
        "n": n,
        "recommended_precision": prf,
        "recommended_recall": prf,
        "recommended_f1": prf,
        "level_accuracy": accuracy,
        "level_within_one": 1.0,
        # each level's diagonal over its row: the recall of that level, None for no labels
        "level_recall": {
            level: round(row[i] / sum(row), 4) if sum(row) else None
            for i, (level, row) in enumerate(zip(LEVELS, confusion))
        },
        "confusion_matrix": {"labels": LEVELS, "rows_truth_cols_predicted": confusion},
        "routes": {
            "n": route[0],
            "accuracy": route[1],
            "labelled": ALL_ROUTES if n == 6 else {"none": 2},
            "predicted": predicted_routes,
        },
    }


def rule(name: str, level: str, fired: int = 0, agrees: int = 0, higher: int = 0, lower: int = 0) -> dict:
    return {
        "rule": name,
        "level": level,
        "fired": fired,
        "agrees": agrees,
        "label_higher": higher,
        "label_lower": lower,
    }


def advice(level: str, route: str, *rules: str) -> dict:
    return {"level": level, "route": route, "rules": list(rules)}


CANDIDATE_RESULTS = {
    "all": figures([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 3, 0], [0, 0, 0, 0]], 0.8333, 1.0, (3, 1.0), ALL_ROUTES)
    | {
        "rules": [
            rule("bot_loop", "escalate", 1, agrees=1),
            rule("long_wait", "escalate", 1, agrees=1),
            rule("unacknowledged_wait", "escalate", 1, agrees=1),
            rule("slow_first_reply", "monitor", 3, agrees=1, higher=2),
            rule("long_conversation", "monitor", 1, lower=1),
        ]
    },
    "heldout": figures([[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], 0.5, 0.0, (0, None), {"none": 2})
    | {
        "rules": [
            rule("bot_loop", "escalate"),
            rule("long_wait", "escalate"),
            rule("unacknowledged_wait", "escalate"),
            rule("slow_first_reply", "monitor", 1, agrees=1),
            rule("long_conversation", "monitor", 1, lower=1),
        ]
    },
}
BASELINE_RESULTS = {
    "all": figures(
        [[2, 0, 0, 0], [0, 0, 1, 0], [0, 1, 2, 0], [0, 0, 0, 0]],
        0.6667,
        0.6667,
        (3, 0.6667),
        {"none": 3, "senior_agent": 3},
    )
    | {
        "rules": [
            rule("bot_loop", "escalate", 1, agrees=1),
            rule("long_wait", "escalate", 2, agrees=1, lower=1),
            rule("slow_first_reply", "monitor", 3, agrees=1, higher=2),
        ]
    },
    "heldout": figures(
        [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], 0.5, 0.0, (0, None), {"none": 1, "senior_agent": 1}
    )
    | {
        "rules": [
            rule("bot_loop", "escalate"),
            rule("long_wait", "escalate", 1, lower=1),
            rule("slow_first_reply", "monitor", 1, agrees=1),
        ]
    },
}
CHANGES = {
    "conversations": [
        {
            "conversation_id": "fx-bt-02",
            "heldout": False,
            "label": "escalate",
            "baseline": "monitor",
            "candidate": "escalate",
            "direction": "fixed",
            "label_route": "supervisor",
            "baseline_route": "none",
            "candidate_route": "supervisor",
            "rules_new": ["unacknowledged_wait"],
            "rules_gone": [],
        },
        {
            "conversation_id": "fx-bt-04",
            "heldout": True,
            "label": "monitor",
            "baseline": "escalate",
            "candidate": "monitor",
            "direction": "fixed",
            "label_route": "none",
            "baseline_route": "senior_agent",
            "candidate_route": "none",
            "rules_new": [],
            "rules_gone": ["long_wait"],
        },
        {
            "conversation_id": "fx-bt-05",
            "heldout": True,
            "label": "none",
            "baseline": "none",
            "candidate": "monitor",
            "direction": "broken",
            "label_route": "none",
            "baseline_route": "none",
            "candidate_route": "none",
            "rules_new": ["long_conversation"],
            "rules_gone": [],
        },
    ],
    "all": {
        "changed": 3,
        "fixed": 2,
        "broken": 1,
        "sideways": 0,
        # Differences of the rounded figures: 0.8333 - 0.6667 and 1.0 - 0.6667.
        "deltas": {
            "level_accuracy": 0.1666,
            "level_within_one": 0.0,
            "recommended_precision": 0.3333,
            "recommended_recall": 0.3333,
            "recommended_f1": 0.3333,
            "route_accuracy": 0.3333,
        },
    },
    "heldout": {
        "changed": 2,
        "fixed": 1,
        "broken": 1,
        "sideways": 0,
        "deltas": {
            "level_accuracy": 0.0,
            "level_within_one": 0.0,
            "recommended_precision": 0.0,
            "recommended_recall": 0.0,
            "recommended_f1": 0.0,
            "route_accuracy": None,
        },
    },
}
LABELS = {  # level, route, held out
    "fx-bt-01": ("none", "none", False),
    "fx-bt-02": ("escalate", "supervisor", False),
    "fx-bt-03": ("escalate", "senior_agent", False),
    "fx-bt-04": ("monitor", "none", True),
    "fx-bt-05": ("none", "none", True),
    "fx-bt-06": ("escalate", "senior_agent", False),
}
CANDIDATE_ADVICE = {
    "fx-bt-01": advice("none", "none"),
    "fx-bt-02": advice("escalate", "supervisor", "unacknowledged_wait", "slow_first_reply"),
    "fx-bt-03": advice("escalate", "senior_agent", "bot_loop"),
    "fx-bt-04": advice("monitor", "none", "slow_first_reply"),
    "fx-bt-05": advice("monitor", "none", "long_conversation"),
    "fx-bt-06": advice("escalate", "senior_agent", "long_wait", "slow_first_reply"),
}
BASELINE_ADVICE = CANDIDATE_ADVICE | {
    "fx-bt-02": advice("monitor", "none", "slow_first_reply"),
    "fx-bt-04": advice("escalate", "senior_agent", "long_wait", "slow_first_reply"),
    "fx-bt-05": advice("none", "none"),
}


@pytest.fixture(scope="module")
def run(analyzer: Analyzer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, list[int]]:
    """The command on the fixture, with the session analyzer (the policies read no cue or
    model score, so the configured analyzer gives the same); also counts encoded texts."""
    out = tmp_path_factory.mktemp("backtest")
    encoded: list[int] = []
    encode = analyzer.encode
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("service.runtime.load_analyzer", lambda settings: analyzer)
        patch.setattr(analyzer, "encode", lambda texts, keep=None: encoded.append(len(texts)) or encode(texts, keep))
        result = CliRunner().invoke(
            app,
            ["policy", "backtest", str(CANDIDATE), "--data", str(DATA), "--baseline", str(BASELINE), "-o", str(out)],
        )
    assert result.exit_code == 0, result.output
    return result.output, out, encoded


def test_backtest_json_is_the_hand_computed_one(run, analyzer: Analyzer):
    _, out, _ = run
    expected = {
        "data": str(DATA),
        "conversations": 6,
        "heldout": 2,
        "model": analyzer.model_info.model_dump(),
        "routes_labelled": True,
        "candidate": {"policy": str(CANDIDATE), "results": CANDIDATE_RESULTS},
        "baseline": {"policy": str(BASELINE), "results": BASELINE_RESULTS},
        "changes": CHANGES,
        "advice": [
            {
                "conversation_id": cid,
                "heldout": heldout,
                "label": level,
                "label_route": route,
                "candidate": CANDIDATE_ADVICE[cid],
                "baseline": BASELINE_ADVICE[cid],
            }
            for cid, (level, route, heldout) in LABELS.items()
        ],
    }
    assert json.loads((out / "backtest.json").read_text()) == expected


def test_each_message_is_encoded_once_for_both_policies(run):
    _, _, encoded = run
    assert encoded == [MESSAGES]


def test_the_summary_names_the_figures_and_each_change(run):
    output, out, _ = run
    assert re.search(r"all\s+candidate\s+6\s+0\.833\s+1\.000\s+1\.000\s+1\.000\s+1\.000\s+1\.000 \(n=3\)", output)
    assert re.search(r"heldout\s+baseline\s+2\s+0\.500\s+.*n/a", output)
    assert (
        "3 conversation(s) change level: 2 fixed, 1 broken, 0 sideways (held out: 2 change, 1 fixed, 1 broken)"
        in output
    )
    assert (
        "Candidate minus baseline: level accuracy +0.167, rec. F1 +0.333, route accuracy +0.333; "
        "held out: level accuracy +0.000, rec. F1 +0.000, route accuracy n/a." in output
    )
    assert (
        "fx-bt-02: label escalate (supervisor), monitor -> escalate (supervisor), fixed; +unacknowledged_wait" in output
    )
    assert "fx-bt-04 (held out): label monitor, escalate (senior_agent) -> monitor, fixed; -long_wait" in output
    assert "fx-bt-05 (held out): label none, none -> monitor, broken; +long_conversation" in output
    assert f"wrote {out / 'backtest.json'} and {out / 'backtest.html'}" in output


def test_the_page_is_self_contained(run):
    _, out, _ = run
    page = (out / "backtest.html").read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    for external in ("<script", "<link", "src=", "href=", "url(", "@import"):
        assert external not in page
    # Four confusion matrices (candidate and baseline, all and held out) and the changes.
    assert page.count('class="confusion"') == 4
    assert "<td>fx-bt-02</td><td></td><td>escalate (supervisor)</td><td>monitor</td>" in page


def test_without_baseline_or_routes(analyzer: Analyzer, tmp_path: Path):
    """No --baseline: no changes; labels without route_to: route distribution only, said so."""
    data = tmp_path / "no_routes.jsonl"
    lines = [json.loads(line) for line in DATA.read_text().splitlines()]
    for line in lines:
        del line["label"]["route_to"]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = backtest(analyzer, read_labelled(data), PolicyUnderTest("new", load_policy(CANDIDATE)))
    assert report["baseline"] is None and report["changes"] is None and not report["routes_labelled"]
    assert report["candidate"]["results"]["all"]["routes"] == {
        "n": 0,
        "accuracy": None,
        "labelled": {},
        "predicted": ALL_ROUTES,
    }
    assert report["candidate"]["results"]["all"]["level_accuracy"] == 0.8333
    summary = render_summary(report)
    assert "The labels name no routes" in summary and "Against" not in summary


def test_direction_of_a_change():
    assert direction("escalate", "monitor", "escalate") == "fixed"
    assert direction("none", "monitor", "urgent") == "broken"
    assert direction("escalate", "monitor", "urgent") == "sideways"


def test_a_bad_policy_is_one_line_naming_the_key(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASELINE.read_text().replace("first_response_minutes_at_least", "first_reponse_minutes_at_least"))
    for args in (["policy", "backtest", str(bad)], ["policy", "backtest", str(CANDIDATE), "--baseline", str(bad)]):
        result = CliRunner().invoke(app, [*args, "--data", str(DATA), "--output", str(tmp_path / "out")])
        assert result.exit_code == 2
        assert "rules.2.when.first_reponse_minutes_at_least" in result.output
        assert len(result.output.strip().splitlines()) == 1
    bad.write_text("rules: [\n  - name: x\n")  # not YAML: the parser's message spans lines
    result = CliRunner().invoke(app, ["policy", "backtest", str(bad), "--data", str(DATA)])
    assert result.exit_code == 2 and "not valid YAML" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_or_invalid_data_is_one_line(tmp_path: Path):
    missing = tmp_path / "missing.jsonl"
    result = CliRunner().invoke(app, ["policy", "backtest", str(CANDIDATE), "--data", str(missing)])
    assert result.exit_code == 2 and f"cannot read {missing}" in result.output
    bad = tmp_path / "bad.jsonl"
    record = json.loads(DATA.read_text().splitlines()[0])
    record["label"]["level"] = "panic"
    bad.write_text(json.dumps(record) + "\n")
    result = CliRunner().invoke(app, ["policy", "backtest", str(CANDIDATE), "--data", str(bad)])
    assert result.exit_code == 2 and "bad.jsonl:1: label.level 'panic'" in result.output
    assert len(result.output.strip().splitlines()) == 1
