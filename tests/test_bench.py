"""The benchmark's own behaviour (bench/__main__.py): what --quick runs, and a quiet log. (How
long --quick takes is measured, not tested: the README gives the figures.)"""
from __future__ import annotations

import pytest


def _retrace(tf, n: int = 7) -> None:
    """One tf.function called with n input shapes: traced n times, which TensorFlow warns about."""
    f = tf.function(lambda x: x * 2.0)
    for k in range(1, n + 1):
        f(tf.zeros([k]))


def test_the_bench_drops_tensorflow_retracing_warnings_and_nothing_else(caplog):
    import logging

    from bench.__main__ import quiet_retracing
    from dreamvid.models import setup_tensorflow

    tf = setup_tensorflow()
    logger = logging.getLogger("tensorflow")
    saved = list(logger.filters)
    try:
        with caplog.at_level(logging.WARNING, logger="tensorflow"):
            _retrace(tf)
            assert any("triggered tf.function retracing" in r.getMessage() for r in caplog.records)  # as before
            caplog.clear()
            quiet_retracing()
            quiet_retracing()  # once is enough; twice changes nothing
            _retrace(tf)
            logger.warning("another warning")
            assert [r.getMessage() for r in caplog.records] == ["another warning"]
    finally:
        logger.filters[:] = saved


@pytest.mark.parametrize("quick,only,runs", [
    (True, None, "steps,still,video,memory,startup,precisions,coherence,objectives,backends,looks"),
    (True, "cluster", "cluster"),
    (False, None, "steps,still,video,memory,startup,precisions,coherence,cluster,objectives,backends,looks"),
])
def test_quick_leaves_the_cluster_out_unless_asked(quick, only, runs):
    """--quick runs every item but the cluster's (QUICK_LEAVES_OUT), which --only still reaches."""
    from bench.__main__ import items_to_run

    assert ",".join(items_to_run(quick, only)) == runs


def test_the_report_writes_the_looks_item():
    """bench/report.py: the table's rows and docs/bench.md's section 11 from a looks result."""
    from bench import report

    cost = {"size": "512x384", "techniques": {"lapnorm": 4, "decorrelate": 1.0, "transform": 1.0},
            "backends": {"tensorflow": {"seconds_per_step": 0.08, "with_techniques": 0.09, "ratio": 1.125,
                                        "target": 1.15, "hit": True}}}
    rows = [{"label": "(no preset)", "animal": 1.0, "dog": 0.28, "fine_chroma": 0.001},
            {"label": "--class pug", "animal": 0.74, "dog": 0.54, "fine_chroma": 0.001, "class_top1": 6, "of": 7}]
    looks = {"cost": cost, "size": 320, "photos": ["coffee"], "tuned_on": ["coffee"], "rows": rows, "class_target": 3}
    table = report.lines({"looks": looks})
    assert ("11. step with lapnorm, decorrelate, transform / plain (tensorflow)", "0.090 vs 0.080 s = 1.12x",
            "<= 1.15x", "hit") in table
    assert ("11. --class pug: the judge's top-1", "6 of 7 photos", ">= 3 of 4", "hit") in table
    section = "\n".join(report._details({"looks": looks}))
    assert "## 11. The DeepDream look" in section and "| --class pug | 0.74 | 0.54 | 0.001 | 6 of 7 |" in section
    skipped = "\n".join(report._details({"looks": {"cost": cost, "skipped": "no judge"}}))
    assert "not measured (no judge)" in skipped
