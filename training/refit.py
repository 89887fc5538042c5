"""Refit heads on an existing bundle (`convintel train --mode heads --base-bundle PATH`):
train the named tasks' heads on the frozen features of the encoder the bundle serves with
(the packaged encoder with the bundle's adapter merged, at the bundle's window), and write
a complete bundle that keeps everything else of the base as it is: its other heads (weights,
calibration, thresholds, figures and data entries), its adapter (copied, same sha256) and
its training record. Minutes on a CPU, against an hour for a fine-tune."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from nlp.bundle import BundleManifest, ModelBundle, load_bundle, save_bundle
from nlp.encoder import Encoder, packaged_model_version
from nlp.heads import TaskHead
from training.evaluate import load_encoder
from training.features import FeatureCache, encode_sets
from training.head_trainer import HeadTrainingConfig
from training.model_card import card_results, render_model_card
from training.recipes import TaskData
from training.train import (
    encoder_training,
    fit_task_head,
    heads_phrase,
    machine_description,
    ordered_tasks,
    report_heads,
    token_set_names,
)

log = logging.getLogger(__name__)


class RefitError(ValueError):
    """The base bundle and the refit do not fit together; the message says how."""


def refit_bundle(
    base_path: Path,
    recipe: dict[str, TaskData],
    output: Path,
    *,
    name: str,
    version: str,
    config: HeadTrainingConfig,
    cache_dir: Path | None,
    encoder: Encoder | None = None,
    device: str = "cpu",
    recipe_name: str = "custom",
) -> tuple[BundleManifest, dict[str, dict[str, dict]]]:
    """Train a head for each task in `recipe` on the base bundle's encoder and write the
    bundle to `output` (which may be the base bundle's own directory): the refit heads
    replace or join the base's, every other head is kept as it is.

    `encoder`, when given, must be the one the base bundle serves with (same adapter and
    window); by default it is built from the bundle. Raises BundleError for a base that does
    not load, RefitError for an encoder that does not match it.

    Returns the manifest and the refit heads' full metrics: task -> report set -> metrics."""
    started = time.perf_counter()
    base = load_bundle(base_path)
    encoder = encoder or load_encoder(base, device)
    _check_encoder(base, encoder)
    all_sets = {s.name: s for data in recipe.values() for s in (data.train, data.dev, *data.reports)}
    features, tokens = encode_sets(
        FeatureCache(cache_dir, encoder),
        list(all_sets.values()),
        label=f"refit on {base.name}",
        token_sets=token_set_names(recipe, config.token_attention),
    )
    encode_seconds = time.perf_counter() - started

    refit: dict[str, TaskHead] = {}
    for task in ordered_tasks(recipe):
        data = recipe[task]
        refit[task] = fit_task_head(task, data, features, config, tokens)
    full_metrics, refit_data = report_heads(recipe, refit, features, tokens)
    # The base's order first (a refit head keeps its place), new tasks after it.
    heads = {task: refit.get(task, head) for task, head in base.heads.items()}
    heads |= {task: head for task, head in refit.items() if task not in heads}
    task_data = {
        task: refit_data[task]
        if task in refit
        else {"train": base.manifest.tasks[task].training_data, "dev": base.manifest.tasks[task].dev_data}
        for task in heads
    }
    kept = [task for task in heads if task not in refit]
    training = {
        "recipe": recipe_name,
        "mode": f"heads refit on {base.name} {base.version}",
        "refit_tasks": list(refit),
        "kept_tasks": kept,
        "base": {"name": base.name, "version": base.version, "created": base.manifest.created},
        "base_training": base.manifest.training,
        "encoder_training": encoder_training(base.manifest.training),
        "config": config.to_dict(),
        "seconds": round(time.perf_counter() - started, 1),
        "encode_seconds": round(encode_seconds, 1),
        "machine": machine_description(),
    }
    description = refit_description(base, list(refit))
    base_card = base.path / "README.md"
    kept_results = card_results(base_card.read_text(encoding="utf-8"), kept) if base_card.is_file() else []
    card = render_model_card(
        name, version, description, heads, task_data, full_metrics, training, kept_results=kept_results
    )
    manifest = save_bundle(
        output,
        name=name,
        version=version,
        encoder=base.manifest.encoder,
        heads=heads,
        task_data=task_data,
        training=training,
        description=description,
        model_card=card,
        adapter=base.adapter,
    )
    return manifest, full_metrics


def _check_encoder(base: ModelBundle, encoder: Encoder) -> None:
    """Heads refit on any other encoder would not read the features the bundle serves."""
    window = base.manifest.encoder.max_seq_length
    if encoder.max_seq_length != window:
        raise RefitError(f"the encoder reads {encoder.max_seq_length} word pieces; {base.path} serves with {window}")
    expected = base.adapter.manifest.sha256 if base.adapter is not None else None
    if getattr(encoder, "adapter_id", None) != expected:
        raise RefitError(f"the encoder does not carry the adapter of {base.path} (sha256 {expected})")
    widths = {head.spec.input_dim for head in base.heads.values()}
    if widths != {encoder.feature_dim}:
        raise RefitError(f"{base.path}'s heads read {sorted(widths)} features; the encoder gives {encoder.feature_dim}")
    installed = packaged_model_version()
    if installed != base.manifest.encoder.package_version:
        # The kept heads were trained on the recorded version's features; say so, do not refuse.
        log.warning(
            "%s was trained with encoder package %s; %s is installed",
            base.path,
            base.manifest.encoder.package_version,
            installed,
        )


def refit_description(base: ModelBundle, tasks: list[str]) -> str:
    """The base's description, plus the heads this refit adds (refitting a head the base
    has already changes nothing in it)."""
    added = [task for task in tasks if task not in base.heads]
    if not added:
        return base.manifest.description
    phrase = heads_phrase(added)
    return (
        f"{base.manifest.description.rstrip('.')}; {phrase[0].lower()}{phrase[1:]} trained on that encoder's features."
    )
