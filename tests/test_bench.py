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
