"""Risk-cue patterns as data: the shipped YAML validates, a bad copy fails with one line
naming the bad key's path, an edited copy changes what is detected, and
`CONVINTEL_CUES_FILE` reaches the detector through the settings and `build_inspector`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from spacy.matcher import Matcher

from nlp.cue_patterns import DEFAULT_CUES_FILE, CueConfig, CueError, load_cues
from nlp.cues import CueDetector, _anchor, _screening
from nlp.inspection import build_inspector
from nlp.schemas import Role
from nlp.spacy_pipeline import load_pipeline
from nlp.vocabulary import CUE_FAMILIES
from service.runtime import StartupError, check_startup
from service.settings import Settings

JUMPING_SHIP = [{"LOWER": {"IN": ["jump", "jumping"]}}, {"LOWER": "ship"}]


def shipped() -> dict:
    return yaml.safe_load(DEFAULT_CUES_FILE.read_text(encoding="utf-8"))


def write(tmp_path: Path, raw: dict | str) -> Path:
    path = tmp_path / "cues.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def nlp():
    return load_pipeline()


def test_shipped_file_validates_with_every_family_and_compiles(nlp):
    config = load_cues()
    assert load_cues(DEFAULT_CUES_FILE) == config
    assert list(config.families) == list(CUE_FAMILIES)
    for family, cues in config.families.items():
        assert cues.patterns or cues.phrases or cues.regexes, family
        matcher = Matcher(nlp.vocab, validate=True)
        for pattern in cues.patterns + cues.negated_patterns:
            matcher.add(family, [pattern])


@pytest.mark.parametrize(
    "edit, where",
    [
        (lambda raw: raw.update(familes=raw.pop("families")), "familes"),
        (lambda raw: raw["families"]["legal"].update(phrasez=["lawyer"]), "families.legal.phrasez"),
        (lambda raw: raw["families"].update(lawsuit={"phrases": ["lawyer"]}), "families.lawsuit"),
        (
            lambda raw: raw["families"]["cancellation"]["patterns"].insert(0, [{"LOWER": {"IN": "cancel"}}]),
            "families.cancellation.patterns.0: Value error, not a spaCy token pattern: token 0: LOWER.IN",
        ),
        (
            lambda raw: raw["families"]["safety"]["negated_patterns"].append([{"LOWR": "gas"}]),
            "families.safety.negated_patterns.2: Value error, not a spaCy token pattern: token 0: LOWR",
        ),
        (lambda raw: raw["families"]["legal"]["patterns"].append([]), "families.legal.patterns.6"),
        (lambda raw: raw["families"]["security"]["regexes"].insert(0, "(unclosed"), "families.security.regexes.0"),
        (
            lambda raw: raw["families"]["safety"]["not_followed_by"].update(Smoke=["test"]),
            "families.safety.not_followed_by.Smoke",
        ),
        (
            lambda raw: raw["families"]["human_request"]["bare_clause"].update(words=[]),
            "families.human_request.bare_clause.words",
        ),
    ],
)
def test_a_bad_file_fails_with_one_line_naming_the_path(tmp_path, edit, where):
    raw = shipped()
    edit(raw)
    path = write(tmp_path, raw)
    with pytest.raises(CueError) as caught:
        load_cues(path)
    message = str(caught.value)
    assert message.startswith(f"cues file {path}: ") and where in message and "\n" not in message


def test_unknown_family_names_the_families_from_the_vocabulary(tmp_path):
    with pytest.raises(CueError, match=r"families\.lawsuit\.\[key\]: Input should be 'cancellation', 'legal'"):
        load_cues(write(tmp_path, {"families": {"lawsuit": {"phrases": ["lawyer"]}}}))


def test_missing_and_non_yaml_files_are_cue_errors(tmp_path):
    with pytest.raises(CueError, match="cannot read it"):
        load_cues(tmp_path / "absent.yaml")
    with pytest.raises(CueError, match="not valid YAML"):
        load_cues(write(tmp_path, "families: [unclosed"))
    with pytest.raises(CueError, match="families: Field required"):
        load_cues(write(tmp_path, "version: 1\n"))


def test_a_long_regex_may_be_written_in_pieces(tmp_path):
    config = load_cues(write(tmp_path, {"families": {"legal": {"regexes": [["\\bsmall ", "claims\\b"]]}}}))
    assert config.families["legal"].regexes == ["\\bsmall claims\\b"]


def test_an_added_pattern_in_a_copy_changes_detection(tmp_path, nlp):
    text = "Honestly I'm jumping ship."
    assert CueDetector(nlp).detect(text) == []
    raw = shipped()
    raw["families"]["cancellation"]["patterns"].append(JUMPING_SHIP)
    detector = CueDetector(nlp, load_cues(write(tmp_path, raw)))
    assert [(c.family, c.text) for c in detector.detect(text)] == [("cancellation", "jumping ship")]
    assert detector.screen(nlp.make_doc(text))
    assert detector.detect("I'm not jumping ship, relax.") == []  # the parse still filters it
    assert detector.detect("I'm cancelling my account") == CueDetector(nlp).detect("I'm cancelling my account")


def test_negated_patterns_keep_their_negation(nlp):
    text = "I am never coming back."
    pattern = [{"LOWER": "never"}, {"LOWER": "coming"}, {"LOWER": "back"}]
    plain = CueConfig.model_validate({"families": {"cancellation": {"patterns": [pattern]}}})
    negated = CueConfig.model_validate({"families": {"cancellation": {"negated_patterns": [pattern]}}})
    assert CueDetector(nlp, plain).detect(text) == []
    assert [c.text for c in CueDetector(nlp, negated).detect(text)] == ["never coming back"]


def test_a_copy_with_fewer_families_detects_only_those(nlp):
    config = CueConfig.model_validate({"families": {"legal": {"phrases": ["lawyer"]}}})
    cues = CueDetector(nlp, config).detect("I'm cancelling my account and calling my lawyer.")
    assert [(c.family, c.text) for c in cues] == [("legal", "lawyer")]


def test_screening_drops_only_what_the_parse_sets():
    assert _screening([{"LOWER": "to"}, {"POS": "PROPN", "OP": "?"}, {"IS_ALPHA": True, "POS": {"IN": ["NOUN"]}}]) == [
        {"LOWER": "to"},
        {"OP": "?"},
        {"IS_ALPHA": True},
    ]
    # A negated token with a parse condition would match fewer tokens without it: any token instead.
    assert _screening([{"LOWER": "a"}, {"POS": "VERB", "OP": "!"}, {"LOWER": "b", "OP": "!"}]) == [
        {"LOWER": "a"},
        {},
        {"LOWER": "b", "OP": "!"},
    ]


def test_anchor_is_a_required_word_list():
    assert _anchor([{"LOWER": "i"}, {"LOWER": {"IN": ["cancel", "quit"]}}]) == {"cancel", "quit"}
    assert _anchor([{"LOWER": "cancel", "OP": "?"}, {"LOWER": "it", "OP": "!"}, {"POS": "VERB"}]) is None
    assert _anchor([{"LOWER": "the"}, {"LOWER": "cancel", "OP": "+"}]) == {"cancel"}


def test_the_setting_reaches_the_detector(tmp_path, monkeypatch):
    raw = shipped()
    raw["families"]["cancellation"]["patterns"].append(JUMPING_SHIP)
    path = write(tmp_path, raw)
    monkeypatch.setenv("CONVINTEL_CUES_FILE", str(path))
    settings = Settings(_env_file=None, redact_pii=False, match_categories=False)
    inspection = settings.analyzer_config().inspection
    assert settings.cues_file == path and inspection.cues_file == path
    inspector = build_inspector(inspection)
    assert inspector is not None and inspector.cues is not None and inspector.cues.config == load_cues(path)
    [result] = inspector.inspect(["Honestly I'm jumping ship."], [Role.customer])
    assert [(c.family, c.quote) for c in result.cues] == [("cancellation", "jumping ship")]


def test_check_startup_rejects_a_bad_cues_file(tmp_path):
    path = write(tmp_path, {"families": {"legal": {"phrasez": ["lawyer"]}}})
    with pytest.raises(StartupError, match=r"cues file .*families\.legal\.phrasez"):
        check_startup(Settings(_env_file=None, cues_file=path))
