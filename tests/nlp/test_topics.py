"""Topic discovery and live assignment, on the planted-topic fixtures (four support
topics written for these tests, 30 messages each, plus a fifth (app crashes) for refits)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from nlp.topics import TopicFitConfig, TopicModelError, fit_topics, load_topic_model
from nlp.topics.clustering import merge_topics, refine_topics
from nlp.topics.config import sizes_for_corpus
from nlp.topics.matching import match_topics
from tests.conftest import FIXTURES

PLANTED = FIXTURES / "topics" / "planted.jsonl"
APP_CRASH = FIXTURES / "topics" / "app_crash.jsonl"
# Small archives: 'eom' picks the broad topics; the default 'leaf' suits large ones.
SMALL = TopicFitConfig(min_cluster_size=10, cluster_selection="eom")
EXPECTED_TERMS = {"password": "password", "refund": "refund", "delivery": "parcel", "subscription": "subscription"}


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def planted(analyzer):
    rows = read_rows(PLANTED)
    texts = [r["text"] for r in rows]
    return texts, [r["planted"] for r in rows], analyzer.encode(texts).embeddings


@pytest.fixture(scope="module")
def fitted(planted):
    texts, _, embeddings = planted
    return fit_topics(texts, embeddings, SMALL, source="planted.jsonl")


def topic_of_planted(fitted, truth: list[str], name: str) -> int:
    """The topic index most of a planted topic's messages went to."""
    members = fitted.labels[[t == name for t in truth]]
    return int(np.bincount(members[members >= 0]).argmax())


def test_fit_finds_the_planted_topics(planted, fitted):
    _, truth, _ = planted
    assert len(fitted.model.topics) == 4
    assert normalized_mutual_info_score(truth, fitted.labels) > 0.9
    assert fitted.unassigned_share <= 0.05
    for name, term in EXPECTED_TERMS.items():
        topic = fitted.model.topics[topic_of_planted(fitted, truth, name)]
        assert term in topic.keywords[:5], (name, topic.keywords)
        assert topic.size >= 27 and len(topic.examples) == 3
        assert all(len(example) <= 200 for example in topic.examples)
    assert len({t.name for t in fitted.model.topics}) == 4


def test_saved_model_loads_and_assigns_new_messages(analyzer, fitted, planted, tmp_path):
    _, truth, _ = planted
    fitted.model.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["manifest.json", "topics.safetensors"]
    model = load_topic_model(tmp_path / "model")
    assert [t.model_dump() for t in model.topics] == [t.model_dump() for t in fitted.model.topics]
    new = {
        "password": "I typed my password wrong and now my login is blocked",
        "refund": "Still waiting for the refund on the boots I sent back",
        "delivery": "My parcel hasn't been delivered and the tracking is stuck",
        "subscription": "Cancel my subscription before it renews next month",
    }
    assignment = model.assign(
        analyzer.encode(list(new.values()) + ["What a lovely sunny afternoon at the beach"]).embeddings
    )
    for row, name in enumerate(new):
        assert assignment.topic[row] == topic_of_planted(fitted, truth, name), name
        assert 0.5 < assignment.confidence[row] <= 1.0
    assert assignment.topic[-1] == -1 and assignment.confidence[-1] == 0.0


def test_refit_keeps_ids_of_unchanged_topics(analyzer, planted, fitted):
    texts, truth, embeddings = planted
    keep = np.array([t != "subscription" for t in truth])
    crash = [r["text"] for r in read_rows(APP_CRASH)]
    newer_texts = [t for t, k in zip(texts, keep) if k] + crash
    newer_embeddings = np.concatenate([embeddings[keep], analyzer.encode(crash).embeddings])
    order = np.random.default_rng(0).permutation(len(newer_texts))  # a refit sees documents in another order
    refit = fit_topics([newer_texts[i] for i in order], newer_embeddings[order], SMALL, previous=fitted.model)

    old_ids = {name: fitted.model.topics[topic_of_planted(fitted, truth, name)].id for name in EXPECTED_TERMS}
    new_truth = [t for t, k in zip(truth, keep) if k] + ["app_crash"] * len(crash)
    new_truth = [new_truth[i] for i in order]
    new_ids = {
        name: refit.model.topics[topic_of_planted(refit, new_truth, name)].id
        for name in ("password", "refund", "delivery", "app_crash")
    }
    for name in ("password", "refund", "delivery"):
        assert new_ids[name] == old_ids[name], name
    assert refit.match is not None
    assert refit.match.gone == [old_ids["subscription"]]
    assert refit.match.new == [new_ids["app_crash"]]
    assert new_ids["app_crash"] not in old_ids.values()  # a retired id is never handed out again
    assert refit.model.manifest.refit["gone"] == [old_ids["subscription"]]


def test_merge_down_to_a_target_count(planted):
    texts, _, embeddings = planted
    result = fit_topics(texts, embeddings, replace(SMALL, target_topics=2))
    assert len(result.model.topics) == 2
    assert sum(t.size for t in result.model.topics) + round(result.unassigned_share * len(texts)) == len(texts)


def test_outlier_threshold_controls_the_unassigned_share():
    rng = np.random.default_rng(0)
    centre = np.eye(8, dtype=np.float32)[:2]
    points = np.concatenate(
        [
            centre[0] + 0.05 * rng.standard_normal((20, 8)),
            centre[1] + 0.05 * rng.standard_normal((20, 8)),
            rng.standard_normal((10, 8)),
        ]
    ).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    seeds = np.array([0] * 20 + [1] * 20 + [-1] * 10)
    strict, loose = refine_topics(points, seeds, 0.9, 5), refine_topics(points, seeds, -1.0, 5)
    assert (strict[:40] >= 0).all() and (strict[40:] == -1).sum() >= 8
    assert (loose >= 0).all()
    merged = merge_topics(points, seeds, threshold=None, target=1)
    assert set(merged[:40].tolist()) == {0}


def test_matching_pairs_topics_by_centroid():
    old = np.eye(3, dtype=np.float32)
    new = np.array([[0, 1, 0], [0.1, 0, 0.995], [0.7, 0.7, 0.1]], dtype=np.float32)
    match = match_topics(old, [10, 11, 12], new / np.linalg.norm(new, axis=1, keepdims=True), next_id=20)
    assert match.ids[:2] == [11, 12] and match.ids[2] == 20
    assert match.gone == [10] and match.new == [20]


def test_broken_topic_model_is_one_clear_error(fitted, tmp_path):
    with pytest.raises(TopicModelError, match="does not exist"):
        load_topic_model(tmp_path / "missing")
    folder = fitted.model.save(tmp_path / "model")
    (folder / "topics.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TopicModelError, match="topics.safetensors"):
        load_topic_model(folder)
    folder = fitted.model.save(tmp_path / "model2")
    (folder / "manifest.json").write_text('{"format": "convintel-topics"}')
    with pytest.raises(TopicModelError, match="manifest.json"):
        load_topic_model(folder)


def test_archives_in_every_format_give_the_customer_texts(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.topic_fit import customer_texts

    transcripts = [
        {
            "channel": "chat",
            "messages": [
                {"role": "customer", "text": "Where is my parcel?"},
                {"role": "agent", "text": "Let me check."},
                {"role": "customer", "text": "It is a week late."},
            ],
        },
        {"text": "Cancel my plan", "role": "customer"},
    ]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(t) for t in transcripts) + "\n{broken\n")
    from_jsonl = customer_texts(jsonl)
    assert from_jsonl.texts == ["Where is my parcel?", "It is a week late.", "Cancel my plan"]
    assert from_jsonl.skipped == 1 and "a.jsonl:3" in from_jsonl.problems[0]
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist([transcripts[0]]), parquet)
    assert customer_texts(parquet).texts == ["Where is my parcel?", "It is a week late."]
    csv_file = tmp_path / "a.csv"
    csv_file.write_text("body,role\nMy card was declined,\nHello from the agent,agent\n")
    assert customer_texts(csv_file, text_field="body").texts == ["My card was declined"]


def test_umap_without_the_extra_is_a_clear_error(planted, monkeypatch):
    import sys

    from nlp.topics.reduction import ReductionUnavailable

    monkeypatch.setitem(sys.modules, "umap", None)  # as if umap-learn were not installed
    texts, _, embeddings = planted
    with pytest.raises(ReductionUnavailable, match="topics-umap"):
        fit_topics(texts, embeddings, replace(SMALL, reduction="umap"))


@pytest.mark.slow
def test_umap_reduction_finds_the_planted_topics(planted):
    pytest.importorskip("umap")
    texts, truth, embeddings = planted
    result = fit_topics(texts, embeddings, replace(SMALL, reduction="umap", n_components=5))
    assert normalized_mutual_info_score(truth, result.labels) > 0.9


def test_default_sizes_follow_the_corpus_size():
    small, medium, large = (sizes_for_corpus(n) for n in (1_000, 10_000, 100_000))
    assert small.min_cluster_size < medium.min_cluster_size < large.min_cluster_size
    assert sizes_for_corpus(5).min_cluster_size >= 2  # HDBSCAN's floor, even for tiny archives
    for sizes in (small, medium, large):
        assert 1 <= sizes.min_samples <= sizes.min_cluster_size
    # Large archives reduce to fewer dimensions, where HDBSCAN's tree search stays fast,
    # and so do tiny ones, whose later components are noise.
    assert large.n_components < small.n_components
    assert sizes_for_corpus(120).n_components < small.n_components


def test_explicit_sizes_win_and_the_manifest_records_the_resolved_ones(fitted, planted):
    config = TopicFitConfig(min_cluster_size=7)
    assert config.sized_for(100_000).min_cluster_size == 7
    assert config.sized_for(100_000).min_samples == 3  # half the smallest topic actually used
    texts = planted[0]
    params = fitted.model.manifest.params
    auto = sizes_for_corpus(len(texts))
    assert params["min_cluster_size"] == SMALL.min_cluster_size
    assert (params["n_components"], params["min_samples"]) == (auto.n_components, SMALL.min_cluster_size // 2)
    # A refit from the manifest repeats the fit exactly, whatever the next corpus' size.
    assert TopicFitConfig.from_dict(params).sized_for(100_000) == SMALL.sized_for(len(texts))
