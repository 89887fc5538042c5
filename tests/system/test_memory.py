"""Returning freed heap memory to the OS: the trimmer's pacing, that a trim really lowers
resident memory after fragmenting frees, and that the analyzer trims after encoder passes."""

from __future__ import annotations

import psutil
import pytest

from nlp.analyzer import Analyzer
from nlp.schemas import Message
from service.memory import HeapTrimmer, trim_heap

MIB = 2**20


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_trims_at_most_once_per_interval(monkeypatch):
    monkeypatch.setattr("service.memory.trim_heap", lambda: True)
    clock = FakeClock()
    trimmer = HeapTrimmer(2.0, clock=clock)
    for _ in range(10):  # 0.5 s apart: 5 s in all
        clock.now += 0.5
        trimmer.maybe_trim()
    assert trimmer.trims == 2


@pytest.mark.parametrize("interval", [None, 0.0])
def test_never_trims_when_off(monkeypatch, interval):
    monkeypatch.setattr("service.memory.trim_heap", lambda: pytest.fail("trimmed while off"))
    clock = FakeClock()
    trimmer = HeapTrimmer(interval, clock=clock)
    clock.now += 1e6
    trimmer.maybe_trim()
    assert trimmer.trims == 0


def test_trim_returns_fragmented_free_memory():
    if not trim_heap():
        pytest.skip("not glibc: malloc_trim is unavailable")
    process = psutil.Process()
    # 64 KiB blocks come from malloc's heap (below its mmap threshold); freeing all but every
    # 16th leaves holes that malloc keeps, as varied encoder batches do.
    blocks = [bytearray(64 * 1024) for _ in range(3000)]
    kept = blocks[::16]
    del blocks
    before = process.memory_info().rss
    assert trim_heap()
    after = process.memory_info().rss
    assert kept and before - after > 64 * MIB


def test_analyzer_trims_after_an_encoder_pass(analyzer, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr("service.memory.trim_heap", lambda: calls.append(1) or True)
    trimmer = HeapTrimmer(1e-9)
    trimming = Analyzer(analyzer.encoder, analyzer.bundle, analyzer.policy, after_encode=trimmer.maybe_trim)
    trimming.analyze_messages([Message(role="customer", text="my parcel never arrived")], ["m1"])
    assert trimmer.trims == 1 and calls == [1]
    quiet = Analyzer(analyzer.encoder, analyzer.bundle, analyzer.policy)
    quiet.analyze_messages([Message(role="customer", text="my parcel never arrived")], ["m1"])
    assert calls == [1]
