"""python -m bench [--quick] [--only ITEMS]: the five measurements of issue 5, coherence (issue 8) and the cluster (issue 13).

Prints a table, writes bench/results/latest.json (git-ignored) and, after a run of every
item, docs/bench.md (the README shows it). Items: steps, still, video, memory, startup,
precisions, coherence, cluster, objectives, looks. A full run takes about 20 minutes on 2 cores; --quick does fewer
repetitions (about 7). `python -m bench --gpu [...]` is the GPU check instead (bench/gpu.py,
`make gpu-check`).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

from . import report

ROOT = Path(__file__).resolve().parent.parent
ITEMS = ("steps", "still", "video", "memory", "startup", "precisions", "coherence", "cluster", "objectives", "looks")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--gpu" in argv:  # before anything imports TensorFlow: the GPU check sets up its own environment
        from . import gpu

        return gpu.main([a for a in argv if a != "--gpu"])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU check instead (bench/gpu.py; its options: python -m bench --gpu --help)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (noisier, about 4 minutes)")
    parser.add_argument("--only", default=",".join(ITEMS), help=f"comma-separated items of {', '.join(ITEMS)}")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/bench.md")
    parser.add_argument("--against", metavar="DIR",
                        help="startup item: also time this tree against the dreamvid checkout in DIR (before/after)")
    parser.add_argument("--report", action="store_true",
                        help="measure nothing: table and docs/bench.md from bench/results/latest.json")
    args = parser.parse_args(argv)
    only = [i.strip() for i in args.only.split(",") if i.strip()]
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
    from . import cluster, coherence, common, looks, memory, objectives, precisions, startup, steps, still, video

    sampler = common.LoadSampler()
    results: dict = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
                     "commit": report.commit_of(ROOT), "machine": common.machine()}
    t0 = time.perf_counter()
    for item in only:
        sampler.sample()
        print(f"[bench] {item} (load {common.load_average():.2f}) ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        if item == "steps":
            results["steps"] = steps.measure(args.quick)
            results["steps"]["settings"] = steps.measure_settings(args.quick)
            results["steps"]["profiles"] = {label: steps.op_breakdown(steps.load_model(name, layer))
                                            for label, name, layer, _ in steps.MODELS if label in steps.TARGET_FRACTION}
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
        elif item == "looks":
            results["looks"] = looks.measure(args.quick)
        elif item == "cluster":
            why_not = cluster.available()
            results["cluster"] = {"skipped": why_not} if why_not else cluster.measure(args.quick)
        print(f"[bench] {item}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    sampler.sample()
    results["load"] = sampler.summary()
    results["wall_seconds"] = round(time.perf_counter() - t0, 1)

    print(report.table(results))
    print(f"\nload (1-min average) during the run: {results['load']['min']}..{results['load']['max']}")
    out = common.ROOT / "bench" / "results" / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out.relative_to(common.ROOT)}")
    if set(only) == set(ITEMS) and not args.no_docs:
        report.write_docs(common.ROOT, results)
    return 0


def _report_only(no_docs: bool) -> int:
    results = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    print(report.table(results))
    if set(ITEMS) <= set(results) and not no_docs:
        report.write_docs(ROOT, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
