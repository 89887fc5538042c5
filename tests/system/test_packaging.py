"""Packaging: what the wheel holds, the one version, defaults that never point into the
installed package, optional extras that fail with a clear message, and the Dockerfile's
assumptions. tests/system/test_install.py (slow) installs a real wheel and runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nlp
from nlp import paths
from nlp.bundle import BundleError
from nlp.extras import MissingExtra, require
from service.cli import app
from service.settings import Settings
from tests.conftest import FIXTURES, ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
runner = CliRunner()


def test_version_has_one_source_and_the_cli_prints_it():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "nlp.__version__"}
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"convintel {nlp.__version__}\n"


def test_every_python_package_is_listed_and_models_ship_as_package_data():
    """The package list is explicit (models/ maps into nlp/), so a new subpackage must be added."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("nlp", "service", "training")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == on_disk | {"nlp.bundled_models"}
    assert setuptools["package-dir"] == {"nlp.bundled_models": "models"}
    assert paths.BUNDLED_MODELS == "bundled_models"
    data = setuptools["package-data"]
    assert "*.yaml" in data["nlp"]  # default policy, categories and cues
    assert "ui/static/*" in data["service"]  # the /ui page's files (service/api/ui_routes.py)
    assert all(pattern.startswith("convintel-base/") for pattern in data["nlp.bundled_models"])


def test_core_dependencies_leave_training_and_benchmarks_to_extras():
    core = {re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0].lower() for dep in PYPROJECT["project"]["dependencies"]}
    extras = PYPROJECT["project"]["optional-dependencies"]
    for package, extra in {
        "peft": "train",
        "vadersentiment": "train",
        "onnx": "onnx",
        "onnxruntime": "onnx",
        "ray": "ray",
        "umap-learn": "topics-umap",
        "bertopic": "bench",
        "psycopg": "postgres",
    }.items():
        assert package not in core, f"{package} belongs in the {extra!r} extra"
        assert any(dep.lower().startswith(package) for dep in extras[extra])
    assert "torch==2.13.0" in PYPROJECT["project"]["dependencies"]  # exact: a looser pin pulls CUDA builds
    assert "convintel[train,onnx,ray,postgres]" in extras["test"]


def test_the_service_runs_without_any_extra(tmp_path: Path):
    """Serving and `convintel analyze` import none of the extras' packages: they are made
    unimportable in a fresh interpreter, which then analyses a transcript and builds the app."""
    # None in sys.modules: `import x` fails and importlib.util.find_spec("x") says absent, as
    # for a package that is not installed. (Not accelerate, which comes with peft: transformers
    # imports it when its metadata says it is installed, which a core install's does not.)
    blocked = ["peft", "vaderSentiment", "onnx", "onnxruntime", "ray", "umap", "bertopic", "psycopg"]
    script = f"""
import sys
sys.modules.update(dict.fromkeys({blocked!r}))
sys.argv = ["convintel", "analyze", {str(FIXTURES / "transcripts" / "double_charge.json")!r}, "--no-pretty"]
from service.api.app import create_app
from service.settings import Settings
create_app(Settings(_env_file=None, db_path={str(tmp_path / "db.sqlite3")!r}))
from service.cli import app
app()
"""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONVINTEL_")},
        "PYTHONPATH": str(ROOT),
        "CONVINTEL_TORCH_THREADS": "1",
        "CONVINTEL_DETECT_CUES": "false",
        "CONVINTEL_MATCH_CATEGORIES": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["conversation_id"] == "demo-1042"
    assert not (tmp_path / "var").exists(), "analyze writes no state"


def test_state_and_cache_defaults_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    fields = Settings.model_fields
    assert fields["db_path"].default == Path("var/conversations.sqlite3")
    assert fields["encoder_cache_dir"].default == Path(".cache/encoders")
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    # Made absolute when read, so worker processes and Ray actors use the same files.
    assert settings.db_path == tmp_path / "var" / "conversations.sqlite3"
    assert settings.encoder_cache_dir == tmp_path / ".cache" / "encoders"
    assert Settings.model_validate_json(settings.model_dump_json()).db_path == settings.db_path
    assert Settings(_env_file=None, db_path="~/state.db").db_path == Path.home() / "state.db"
    assert settings.models_dir is None  # the shipped bundles
    assert settings.model_path == paths.shipped_models_dir() / "convintel-base"


def test_shipped_bundle_comes_from_the_checkout_here_and_from_the_package_when_installed(tmp_path, monkeypatch):
    assert paths.source_root() == ROOT
    assert paths.shipped_models_dir() == ROOT / "models"
    # Installed: the models folder sits inside the nlp package, and no checkout is around it.
    fake_nlp = tmp_path / "site-packages" / "nlp"
    (fake_nlp / paths.BUNDLED_MODELS / "convintel-base").mkdir(parents=True)
    monkeypatch.setattr(paths, "__file__", str(fake_nlp / "paths.py"))
    assert paths.source_root() is None
    assert paths.shipped_models_dir() == fake_nlp / paths.BUNDLED_MODELS


def test_no_bundle_found_names_the_settings(monkeypatch):
    import nlp.bundle
    from service.settings import get_settings

    monkeypatch.setattr(nlp.bundle, "shipped_models_dir", lambda: None)
    with pytest.raises(BundleError, match=r"no models directory is given.*CONVINTEL_MODELS_DIR"):
        _ = Settings(_env_file=None).model_path
    for name in ("CONVINTEL_MODEL", "CONVINTEL_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["check"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "configuration check failed: no model bundle named 'convintel-base'" in result.output
    assert "CONVINTEL_MODELS_DIR" in result.output


def test_project_data_is_refused_clearly_when_installed(monkeypatch):
    """data/ is not in the wheel: code that reads it says so instead of reading site-packages."""
    import training.recipes
    from service.batch.synthetic import synthetic_transcripts
    from training.datasets import DataError

    monkeypatch.setattr(paths, "source_root", lambda: None)
    with pytest.raises(paths.ProjectDataUnavailable, match="source checkout"):
        next(synthetic_transcripts(1))
    monkeypatch.setattr(training.recipes, "OWN_DATA_FILES", [])
    with pytest.raises(DataError, match="--recipe none"):
        training.recipes.default_recipe(Path("unused"))


def test_synthetic_archives_can_take_their_data_folder(tmp_path):
    from service.batch.synthetic import synthetic_transcripts

    body = next(synthetic_transcripts(1, data_dir=ROOT / "data"))
    assert body["conversation_id"] == "conv-0000000"
    with pytest.raises(FileNotFoundError):
        next(synthetic_transcripts(1, data_dir=tmp_path))


def test_a_missing_extra_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # None in sys.modules: the import fails
    with pytest.raises(MissingExtra, match=r"LoRA fine-tuning needs peft .*pip install 'convintel\[train\]'"):
        require("peft", "train", "LoRA fine-tuning")


def test_onnx_backend_without_the_extra_fails_start_up_naming_it(monkeypatch, tmp_path):
    from nlp.backends import EncoderConfig, load_encoder, prepare_encoder
    from nlp.encoder import EncoderLoadError

    monkeypatch.setitem(sys.modules, "nlp.onnx_encoder", None)
    config = EncoderConfig(backend="onnx", cache_dir=tmp_path)
    for call in (load_encoder, prepare_encoder):
        with pytest.raises(EncoderLoadError, match=r"pip install 'convintel\[onnx\]'"):
            call(config)


def test_ray_engine_without_the_extra_is_an_engine_error(monkeypatch):
    from service.batch.engines import EngineError, RayEngine

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(EngineError, match=r"pip install 'convintel\[ray\]'"):
        RayEngine(Settings(_env_file=None))


def _stages(dockerfile: str) -> dict[str, list[str]]:
    """Instructions per build stage (continuation lines joined), by stage name."""
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        elif current is not None:
            current.append(line)
    return stages


def test_dockerfile_builds_a_wheel_and_runs_it_as_a_user_who_owns_its_state_and_cache():
    stages = _stages(DOCKERFILE)
    assert list(stages) == ["builder", "runtime"]
    builder, runtime = stages["builder"], stages["runtime"]
    pin = next(dep for dep in PYPROJECT["project"]["dependencies"] if dep.startswith("torch"))
    assert any("download.pytorch.org/whl/cpu" in line and pin in line for line in builder)
    assert any(line.startswith("RUN pip wheel") for line in builder)
    assert any(line.startswith("COPY --from=builder /opt/convintel /opt/convintel") for line in runtime)
    assert not any(line.startswith("COPY") and "--from" not in line for line in runtime), "no sources in the runtime"

    env = dict(re.findall(r"(CONVINTEL_[A-Z_]+)=(\S+)", " ".join(line for line in runtime if line.startswith("ENV"))))
    writable = env["CONVINTEL_DB_PATH"].rsplit("/", 1)[0], env["CONVINTEL_ENCODER_CACHE_DIR"]
    user_at = next(i for i, line in enumerate(runtime) if line.startswith("USER "))
    assert runtime[user_at] == "USER convintel"
    chown = next(line for line in runtime[:user_at] if "chown" in line)
    assert all(any(path.startswith(owned) for owned in chown.split()[-2:]) for path in writable), chown
    # The ONNX graph is baked by `convintel check` as that user, with the backend from the build arg.
    check_at = runtime.index("RUN convintel check")
    assert user_at < check_at
    assert "ARG CONVINTEL_ENCODER_BACKEND=torch" in runtime[:check_at]
    assert "ENV CONVINTEL_ENCODER_BACKEND=${CONVINTEL_ENCODER_BACKEND}" in runtime[:check_at]
    assert runtime[-1] == 'CMD ["convintel", "serve"]'
    assert env.get("CONVINTEL_MODELS_DIR") is None, "the bundle comes with the wheel"
