"""What the analyzer is built from, as one object: the bundle, the encoder, the text
inspection and the policy and topic files. The service fills it from its settings
(`Settings.analyzer_config()`); library users build it directly. Light to import: no
torch or spaCy here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nlp.backends import EncoderConfig

SpacyBlas = Literal["numpy", "blis"]
"""What spaCy's layers multiply with: numpy's BLAS (every core) or BLIS (thinc's default, one thread)."""


@dataclass(frozen=True)
class InspectionConfig:
    """The spaCy text inspection: risk cues, tag categories and redaction of personal data."""

    detect_cues: bool = True
    cues_file: Path | None = None
    """Risk-cue patterns YAML; None: the shipped `nlp/default_cues.yaml`."""
    redact_pii: bool = True
    match_categories: bool = True
    categories_file: Path | None = None
    """Tag categories YAML; None: the shipped `nlp/default_categories.yaml`."""
    screen_tokens: bool = True
    """False runs every component on every message (the reference path, and benchmarks' baseline)."""
    spacy_blas: SpacyBlas = "blis"
    """What spaCy's layers multiply with: 'numpy' (numpy's BLAS, every core) or 'blis'
    (thinc's default, one thread). Same annotations (nlp/spacy_pipeline.py `load_package`)."""

    @property
    def enabled(self) -> bool:
        """Whether any component is on (otherwise no spaCy pipeline is loaded)."""
        return self.detect_cues or self.redact_pii or self.match_categories


@dataclass(frozen=True)
class AnalyzerConfig:
    """Everything `Analyzer.load` reads."""

    bundle_path: Path
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    inspection: InspectionConfig = field(default_factory=InspectionConfig)
    policy_file: Path | None = None
    """Escalation policy YAML; None: the shipped `nlp/default_policy.yaml`."""
    topic_model: Path | None = None
    """A topic model folder (`convintel topics fit`); None: analyses carry no topics."""
    topic_min_similarity: float | None = None
    """Live topic assignment floor (cosine); None: the topic model's own threshold."""
