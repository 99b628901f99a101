"""python -m bench [--quick] [--only ITEMS]: the measurements of issue 5, coherence (issue 8),
the cluster (issue 13) and the backends (issue 22).

Prints a table, writes bench/results/latest.json (git-ignored) and, after a run of every
item, docs/bench.md (the README shows it). Items: steps, still, video, memory, startup,
precisions, coherence, cluster, objectives, backends, looks. A full run takes about 20 minutes on 2
cores; --quick is the short run (under 3 minutes on 2 cores): every item once at small sizes,
the default model only, two kinds of footage for coherence, the cluster left out
(QUICK_LEAVES_OUT), no docs rewritten. `python -m bench --gpu [...]` is the GPU check instead
(bench/gpu.py, `make gpu-check`).
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
import time
from pathlib import Path

from . import report

ROOT = Path(__file__).resolve().parent.parent
ITEMS = ("steps", "still", "video", "memory", "startup", "precisions", "coherence", "cluster", "objectives",
         "backends", "looks")
# What --quick leaves out unless --only names it, and why (the table says so)
QUICK_LEAVES_OUT = {"cluster": "not in --quick: a local Ray cluster's start-up and its two configurations take "
                               "minutes here (python -m bench --only cluster)"}
# The bench makes many Dreamers on purpose (cold runs, each traced anew) and dreams each at several
# octave sizes: TensorFlow's "triggered tf.function retracing" warning says what is being measured.
RETRACING = "triggered tf.function retracing"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--gpu" in argv:  # before anything imports TensorFlow: the GPU check sets up its own environment
        from . import gpu

        return gpu.main([a for a in argv if a != "--gpu"])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU check instead (bench/gpu.py; its options: python -m bench --gpu --help)")
    parser.add_argument("--quick", action="store_true",
                        help="the short run: small sizes, few repetitions, no cluster, no docs (< 3 minutes)")
    parser.add_argument("--only", help=f"comma-separated items of {', '.join(ITEMS)}")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/bench.md")
    parser.add_argument("--against", metavar="DIR",
                        help="startup item: also time this tree against the dreamvid checkout in DIR (before/after)")
    parser.add_argument("--report", action="store_true",
                        help="measure nothing: table and docs/bench.md from bench/results/latest.json")
    args = parser.parse_args(argv)
    only = items_to_run(args.quick, args.only)
    unknown = set(only) - set(ITEMS)
    if unknown:
        parser.error(f"unknown item(s) {', '.join(sorted(unknown))}; items: {', '.join(ITEMS)}")

    if args.report:
        return _report_only(args.no_docs)

    # The in-process items measure the network as built from its weights (the references run it
    # unfolded); the start-up item measures the network cache in its own processes.
    os.environ.setdefault("DREAMVID_NETWORK_CACHE", "0")
    # dreamvid's TensorFlow settings (oneDNN, remapper, GPU memory growth) before anything imports TF
    from dreamvid.models import setup_tensorflow

    setup_tensorflow()
    quiet_retracing()
    from . import backends, cluster, coherence, common, looks, memory, objectives, precisions, startup, steps, still, video

    sampler = common.LoadSampler()
    results: dict = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
                     "commit": report.commit_of(ROOT), "machine": common.machine()}
    t0, cpu0 = time.perf_counter(), common.cpu_seconds()
    for item in only:
        sampler.sample()
        print(f"[bench] {item} (load {common.load_average():.2f}) ...", file=sys.stderr, flush=True)
        t, cpu = time.perf_counter(), common.cpu_seconds()
        if item == "steps":
            results["steps"] = steps.measure(args.quick)
            if not args.quick:  # TensorFlow's defaults in two more processes, and profiles: docs only
                results["steps"]["settings"] = steps.measure_settings(args.quick)
                results["steps"]["profiles"] = {label: steps.op_breakdown(steps.load_model(name, layer))
                                                for label, name, layer, _ in steps.MODELS
                                                if label in steps.TARGET_FRACTION}
        elif item == "still":
            results["still"] = still.measure(args.quick)
        elif item == "video":
            why_not = video.available()
            results["video"] = {"skipped": why_not} if why_not else video.measure(args.quick)
        elif item == "memory":
            results["memory"] = memory.measure(args.quick)
        elif item == "startup":
            results["startup"] = startup.measure(args.quick, args.against)
        elif item == "precisions":
            results["precisions"] = precisions.measure(args.quick)
        elif item == "coherence":
            results["coherence"] = coherence.measure(args.quick)
        elif item == "objectives":
            results["objectives"] = objectives.measure(args.quick)
        elif item == "backends":
            results["backends"] = backends.measure(args.quick)
        elif item == "looks":
            results["looks"] = looks.measure(args.quick)
        elif item == "cluster":
            why_not = cluster.available()
            results["cluster"] = {"skipped": why_not} if why_not else cluster.measure(args.quick)
        print(f"[bench] {item}: {time.perf_counter() - t:.0f} s ({common.cpu_seconds() - cpu:.0f} CPU s)",
              file=sys.stderr, flush=True)
    for item, why in QUICK_LEAVES_OUT.items():
        if args.quick and args.only is None:
            results[item] = {"skipped": why}
    sampler.sample()
    results["load"] = sampler.summary()
    results["wall_seconds"] = round(time.perf_counter() - t0, 1)
    results["cpu_seconds"] = round(common.cpu_seconds() - cpu0, 1)

    print(report.table(results))
    print(f"\nload (1-min average) during the run: {results['load']['min']}..{results['load']['max']}; "
          f"{results['wall_seconds']:.0f} s, {results['cpu_seconds']:.0f} CPU s (this process and its children)")
    out = common.ROOT / "bench" / "results" / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out.relative_to(common.ROOT)}")
    if set(only) == set(ITEMS) and not args.no_docs and not args.quick:
        report.write_docs(common.ROOT, results)
    return 0


def items_to_run(quick: bool, only: str | None) -> list[str]:
    """The items of `--only` (comma-separated), else every item, less QUICK_LEAVES_OUT if quick."""
    if only is None:
        return [i for i in ITEMS if not (quick and i in QUICK_LEAVES_OUT)]
    return [i.strip() for i in only.split(",") if i.strip()]


def _no_retracing(record: logging.LogRecord) -> bool:
    return RETRACING not in record.getMessage()


def quiet_retracing() -> None:
    """Drop TensorFlow's retracing warnings (RETRACING says why), once, nothing else."""
    logger = logging.getLogger("tensorflow")
    if _no_retracing not in logger.filters:
        logger.addFilter(_no_retracing)


def _report_only(no_docs: bool) -> int:
    results = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    print(report.table(results))
    if set(ITEMS) <= set(results) and not no_docs:
        report.write_docs(ROOT, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
