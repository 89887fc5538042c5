"""Topic discovery, live assignment, curation, seed topics and parent topics, on the
planted-topic fixtures (four support topics written for these tests, 30 messages each,
plus a fifth (app crashes) for refits)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.metrics import normalized_mutual_info_score

from nlp.spacy_pipeline import load_term_pipeline
from nlp.topics import TopicFitConfig, TopicModelError, fit_topics, load_topic_model
from nlp.topics.clustering import merge_topics, mst_algorithm, refine_topics
from nlp.topics.config import LARGE_CORPUS, sizes_for_corpus
from nlp.topics.describe import describe_topics
from nlp.topics.edits import (
    DeleteEdit,
    Members,
    MergeEdit,
    RenameEdit,
    SplitEdit,
    TopicEditError,
    UnknownTopicError,
    apply_edit,
)
from nlp.topics.hierarchy import assign_parents
from nlp.topics.labels import document_terms
from nlp.topics.matching import match_topics
from nlp.topics.seeds import SeedFile, SeedFileError, embed_seeds, load_seed_file
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


# Curation, seed topics, parent topics and labels.


def planted_topic_ids(result, truth: list[str]) -> dict[str, int]:
    """Planted topic name -> id of the topic most of its messages went to."""
    return {name: result.model.topics[topic_of_planted(result, truth, name)].id for name in sorted(set(truth))}


def shuffled(planted, seed: int):
    texts, truth, embeddings = planted
    order = np.random.default_rng(seed).permutation(len(texts))
    return [texts[i] for i in order], [truth[i] for i in order], embeddings[order]


def members_of(fitted, planted, topic_index: int) -> Members:
    texts, _, embeddings = planted
    rows = np.flatnonzero(fitted.labels == topic_index)
    return Members([texts[i] for i in rows], embeddings[rows])


def test_edits_survive_a_refit_with_previous(planted, fitted, tmp_path):
    _, truth, _ = planted
    ids = planted_topic_ids(fitted, truth)
    model = apply_edit(fitted.model, RenameEdit(topic=ids["password"], name="Login trouble"))
    model = apply_edit(model, MergeEdit(topics=[ids["refund"], ids["delivery"]]))
    model = apply_edit(model, DeleteEdit(topic=ids["subscription"]))
    model = load_topic_model(model.save(tmp_path / "curated"))  # the curation travels with the model
    assert [e["op"] for e in model.manifest.edits] == ["rename", "merge", "delete"]

    texts, new_truth, embeddings = shuffled(planted, 1)
    refit = fit_topics(texts, embeddings, SMALL, previous=model)
    by_id = {t.id: t for t in refit.model.topics}
    assert by_id[ids["password"]].name == "Login trouble"  # renamed: keeps its name
    assert ids["subscription"] not in by_id and ids["delivery"] not in by_id  # deleted, merged away
    labels = refit.labels
    orders = np.array([t in ("refund", "delivery") for t in new_truth])
    merged_index = refit.model.index_of(ids["refund"])
    assert (labels[orders] == merged_index).mean() >= 0.95  # the merged pair stays merged
    subscription = np.array([t == "subscription" for t in new_truth])
    assert (labels[subscription] == -1).mean() >= 0.95  # the deleted topic's messages stay unassigned
    assert len(refit.model.topics) == 2 and refit.curation
    # Live assignment follows the curation too: a subscription message is left unassigned.
    assert (refit.model.assign(embeddings[subscription]).topic == -1).mean() >= 0.95


def test_a_split_stays_split_after_a_refit(planted, fitted):
    _, truth, _ = planted
    index = topic_of_planted(fitted, truth, "delivery")
    topic_id = fitted.model.topics[index].id
    split = apply_edit(fitted.model, SplitEdit(topic=topic_id, parts=2), members=members_of(fitted, planted, index))
    parts = split.manifest.edits[-1]["into"]
    assert len(parts) == 2 and topic_id not in {t.id for t in split.topics} and len(split.topics) == 5
    assert sum(split.topics[split.index_of(p)].size for p in parts) == fitted.model.topics[index].size
    split = apply_edit(split, RenameEdit(topic=parts[0], name="Late parcels"))

    texts, new_truth, embeddings = shuffled(planted, 2)
    refit = fit_topics(texts, embeddings, SMALL, previous=split)
    refit_ids = [t.id for t in refit.model.topics]
    assert set(parts) <= set(refit_ids) and topic_id not in refit_ids
    assert refit.model.topics[refit.model.index_of(parts[0])].name == "Late parcels"
    delivery = refit.labels[[t == "delivery" for t in new_truth]]
    got = {refit.model.topics[k].id for k in delivery if k >= 0}
    assert got == set(parts)  # the delivery messages are still shared between the two parts


def test_bad_edits_are_clear_errors_and_change_nothing(fitted, planted):
    before = fitted.model.manifest.model_dump_json()
    first, second = (t.id for t in fitted.model.topics[:2])
    bad = [
        (RenameEdit(topic=999, name="x"), UnknownTopicError, "no topic with id 999"),
        (MergeEdit(topics=[first, first]), TopicEditError, f"cannot merge topic {first} with itself"),
        (MergeEdit(topics=[first, 999]), UnknownTopicError, "no topic with id 999"),
        (DeleteEdit(topic=-4), UnknownTopicError, "no topic with id -4"),
        (RenameEdit(topic=first, name=fitted.model.topics[1].name), TopicEditError, f"topic {second} is already"),
        (SplitEdit(topic=first), TopicEditError, "give the messages"),
    ]
    for edit, error, message in bad:
        with pytest.raises(error, match=message):
            apply_edit(fitted.model, edit)
    few = Members(["same text"] * 5, np.repeat(planted[2][:1], 5, axis=0))
    with pytest.raises(TopicEditError, match="1 distinct message"):
        apply_edit(fitted.model, SplitEdit(topic=first, parts=2), members=few)
    with pytest.raises(ValidationError, match="at least 1 character"):
        RenameEdit(topic=first, name="   ")
    assert fitted.model.manifest.model_dump_json() == before


SEEDS = {
    "topics": [
        {"name": "Password trouble", "description": "I forgot my password and cannot log in to my account"},
        {"name": "Weather", "examples": ["Will it rain tomorrow?", "Sunny skies all week"]},
    ]
}


@pytest.mark.parametrize("mode", ["zero-shot", "guided"])
def test_a_seeded_topic_gets_its_messages_and_keeps_its_name(analyzer, planted, mode):
    texts, truth, embeddings = planted
    seeds = embed_seeds(SeedFile.model_validate(SEEDS), lambda batch: analyzer.encode(batch).embeddings)
    config = replace(SMALL, seed_mode=mode)
    result = fit_topics(texts, embeddings, config, seeds=seeds)
    names = [t.name for t in result.model.topics]
    assert "Password trouble" in names
    seeded = names.index("Password trouble")
    assert result.model.topics[seeded].seeded and result.model.topics[seeded].pinned_name
    password = np.array([t == "password" for t in truth])
    assert (result.labels[password] == seeded).mean() >= 0.8
    assert (result.labels[~password] == seeded).sum() == 0  # nothing else lands in it
    if mode == "zero-shot":
        # Every seed is a topic (an unmatched one stays empty); messages at the threshold belong to their seed.
        assert names[:2] == ["Password trouble", "Weather"] and result.model.topics[1].size == 0
        claimed = embeddings @ seeds.vectors[0] >= config.seed_threshold
        assert (result.labels[claimed] == seeded).all()
        live = result.model.assign(embeddings[claimed])
        assert (live.topic == seeded).all()  # live assignment gives seeds the same priority
    refit = fit_topics(*shuffled(planted, 3)[::2], config, seeds=seeds, previous=result.model)
    again = refit.model.topics[[t.name for t in refit.model.topics].index("Password trouble")]
    assert again.id == result.model.topics[seeded].id


def test_a_seed_file_needs_a_description_or_examples(tmp_path):
    path = tmp_path / "seeds.yaml"
    path.write_text("topics:\n  - name: Refunds\n  - name: Refunds\n    description: money back\n")
    with pytest.raises(SeedFileError, match="needs a description or examples"):
        load_seed_file(path)


def test_parent_topics_are_stable_for_a_seed(planted, fitted):
    _, truth, _ = planted

    def grouping(result, truth):
        ids = planted_topic_ids(result, truth)
        by_id = {t.id: t.parent for t in result.model.topics}
        return {frozenset(n for n in ids if by_id[ids[n]] == parent) for parent in set(by_id.values())}

    again = fit_topics(planted[0], planted[2], SMALL)
    assert again.model.manifest.parents == fitted.model.manifest.parents
    texts, new_truth, embeddings = shuffled(planted, 4)
    assert grouping(fit_topics(texts, embeddings, SMALL), new_truth) == grouping(fitted, truth)
    # Fewer parents than topics: related topics (refunds and deliveries) share one.
    assert 1 < len(fitted.model.manifest.parents) < len(fitted.model.topics)
    for parent in fitted.model.manifest.parents:
        assert parent.size == sum(t.size for t in fitted.model.topics if t.parent == parent.id)
        assert parent.id == min(parent.topics)  # its smallest child's id: stable while that child stays
    renamed = apply_edit(fitted.model, RenameEdit(topic=fitted.model.topics[-1].id, name="Renamed"))
    assert [(p.id, p.topics) for p in renamed.manifest.parents] == [
        (p.id, p.topics) for p in fitted.model.manifest.parents
    ]
    # Every topic its own parent at similarity 1; one parent at -1.
    topics, centroids = fitted.model.topics, fitted.model.centroids
    assert len(assign_parents(topics, centroids, 1.0)[1]) == len(topics)
    assert len(assign_parents(topics, centroids, -1.0)[1]) == 1
    reversed_topics, parents = assign_parents(topics[::-1], centroids[::-1], 0.5)
    assert [p.topics for p in parents] == [p.topics for p in fitted.model.manifest.parents]


def test_labels_pair_keywords_with_the_redacted_representative_message(fitted, planted):
    for topic in fitted.model.topics:
        assert topic.representative == topic.examples[0]
        assert topic.label.startswith(", ".join(topic.keywords[:3])) and topic.representative[:40] in topic.label
    texts = [
        "Please reset my password, write to jane.doe@example.com",
        "I cannot reset my password",
        "password reset link does not work",
    ]
    embeddings = planted[2][:3]
    entries, _ = describe_topics(texts, embeddings, np.zeros(3, dtype=np.int64), [0], SMALL)
    quoted = " ".join(entries[0].examples) + entries[0].label
    assert "jane.doe@example.com" not in quoted and "[email]" in " ".join(entries[0].examples)


def test_label_terms_are_content_lemmas_and_neighbouring_pairs():
    terms = document_terms(
        ["My card payments were declined twice at the shop", "How do I transfer money to Europe?"],
        load_term_pipeline(),
    )
    assert terms == [
        ["card", "payment", "decline", "shop", "card payment"],
        ["transfer", "money", "europe", "transfer money"],
    ]


def test_a_version_1_model_still_loads(fitted, tmp_path):
    """Models saved before curation (format v1: no retired topics, parents or labels) load as they are."""
    from safetensors.numpy import save_file

    folder = tmp_path / "v1"
    folder.mkdir()
    ids = np.array([t.id for t in fitted.model.topics], dtype=np.int64)
    save_file({"centroids": fitted.model.centroids, "topic_ids": ids}, str(folder / "topics.safetensors"))
    manifest = json.loads(fitted.model.manifest.model_dump_json())
    for key in ("parents", "edits", "retired"):
        del manifest[key]
    for topic in manifest["topics"]:
        for key in ("representative", "label", "parent", "seeded", "pinned_name"):
            del topic[key]
    manifest["format_version"] = 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    model = load_topic_model(folder)
    assert model.manifest.retired == [] and model.topics[0].parent is None
    edited = apply_edit(model, DeleteEdit(topic=model.topics[0].id))  # and can be curated
    assert len(edited.topics) == len(model.topics) - 1 and edited.manifest.parents


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


def test_hdbscan_builds_its_tree_the_faster_way_for_the_corpus_size():
    # Prim's for the corpora reduced to many dimensions; Boruvka's where Prim's quadratic
    # growth would cost more: large corpora, and any corpus reduced to few dimensions.
    assert mst_algorithm(10_003, sizes_for_corpus(10_003).n_components) == "prims_kdtree"
    assert mst_algorithm(LARGE_CORPUS, sizes_for_corpus(LARGE_CORPUS).n_components) == "boruvka_kdtree"
    assert mst_algorithm(5_000, 10) == "boruvka_kdtree"


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
