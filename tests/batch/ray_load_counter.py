"""A Ray worker setup hook for the Ray engine tests: every analyzer load in a Ray worker
appends the worker's pid to the file named by `CONVINTEL_TEST_LOAD_LOG`, then the real
loader runs (the count is of real loads, nothing is replaced)."""

from __future__ import annotations

import os


def count_loads() -> None:
    import service.runtime as runtime

    real_load = runtime.load_analyzer

    def counted(*args, **kwargs):
        analyzer = real_load(*args, **kwargs)
        with open(os.environ["CONVINTEL_TEST_LOAD_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()}\n")
        return analyzer

    runtime.load_analyzer = counted
