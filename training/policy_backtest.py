"""Backtesting an escalation policy on labelled conversations (`convintel policy backtest`):
what a candidate policy would have advised, scored against the labels, and, against a
baseline policy, which conversations it would change and whether each change moves
toward the label or away from it.

The message analyses do not depend on the policy, so each conversation is encoded once
and summarised under each policy from the same analyses. The figures are those of
`convintel evaluate-escalation` (training/escalation_eval.py), for all conversations and
the held-out part, plus how often each rule fires and how its level compares with the
labels. `backtest.json` holds everything; `backtest.html` draws it on one page."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from nlp.analyzer import Analyzer
from nlp.policy import Policy
from nlp.schemas import Channel, Escalation, MessageAnalysis
from nlp.signals import Turn
from nlp.vocabulary import NO_ROUTE
from service.batch.charts import confusion_matrix
from service.batch.pages import page, table
from training.escalation_eval import (
    LEVEL_INDEX,
    LabelledConversation,
    format_route_accuracy,
    in_part,
    rule_counts,
    score_parts,
)

BACKTEST_PARTS = ("all", "heldout")
JSON_FILE, HTML_FILE = "backtest.json", "backtest.html"
METRICS = (
    "level_accuracy",
    "level_within_one",
    "recommended_precision",
    "recommended_recall",
    "recommended_f1",
)
"""The figures compared between the policies (route accuracy is added to them)."""
SUMMARY_CHANGES = 10
"""Changed conversations listed in the printed summary; backtest.json lists all."""


@dataclass
class Analysed:
    """One conversation's message analyses and turns: what a policy summarises."""

    analyses: list[MessageAnalysis]
    turns: list[Turn]
    channel: Channel | None
    metadata: dict = field(default_factory=dict)


@dataclass
class PolicyUnderTest:
    """A policy and the name the report gives it (its file)."""

    name: str
    policy: Policy


def analyse_once(analyzer: Analyzer, rows: Sequence[LabelledConversation]) -> list[Analysed]:
    """Every conversation's messages analysed in one batch (one encoder pass per message)."""
    results = analyzer.analyze_batch([row.transcript for row in rows])
    return [
        Analysed(
            result.messages,
            [
                Turn(id=a.id, role=m.role, text=m.text, timestamp=m.timestamp)
                for a, m in zip(result.messages, row.transcript.messages)
            ],
            row.transcript.channel,
            row.transcript.metadata,
        )
        for row, result in zip(rows, results)
    ]


def advise(analyzer: Analyzer, analysed: Sequence[Analysed], policy: Policy) -> list[Escalation]:
    """The escalation advice `policy` gives on already analysed conversations (no encoding)."""
    return [
        analyzer.summarize(a.analyses, a.turns, a.channel, policy=policy, metadata=a.metadata).escalation
        for a in analysed
    ]


def policy_results(rows: Sequence[LabelledConversation], advice: Sequence[Escalation], policy: Policy) -> dict:
    """Per part: the evaluation figures plus each rule's counts ("rules")."""
    results = score_parts(rows, advice, BACKTEST_PARTS)
    for part, figures in results.items():
        keep = [i for i, row in enumerate(rows) if in_part(row, part)]
        figures["rules"] = rule_counts([rows[i] for i in keep], [advice[i] for i in keep], policy.rules)
    return results


def fired(advice: Escalation) -> list[str]:
    return [reason.rule for reason in advice.reasons]


def direction(label: str, before: str, after: str) -> str:
    """`fixed` when `after` is nearer the label than `before` (in ESCALATION_LEVELS order),
    `broken` when it is further, `sideways` when as far on the other side."""
    gap_before = abs(LEVEL_INDEX[before] - LEVEL_INDEX[label])
    gap_after = abs(LEVEL_INDEX[after] - LEVEL_INDEX[label])
    return "fixed" if gap_after < gap_before else "broken" if gap_after > gap_before else "sideways"


def compare(
    rows: Sequence[LabelledConversation],
    candidate: Sequence[Escalation],
    baseline: Sequence[Escalation],
    candidate_results: dict,
    baseline_results: dict,
) -> dict:
    """The conversations whose level changed from baseline to candidate, the fixed /
    broken / sideways counts per part, and the candidate-minus-baseline figures."""
    changed = []
    for row, new, old in zip(rows, candidate, baseline):
        if new.level == old.level:
            continue
        changed.append(
            {
                "conversation_id": row.conversation_id,
                "heldout": row.heldout,
                "label": row.level,
                "baseline": old.level,
                "candidate": new.level,
                "direction": direction(row.level, old.level, new.level),
                "label_route": row.route,
                "baseline_route": old.route_to,
                "candidate_route": new.route_to,
                "rules_new": [rule for rule in fired(new) if rule not in fired(old)],
                "rules_gone": [rule for rule in fired(old) if rule not in fired(new)],
            }
        )
    comparison: dict = {"conversations": changed}
    for part in BACKTEST_PARTS:
        moves = [c["direction"] for c in changed if part == "all" or c["heldout"]]
        new_figures, old_figures = candidate_results[part], baseline_results[part]
        deltas = {name: round(new_figures[name] - old_figures[name], 4) for name in METRICS}
        new_route, old_route = new_figures["routes"]["accuracy"], old_figures["routes"]["accuracy"]
        deltas["route_accuracy"] = None if new_route is None or old_route is None else round(new_route - old_route, 4)
        comparison[part] = {
            "changed": len(moves),
            "fixed": moves.count("fixed"),
            "broken": moves.count("broken"),
            "sideways": moves.count("sideways"),
            "deltas": deltas,
        }
    return comparison


def backtest(
    analyzer: Analyzer,
    rows: Sequence[LabelledConversation],
    candidate: PolicyUnderTest,
    baseline: PolicyUnderTest | None = None,
    *,
    data: str = "",
) -> dict:
    """The whole report: each policy's figures, each conversation's advice under each,
    and (with a baseline) what changes."""
    analysed = analyse_once(analyzer, rows)
    new = advise(analyzer, analysed, candidate.policy)
    old = advise(analyzer, analysed, baseline.policy) if baseline else None
    report: dict = {
        "data": data,
        "conversations": len(rows),
        "heldout": sum(row.heldout for row in rows),
        "model": analyzer.model_info.model_dump(),
        "routes_labelled": any(row.route is not None for row in rows),
        "candidate": {"policy": candidate.name, "results": policy_results(rows, new, candidate.policy)},
        "baseline": None,
        "changes": None,
    }
    if baseline and old is not None:
        report["baseline"] = {"policy": baseline.name, "results": policy_results(rows, old, baseline.policy)}
        report["changes"] = compare(rows, new, old, report["candidate"]["results"], report["baseline"]["results"])
    report["advice"] = [
        {
            "conversation_id": row.conversation_id,
            "heldout": row.heldout,
            "label": row.level,
            "label_route": row.route,
            "candidate": _advice_entry(new[i]),
            **({"baseline": _advice_entry(old[i])} if old is not None else {}),
        }
        for i, row in enumerate(rows)
    ]
    return report


def _advice_entry(advice: Escalation) -> dict:
    return {"level": advice.level, "route": advice.route_to, "rules": fired(advice)}


# --- output ---------------------------------------------------------------------------


def _systems(report: dict) -> list[tuple[str, dict]]:
    """(role, policy section) for the candidate and, where there is one, the baseline."""
    return [(role, report[role]) for role in ("candidate", "baseline") if report[role] is not None]


def _figure_row(part: str, role: str, figures: dict) -> list[str]:
    return [
        part,
        role,
        str(figures["n"]),
        *(f"{figures[name]:.3f}" for name in METRICS),
        format_route_accuracy(figures["routes"]),
    ]


FIGURE_HEADER = [
    "part",
    "policy",
    "conversations",
    "level accuracy",
    "within one",
    "rec. precision",
    "rec. recall",
    "rec. F1",
    "route accuracy",
]


def _routes_note(report: dict) -> str:
    if not report["routes_labelled"]:
        return "The labels name no routes: only the predicted route distribution is reported."
    return "Route accuracy counts the conversations whose label names a route other than none."


def render_summary(report: dict) -> str:
    """The short text the command prints: the figures per part and policy, then the changes."""
    lines = [
        f"Policy backtest of {report['candidate']['policy']} on {report['data']}: "
        f"{report['conversations']} conversations, {report['heldout']} held out "
        f"(bundle {report['model']['name']} {report['model']['version']})",
        "",
    ]
    rows = [
        _figure_row(part, role, section["results"][part])
        for part in BACKTEST_PARTS
        for role, section in _systems(report)
    ]
    widths = [max(len(r[i]) for r in [FIGURE_HEADER, *rows]) for i in range(len(FIGURE_HEADER))]
    for row in [FIGURE_HEADER, *rows]:
        lines.append(
            "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        )
    lines += ["", _routes_note(report)]
    silent = [r["rule"] for r in report["candidate"]["results"]["all"]["rules"] if not r["fired"]]
    if silent:
        lines.append(f"Rules that never fired: {', '.join(silent)}.")
    changes = report["changes"]
    if changes is not None:
        every, held = changes["all"], changes["heldout"]
        lines += [
            "",
            f"Against {report['baseline']['policy']}: {every['changed']} conversation(s) change level: "
            f"{every['fixed']} fixed, {every['broken']} broken, {every['sideways']} sideways "
            f"(held out: {held['changed']} change, {held['fixed']} fixed, {held['broken']} broken).",
            f"Candidate minus baseline: {_deltas(every['deltas'])}; held out: {_deltas(held['deltas'])}.",
        ]
        for change in changes["conversations"][:SUMMARY_CHANGES]:
            rules = [f"+{r}" for r in change["rules_new"]] + [f"-{r}" for r in change["rules_gone"]]
            lines.append(
                f"  {change['conversation_id']}{' (held out)' if change['heldout'] else ''}: "
                f"label {_level_route(change['label'], change['label_route'])}, "
                f"{_level_route(change['baseline'], change['baseline_route'])} -> "
                f"{_level_route(change['candidate'], change['candidate_route'])}, {change['direction']}"
                + (f"; {' '.join(rules)}" if rules else "")
            )
        more = len(changes["conversations"]) - SUMMARY_CHANGES
        if more > 0:
            lines.append(f"  ... and {more} more in {JSON_FILE}")
    return "\n".join(lines)


def _deltas(deltas: dict) -> str:
    route = deltas["route_accuracy"]
    return (
        f"level accuracy {deltas['level_accuracy']:+.3f}, rec. F1 {deltas['recommended_f1']:+.3f}, "
        f"route accuracy {'n/a' if route is None else format(route, '+.3f')}"
    )


def _level_route(level: str, route: str | None) -> str:
    """`escalate (supervisor)`, or the level alone where there is no route."""
    return level if route in (None, NO_ROUTE) else f"{level} ({route})"


def _rule_table(rules: list[dict]) -> str:
    return table(
        ["rule", "level", "fired", "label agrees", "label higher", "label lower"],
        [
            [r["rule"], r["level"], str(r["fired"]), str(r["agrees"]), str(r["label_higher"]), str(r["label_lower"])]
            for r in rules
        ],
    )


def _routes_table(section: dict) -> str:
    routes = section["results"]["all"]["routes"]
    names = sorted(set(routes["labelled"]) | set(routes["predicted"]))
    return table(
        ["route", "labelled", "predicted"],
        [[name, str(routes["labelled"].get(name, 0)), str(routes["predicted"].get(name, 0))] for name in names],
    )


def _changes_section(report: dict) -> list[str]:
    changes = report["changes"]
    if changes is None:
        return []
    parts = [
        "<section><h2>Changes against the baseline</h2>",
        table(
            ["part", "changed", "fixed", "broken", "sideways", "level accuracy", "rec. F1", "route accuracy"],
            [
                [
                    part,
                    *(str(changes[part][k]) for k in ("changed", "fixed", "broken", "sideways")),
                    *(
                        "n/a" if changes[part]["deltas"][k] is None else f"{changes[part]['deltas'][k]:+.3f}"
                        for k in ("level_accuracy", "recommended_f1", "route_accuracy")
                    ),
                ]
                for part in BACKTEST_PARTS
            ],
        ),
        "<p class=\"muted\">Fixed: the candidate's level is nearer the label than the baseline's; broken: further "
        "from it; sideways: as far, on the other side. Deltas are candidate minus baseline.</p>",
    ]
    if changes["conversations"]:
        parts.append(
            table(
                [
                    "conversation",
                    "held out",
                    "label",
                    "baseline",
                    "candidate",
                    "change",
                    "rules fired newly",
                    "stopped",
                ],
                [
                    [
                        c["conversation_id"],
                        "yes" if c["heldout"] else "",
                        _level_route(c["label"], c["label_route"]),
                        _level_route(c["baseline"], c["baseline_route"]),
                        _level_route(c["candidate"], c["candidate_route"]),
                        c["direction"],
                        ", ".join(c["rules_new"]),
                        ", ".join(c["rules_gone"]),
                    ]
                    for c in changes["conversations"]
                ],
            )
        )
    parts.append("</section>")
    return parts


def render_html(report: dict) -> str:
    """One self-contained page (inline style and SVG, no scripts or external files)."""
    title = f"Policy backtest: {report['candidate']['policy']}"
    systems = _systems(report)
    overview = table(
        FIGURE_HEADER,
        [_figure_row(part, role, section["results"][part]) for part in BACKTEST_PARTS for role, section in systems],
        ["baseline" if role == "baseline" else "" for _ in BACKTEST_PARTS for role, _ in systems],
    )
    matrices = [
        confusion_matrix(
            section["results"][part]["confusion_matrix"]["rows_truth_cols_predicted"],
            section["results"][part]["confusion_matrix"]["labels"],
            title=f"{role}, {part} ({section['results'][part]['n']})",
        )
        for role, section in systems
        for part in BACKTEST_PARTS
    ]
    rule_sections = [
        f"<h3>{escape(role)} ({escape(section['policy'])}), {escape(part)}</h3>"
        + _rule_table(section["results"][part]["rules"])
        for role, section in systems
        for part in BACKTEST_PARTS
    ]
    baseline = (
        f", baseline <code>{escape(report['baseline']['policy'])}</code>" if report["baseline"] is not None else ""
    )
    return page(
        title,
        [
            f'<p class="muted">candidate <code>{escape(report["candidate"]["policy"])}</code>{baseline}; '
            f"data <code>{escape(report['data'])}</code>, {report['conversations']} conversations, "
            f"{report['heldout']} held out; bundle {escape(report['model']['name'])} "
            f"{escape(report['model']['version'])}</p>",
            "<h2>Summary</h2>",
            overview,
            f'<p class="muted">rec. = recommended (escalate or urgent). {escape(_routes_note(report))}</p>',
            *_changes_section(report),
            "<section><h2>Level confusion</h2>",
            '<p class="muted">Rows: label; columns: predicted; cells shaded by their share of the row.</p>',
            f'<div class="cms">{"".join(matrices)}</div></section>',
            "<section><h2>Rules</h2>",
            '<p class="muted">On how many conversations each rule fired, and whether the label is at the '
            "rule's level, above it or below it.</p>",
            *rule_sections,
            "</section>",
            "<section><h2>Routes (all conversations)</h2>",
            *(f"<h3>{escape(role)}</h3>" + _routes_table(section) for role, section in systems),
            "</section>",
        ],
    )


def write_backtest(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write backtest.json and backtest.html into `out_dir`; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / JSON_FILE, out_dir / HTML_FILE
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path
