"""Bundle loading safety: a bundle name cannot reach outside the models directory, and a
bundle loads from JSON and safetensors only (never pickle)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nlp.bundle import BundleError, load_bundle, resolve_bundle_name, resolve_bundle_path
from service.settings import Settings
from tests.conftest import BUNDLE


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(BUNDLE, root / "good")
    return root


@pytest.mark.parametrize(
    "name",
    [
        "../models",
        "..",
        "./good",
        "good/../../etc",
        "/etc",
        "/",
        "~",
        "~root",
        "good\n",
        "good\x00",
        "good/",
        "..\\good",
        "C:\\bundle",
        "%2e%2e",
        " good",
    ],
)
def test_names_with_paths_or_odd_characters_are_refused(models_dir: Path, name: str):
    with pytest.raises(BundleError):
        resolve_bundle_name(name, models_dir)


def test_a_plain_name_resolves_inside_the_models_directory(models_dir: Path):
    assert resolve_bundle_name("good", models_dir) == (models_dir / "good").resolve()
    assert load_bundle(resolve_bundle_name("good", models_dir)).name == "convintel-base"


def test_a_symlink_out_of_the_models_directory_is_refused(models_dir: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    shutil.copytree(BUNDLE, outside)
    os.symlink(outside, models_dir / "escape")
    with pytest.raises(BundleError, match="outside the models directory"):
        resolve_bundle_name("escape", models_dir)
    # The same through the settings: a bundle *name* is confined as well.
    settings = Settings(_env_file=None, models_dir=models_dir, model="escape")
    with pytest.raises(BundleError, match="outside the models directory"):
        _ = settings.model_path


def test_a_symlink_to_a_sibling_inside_the_models_directory_is_allowed(models_dir: Path):
    os.symlink(models_dir / "good", models_dir / "alias")
    assert resolve_bundle_name("alias", models_dir) == (models_dir / "good").resolve()


def test_explicit_paths_come_only_from_settings(models_dir: Path, tmp_path: Path):
    # An operator may point CONVINTEL_MODEL at a directory anywhere...
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(BUNDLE, elsewhere)
    assert Settings(_env_file=None, models_dir=models_dir, model=str(elsewhere)).model_path == elsewhere.resolve()
    assert resolve_bundle_path(str(elsewhere), models_dir) == elsewhere.resolve()
    # ...but the same string as a bundle *name* (what a request may carry) is refused.
    with pytest.raises(BundleError, match="not a valid model bundle name"):
        resolve_bundle_name(str(elsewhere), models_dir)


def test_a_bundle_with_pickled_weights_only_does_not_load(models_dir: Path):
    bundle = models_dir / "good"
    weights = bundle / "heads.safetensors"
    # A pickle beside the manifest is never read: without safetensors the bundle is refused.
    (bundle / "heads.pt").write_bytes(b"\x80\x04\x95" + weights.read_bytes()[:64])
    weights.unlink()
    with pytest.raises(BundleError, match="heads.safetensors is missing"):
        load_bundle(bundle)


def test_weights_that_are_not_safetensors_are_refused(models_dir: Path):
    import pickle

    weights = models_dir / "good" / "heads.safetensors"
    weights.write_bytes(pickle.dumps({"sentiment.net.0.weight": [1.0]}))
    with pytest.raises(BundleError, match="not a readable safetensors file"):
        load_bundle(models_dir / "good")
