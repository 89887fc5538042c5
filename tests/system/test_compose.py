"""docker-compose.yml and the monitoring files it mounts (deploy/): the services and their
wiring, the Prometheus targets, Grafana's provisioning, and that every series the shipped
dashboard queries is one a real app serves at /metrics. No Docker engine is needed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, load_fixture

COMPOSE_FILE = ROOT / "docker-compose.yml"
DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "dashboards" / "convintel.json"
# Series Prometheus writes itself for each target, not served by the app.
SCRAPE_SERIES = frozenset({"up"})
# Labels Prometheus attaches to every scraped series (the target's).
TARGET_LABELS = frozenset({"instance", "job"})


# --- a small PromQL reader: which series and labels an expression uses ----------------

_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
# A name not inside a number (1e3) or a duration (5m), and not called like a function.
_IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
)


@dataclass(frozen=True)
class Query:
    """What one PromQL expression reads: series names and the labels it filters or groups by."""

    series: frozenset[str]
    labels: frozenset[str]
    quantile_of_buckets: bool  # histogram_quantile over `_bucket` series, grouped by `le`


def read_promql(expr: str) -> Query:
    """The series and labels in `expr` (strings, ranges and Grafana variables ignored)."""
    text = _RANGE.sub(" ", _STRING.sub('""', expr))
    labels: set[str] = set()
    for _, names in _LABEL_LIST.findall(text):
        labels.update(name.strip() for name in names.split(",") if name.strip())
    text = _LABEL_LIST.sub(" ", text)
    for matchers in _MATCHERS.findall(text):
        labels.update(_MATCHER_LABEL.findall(matchers))
    text = _MATCHERS.sub(" ", text)
    series = frozenset(name for name in _IDENTIFIER.findall(text) if name not in _KEYWORDS)
    quantile = "histogram_quantile" in expr
    return Query(
        series,
        frozenset(labels),
        quantile and "le" in labels and all(name.endswith("_bucket") for name in series),
    )


@pytest.mark.parametrize(
    "expr,series,labels",
    [
        (
            'histogram_quantile(0.95, sum by (le, route) (rate(a_seconds_bucket{instance=~"$x",status="5.."}[5m])))',
            {"a_seconds_bucket"},
            {"le", "route", "instance", "status"},
        ),
        ("sum(rate(a_sum[$__rate_interval])) / sum(rate(a_count[1m] offset 1h)) * 1e3", {"a_sum", "a_count"}, set()),
        ('max by (name) (info{q="} by (nope)"}) or on (job) up', {"info", "up"}, {"name", "q", "job"}),
    ],
)
def test_read_promql_finds_series_and_labels(expr, series, labels):
    query = read_promql(expr)
    assert query.series == series and query.labels == labels


# --- files ------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))


def api_services(compose: dict) -> dict[str, dict]:
    """The services built from the repository's Dockerfile."""
    return {
        name: service
        for name, service in compose["services"].items()
        if (ROOT / service.get("build", {}).get("context", "/nonexistent") / "Dockerfile").resolve()
        == (ROOT / "Dockerfile").resolve()
    }


def mounts(service: dict) -> dict[str, Path]:
    """A service's bind mounts of repository files: container path -> host path."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = (COMPOSE_FILE.parent / source).resolve()
    return found


def image_port() -> int:
    match = re.search(r"^EXPOSE (\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile exposes the API's port"
    return int(match.group(1))


def all_targets(dashboard: dict) -> list[dict]:
    return [target for panel in dashboard["panels"] for target in panel.get("targets", [])]


# --- compose wiring ---------------------------------------------------------------------


def test_two_api_replicas_share_postgres(compose: dict):
    apis = api_services(compose)
    assert len(apis) == 2
    postgres = compose["services"]["postgres"]
    database = postgres["environment"]
    for name, service in apis.items():
        url = service["environment"]["CONVINTEL_DATABASE_URL"]
        match = re.fullmatch(r"postgresql\+psycopg://([^:]+):([^@]+)@([^:/]+):(\d+)/(\w+)", url)
        assert match, f"{name}: {url}"
        user, password, host, port, db = match.groups()
        assert (host, port) == ("postgres", "5432")
        assert (user, password, db) == (
            database["POSTGRES_USER"],
            database["POSTGRES_PASSWORD"],
            database["POSTGRES_DB"],
        )
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Each replica published on its own host port.
    host_ports = [port.split(":")[0] for service in apis.values() for port in service["ports"]]
    assert len(set(host_ports)) == 2


def test_postgres_keeps_its_data_in_a_volume_and_has_a_healthcheck(compose: dict):
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    named = {volume.split(":")[0]: volume.split(":")[1] for volume in postgres["volumes"]}
    assert named.get("postgres-data") == "/var/lib/postgresql/data" and "postgres-data" in compose["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_prometheus_scrapes_every_replica(compose: dict):
    config = load_yaml(mounts(compose["services"]["prometheus"])["/etc/prometheus/prometheus.yml"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    convintel = jobs["convintel"]
    assert convintel.get("metrics_path", "/metrics") == "/metrics"
    targets = {target for group in convintel["static_configs"] for target in group["targets"]}
    assert targets == {f"{name}:{image_port()}" for name in api_services(compose)}


def test_grafana_is_provisioned_with_the_dashboard(compose: dict, dashboard: dict):
    grafana = compose["services"]["grafana"]
    mounted = mounts(grafana)
    provisioning = mounted["/etc/grafana/provisioning"]
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == f"http://prometheus:{compose['services']['prometheus']['ports'][0].split(':')[1]}"
    (provider,) = load_yaml(provisioning / "dashboards" / "convintel.yml")["providers"]
    dashboards_dir = mounted[provider["options"]["path"]]
    assert DASHBOARD_FILE.parent == dashboards_dir and DASHBOARD_FILE.exists()
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].endswith("/" + DASHBOARD_FILE.name)
    # Every query goes to the provisioned data source.
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel}
    uids |= {target["datasource"]["uid"] for target in all_targets(dashboard)}
    assert uids == {datasource["uid"]}


def test_dashboard_is_well_formed(dashboard: dict):
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and all(target["expr"].strip() for target in panel["targets"]), panel["title"]
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for shown in ("request rate", "latency percentiles", "escalations by level", "queue depth", "error rate"):
        assert shown in titles


# --- the dashboard against a real /metrics -----------------------------------------------


def served_series(client: TestClient) -> dict[str, tuple[str, set[str]]]:
    """Every series name /metrics can carry -> (its family's type, the labels seen on it)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    series: dict[str, tuple[str, set[str]]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for suffix in suffixes.get(family.type, ("",)):
            series[family.name + suffix] = (family.type, set())
        for sample in family.samples:
            series.setdefault(sample.name, (family.type, set()))[1].update(sample.labels)
    return series


def test_every_series_the_dashboard_queries_is_served(client: TestClient, dashboard: dict):
    # Traffic so that labelled series have samples: an escalating transcript, a level change
    # on the message path, a 404 and a deletion.
    assert client.post("/v1/analyze", json=load_fixture("double_charge.json")).status_code == 200
    for i, text in enumerate(["Hello, a quick question.", "Third time I write. I will call my lawyer today!"]):
        message = {"role": "customer", "text": text, "id": f"m{i}"}
        assert client.post("/v1/conversations/dash-1/messages", json=message).status_code == 200
    assert client.get("/v1/conversations/unknown").status_code == 404
    assert client.delete("/v1/conversations/dash-1").status_code in (200, 204)
    series = served_series(client)

    checked_labels = set()
    for target in all_targets(dashboard):
        query = read_promql(target["expr"])
        assert query.series, target["expr"]
        missing = query.series - series.keys() - SCRAPE_SERIES
        assert not missing, f"{target['expr']} queries series /metrics does not serve: {sorted(missing)}"
        if "histogram_quantile" in target["expr"]:
            assert query.quantile_of_buckets, f"{target['expr']}: quantiles need `_bucket` series summed by le"
            assert all(series[name][0] == "histogram" for name in query.series)
        # Labels are checked where the app has served samples of every series used.
        seen = [series[name][1] for name in query.series - SCRAPE_SERIES]
        if all(seen):
            unknown = query.labels - set().union(*seen) - TARGET_LABELS
            assert not unknown, f"{target['expr']} uses labels its series lack: {sorted(unknown)}"
            checked_labels |= query.labels
    # The labelled panels' labels were checked, not skipped for want of samples.
    assert {"route", "status", "method", "level", "path", "reason", "le"} <= checked_labels
