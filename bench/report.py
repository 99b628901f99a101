"""The printed table and docs/bench.md, both made from the results dict (never typed by hand)."""
from __future__ import annotations


def _mark(hit) -> str:
    return "—" if hit is None else ("hit" if hit else "MISS")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def lines(r: dict) -> list[tuple[str, str, str, str]]:
    """(item, measured, target, verdict) rows of the summary table."""
    rows = []
    if "steps" in r:
        for m in r["steps"]["rows"]:
            target = "" if m["target_fraction"] is None else f">= {_pct(m['target_fraction'])} of matmul"
            rows.append((f"1. step {m['size']}, {m['model']} ({m['layer']})",
                         f"{m['seconds_per_step']:.3f} s, {m['gflop_per_step']} GFLOP, {m['gflops']:.0f} GFLOP/s = "
                         f"{_pct(m['fraction_of_matmul'])} of {m['matmul_gflops']:.0f}", target, _mark(m["hit"])))
    if "still" in r:
        s = r["still"]
        sec, sp = s["seconds"], s["speedup"]
        rows.append((f"2. still {s.get('max_size', 512)} px classic vs (a) eager",
                     f"{sec['dreamvid_cold']:.2f} s vs {sec['eager']:.2f} s = {sp['vs_eager']:.2f}x", ">= 4x",
                     _mark(s["hit"]["vs_eager"])))
        rows.append(("2. still vs (b) Keras-example structure",
                     f"{sec['dreamvid_cold']:.2f} s vs {sec['keras_example_cold']:.2f} s = "
                     f"{sp['vs_keras_example_cold']:.2f}x (warm: {sp['vs_keras_example_warm']:.2f}x)", ">= 1.3x",
                     _mark(s["hit"]["vs_keras_example"])))
        rows.append(("2. same result (per step, same input)",
                     ", ".join(f"{k} mean {v['mean_px']:.4f} px" for k, v in s["equivalence"]["per_step_px"].items()),
                     f"<= {s['equivalence']['step_tolerance_px']} px", _mark(s["equivalence"]["ok"])))
    if "video" in r:
        v = r["video"]
        if "skipped" in v:
            rows.append(("3. video", "not measured: " + v["skipped"], "", "—"))
        else:
            f = v["seconds_per_frame"]
            rows.append((f"3. video {v.get('width', 512)} px, s/frame, pipeline", f"{f['pipeline']:.3f} s", "<= 1.0 s",
                         _mark(v["hit"]["seconds_per_frame"])))
            rows.append(("3. pipeline / dream steps alone", f"{f['pipeline']:.3f} / {f['dream_steps_alone']:.3f} = "
                         f"{v['pipeline_over_dream']:.2f}", "<= 1.15", _mark(v["hit"]["pipeline_over_dream"])))
            rows.append(("3. vs (b) frame by frame", f"{f['keras_example_frame_by_frame']:.3f} s/frame = "
                         f"{v['speedup_vs_keras_example']:.2f}x", ">= 2x", _mark(v["hit"]["vs_keras_example"])))
    if "memory" in r:
        for key, label in (("video_frame_1080p", "4. peak RSS, 1080p video frame"),
                           ("still_4k", "4. peak RSS, 4K still")):
            m = r["memory"].get(key)
            if m is None:
                rows.append((label, "not in --quick", "", "—"))
                continue
            rows.append((label, f"{m['peak_mb'] / 1024:.2f} GB "
                         f"(model loaded: {m['after_model_load_mb'] / 1024:.2f} GB)",
                         f"<= {m['target_mb'] / 1024:.0f} GB", _mark(m["hit"])))
    if "startup" in r:
        s = r["startup"]
        heavy = [k for k, v in s["imported"].items() if v]
        rows.append(("5. dreamvid --help", f"{s['seconds']:.2f} s; imported: {', '.join(heavy) or 'no TF, Keras, cv2'}",
                     "< 1 s, no TF", _mark(s["hit"])))
        rows += _startup_lines(s) + _newcomer_lines(s.get("newcomer"))
    for p in r.get("precisions", {}).get("rows", []):
        sec = p["seconds_per_step"]
        auto = p.get("auto", {}).get("precision", "—")
        dense = f"; bf16 but depthwise: {p['speedup_dense_only']:.2f}x" if "speedup_dense_only" in p else ""
        rows.append((f"6. step {p['size']} {p['model']}, float32 vs {p['reduced'].split('_')[1]}",
                     f"{sec['float32']:.3f} s vs {sec[p['reduced']]:.3f} s = {p['speedup_reduced']:.2f}x{dense}",
                     f"auto: {auto}", "—"))
    if "coherence" in r:
        c, hit = r["coherence"], r["coherence"]["hit"]
        rows_ = c["rows"]
        worst = max(rows_, key=lambda x: x["vs_source"])
        rows.append(("7. coherence, warping error vs source (worst kind)",
                     f"{worst['vs_source']:.2f}x ({worst['kind']}); {len(rows_)} kind{'s' * (len(rows_) != 1)}", "<= 2x",
                     _mark(hit["vs_source"])))
        ind = [x for x in rows_ if "vs_independent" in x]
        if ind:
            w = max(ind, key=lambda x: x["vs_independent"])
            rows.append(("7. coherence vs --flow none (worst kind)", f"{w['vs_independent']:.3f}x ({w['kind']})",
                         "<= 0.1x", _mark(hit["vs_independent"])))
            floors = [x for x in ind if "oracle" in x]
            if floors:  # the same ratio for a perfectly coherent dream of the same strength (bench/coherence.py)
                o = max(floors, key=lambda x: x["oracle"]["vs_independent"])
                rows.append(("7. the same, a perfectly coherent dream (worst photo kind)",
                             f"{o['oracle']['vs_independent']:.3f}x ({o['kind']}; dreamvid {o['vs_independent']:.3f}x)",
                             "", "—"))
        low = min(rows_, key=lambda x: x["strength"]["later_over_first"])
        rows.append(("7. dream strength, later frames / first (worst)",
                     f"{low['strength']['later_over_first']:.2f} ({low['kind']})", ">= 0.6",
                     _mark(hit["later_over_first"])))
        f = max(rows_, key=lambda x: x["strength"]["first_over_median"])
        p = max(rows_, key=lambda x: x["strength"]["p90_over_p10"])
        rows.append(("7. first frame / shot median; p90/p10 (worst)",
                     f"{f['strength']['first_over_median']:.2f} ({f['kind']}); {p['strength']['p90_over_p10']:.2f} "
                     f"({p['kind']})", "<= 1.3; <= 1.5",
                     _mark(hit["first_over_median"] and hit["p90_over_p10"])))
        if "long_still" in c:
            b = c["long_still"]["brightness"]
            rows.append((f"7. brightness offset, {c['long_still']['frames']}-frame still",
                         f"max {b['max_abs']:.2f} levels, trend {b['trend_per_100_frames']:+.2f}/100 frames",
                         "<= 3 levels, no trend", _mark(hit.get("brightness"))))
        rows += _file_lines(c)
    rows += _cluster_lines(r.get("cluster"))
    rows += _objectives_lines(r.get("objectives"))
    rows += _backends_lines(r.get("backends"))
    rows += _looks_lines(r.get("looks"))
    return rows


def _backends_lines(b: dict | None) -> list[tuple[str, str, str, str]]:
    """Issue 22: each bundled network's float32 step on TensorFlow and PyTorch, side by side, on
    this CPU and with its kernels capped at AVX2; what auto picks against TensorFlow's step."""
    if b is None:
        return []
    if "skipped" in b:
        return [("10. backends", f"not measured: {b['skipped']}", "", "—")]
    rows = []
    for where, label in (("native", "this CPU"), ("avx2", "AVX2 (emulated)")):
        for row in b.get(where, {}).get("rows", []):
            sec = row["seconds_per_step"]
            target = row.get("target")
            hit = None if target is None or where != "avx2" else row["auto_vs_today"] >= target
            rows.append((f"10. step {row['size']} {row['model']}, TensorFlow vs PyTorch, {label}",
                         f"{sec['tensorflow']:.3f} s vs {sec['torch']:.3f} s = {row['torch_speedup']:.2f}x; "
                         f"auto: {row['auto']['backend']} = {row['auto_vs_today']:.2f}x today's",
                         f"auto >= {target}x" if target and where == "avx2" else "auto: the faster",
                         _mark(hit) if hit is not None else _mark(row["auto_vs_today"] >= 0.95)))
    return rows


def _looks_lines(o: dict | None) -> list[tuple[str, str, str, str]]:
    """Issue 23: the techniques' step cost, the judge's verdict on the default and the class dreams."""
    if o is None:
        return []
    rows = [(f"11. step with lapnorm, decorrelate, transform / plain ({b})",
             f"{c['with_techniques']:.3f} vs {c['seconds_per_step']:.3f} s = {c['ratio']:.2f}x",
             f"<= {c['target']}x", _mark(c["hit"])) for b, c in o["cost"]["backends"].items()]
    for row in o.get("rows", []):
        if row["label"] == "(no preset)":
            rows.append(("11. `dreamvid image` (no preset): judge's animal share, fine chroma",
                         f"{row['animal']:.2f}, {row['fine_chroma']:.3f}", "", "—"))
        if "class_top1" in row:
            rows.append((f"11. {row['label']}: the judge's top-1", f"{row['class_top1']} of {row['of']} photos",
                         f">= {o['class_target']} of 4", _mark(row["class_top1"] >= o["class_target"] * row["of"] / 4)))
    return rows


def _objectives_lines(o: dict | None) -> list[tuple[str, str, str, str]]:
    """Issue 14: a channel, class, guide or mask step against the plain step of its layer depth."""
    if o is None:
        return []
    return [(f"9. {row['objective']} step / plain step", f"{row['seconds_per_step']:.3f} vs "
             f"{row['baseline_seconds']:.3f} s = {row['ratio']:.2f}x", f"<= {row['target']}x" if row["target"] else "",
             _mark(row["hit"]) if row["hit"] is not None else "—") for row in o["rows"]]


def _startup_lines(s: dict) -> list[tuple[str, str, str, str]]:
    """Issue 12's start-up rows: model ready and traced, and the whole `classic` command."""
    rows = []
    if "breakdown" in s:
        b = s["breakdown"]
        warm = b["cache_warm"]["model_ready_and_traced_s"]
        cold = f"{b['no_cache']['model_ready_and_traced_s']:.2f} s" if "no_cache" in b else "not in --quick"
        phases = ", ".join(f"{k} {v:.2f}" for k, v in b["cache_warm"]["phases_s"].items())
        rows.append(("5. model ready and traced, cache warm", f"{warm:.2f} s (no cache: {cold}; {phases})",
                     f"<= {b['target_s']} s", _mark(warm <= b["target_s"])))
    if "whole_process" in s:
        w = s["whole_process"]
        rows.append((f"5. whole `image -p classic` {w.get('size', 512)} px vs Keras-example script",
                     f"{w['seconds']['dreamvid']:.2f} s vs {w['seconds']['keras_example_script']:.2f} s = "
                     f"{w['speedup']:.2f}x", f">= {w['target']}x", _mark(w["speedup"] >= w["target"])))
    return rows


def _newcomer_lines(n: dict | None) -> list[tuple[str, str, str, str]]:
    """Issue 27: a newcomer's first commands (bench/newcomer.py), none of which dreams."""
    if n is None:
        return []
    slowest = max(n["rows"], key=lambda row: row["seconds"])
    imported = sorted({m for row in n["rows"] for m in row["imported"]})
    return [(f"5. a newcomer's first {len(n['rows'])} commands (help, typos, -o, layers, a second render)",
             f"slowest {slowest['seconds']:.2f} s ({slowest['what']}); TensorFlow imported by "
             f"{', '.join(imported) if imported else 'none'}", f"< {n['target_s']:g} s each, no TF", _mark(n["hit"]))]


def _newcomer_details(n: dict) -> list[str]:
    md = ["", f"A newcomer's first commands (bench/newcomer.py; tests/test_first_hour.py asserts the same), each a "
          f"fresh process as typed, median of {n['runs']} rounds:", "",
          "| command | seconds | imported | answered as expected |", "|---|---|---|---|"]
    for row in n["rows"]:
        md.append(f"| {row['what']}: `{row['command']}` | {row['seconds']:.2f} | "
                  f"{', '.join(row['imported']) or 'no TF'} | {'yes' if row['answered'] else 'NO'} |")
    return md


def _cluster_lines(c: dict | None) -> list[tuple[str, str, str, str]]:
    if c is None:
        return []
    if "skipped" in c:
        return [("8. cluster", "not measured: " + c["skipped"], "", "—")]
    f, d, vs = c["seconds_per_frame"], c["default"], c["default"]["vs_single"]
    return [
        ("8. cluster: 1 worker vs 1 process, same 2 cores", f"{f['one_worker_2_cores']:.3f} vs "
         f"{f['single_process']:.3f} s/frame = {c['overhead']:+.1%}", "<= +10%", _mark(c["hit"]["overhead"])),
        ("8. cluster: 2 workers, boundary pair / clip mean",
         f"{d['boundary_over_mean']:.2f}x (fade zone {d['fade_zone_over_mean']:.2f}x)" if d.get("boundary_over_mean")
         else "no boundary (the clip is one chunk)", "<= 1.5x", _mark(c["hit"]["boundary"])),
        ("8. cluster: 2 workers vs 1 process, whole clip", f"warping error {vs['warping_error']:.2f}x, strength "
         f"{vs['strength']:.2f}x, mean difference {vs['mean_abs_difference']:.1f}/255", "within 1.1x",
         _mark(c["hit"]["coherence"])),
    ]


def _file_lines(c: dict) -> list[tuple]:
    """Item 7, the file a user plays (issue 24): each encode's warping error over its frames'."""
    files = [(x["kind"], x["file"]) for x in c["rows"] if "file" in x] + ([("zoom", c["zoom"])] if "zoom" in c else [])
    if not files:
        return []
    hit, rows = c["hit"], []
    for key, label in (("mp4", "mp4 (yuv420p)"), ("yuv444p", "--pix-fmt yuv444p"), ("gif", "GIF")):
        kind, f = max(files, key=lambda kf: kf[1][key]["over_frames"])
        before = f" (before: {f['before' if key != 'gif' else 'gif_before']['over_frames']:.2f}x)" \
            if key != "yuv444p" else ""
        rows.append((f"7. file / its frames, {label} (worst kind)", f"{f[key]['over_frames']:.2f}x ({kind}){before}",
                     "<= 1.2x", _mark(hit.get(f"{key}_over_frames"))))
    kind, f = max(files, key=lambda kf: kf[1]["mp4"]["bytes"] / kf[1]["before"]["bytes"])
    rows.append(("7. file size / the crf-18 encode before (largest)",
                 f"{f['mp4']['bytes'] / f['before']['bytes']:.2f}x ({kind})", "<= 2x", _mark(hit.get("file_size"))))
    kind, f = max(files, key=lambda kf: kf[1]["encode_cost"])
    rows.append(("7. steady encode's extra time / a frame's dream (most)", f"{100 * f['encode_cost']:+.1f}% ({kind})",
                 "<= 10%", _mark(hit.get("encode_cost"))))
    kind, f = max(files, key=lambda kf: kf[1]["gif"]["bytes"] / kf[1]["gif_before"]["bytes"])
    rows.append(("7. GIF size / the GIF before issue 24 (largest)",
                 f"{f['gif']['bytes'] / f['gif_before']['bytes']:.2f}x ({kind})", "<= 1.5x", _mark(hit.get("gif_size"))))
    costed = [kf for kf in files if "gif_cost" in kf[1]]
    if costed:
        kind, f = max(costed, key=lambda kf: kf[1]["gif_cost"])
        rows.append(("7. steady GIF's extra time / a frame's dream (most)", f"{100 * f['gif_cost']:+.1f}% ({kind})",
                     "reported", ""))
    return rows


def table(r: dict) -> str:
    rows = [("item", "measured", "target", "")] + lines(r)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


README_START = "<!-- bench:start (written by `make bench`; do not edit by hand) -->"
README_END = "<!-- bench:end -->"


def summary(r: dict) -> list[str]:
    """The measured-run sentence and the targets table: docs/bench.md's head and the README's block."""
    m = r["machine"]
    md = [
        f"Measured {r['date']} at commit `{r['commit']}`{' (quick run: fewer repetitions)' if r['quick'] else ''} on "
        f"{m.get('cpu', '?')}, {m.get('cores')} cores ({m.get('simd', '')}), TensorFlow {m.get('tensorflow')}, "
        f"oneDNN {'on' if m.get('onednn') else 'off'}. Machine load (1-min average) during the run: "
        f"{r['load']['min']}..{r['load']['max']}, so absolute seconds are noisy; every comparison is a ratio of "
        f"medians of interleaved repetitions in this run. Full run: {r['wall_seconds'] / 60:.1f} min.",
        "",
        "| item | measured | target | |",
        "|---|---|---|---|",
    ]
    return md + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in lines(r)]


def markdown(r: dict) -> str:
    m = r["machine"]
    md = ["# Benchmark", "", "<!-- Generated by `make bench` (python -m bench). Do not edit: run it again. -->", ""]
    md += summary(r)
    md += ["", "## GPU", ""]
    if m.get("gpus"):
        md.append(f"Measured on {m.get('gpu_name', 'a GPU')} (the figures above).")
    else:
        md.append("This run saw no GPU. The GPU figures come from `make gpu-check` (bench/gpu.py; on PyTorch "
                  "where TensorFlow is not installed) and stand in the README's GPU section. On a GPU the step "
                  "runs there and `--precision mixed` computes in float16; tests/test_precision.py holds the "
                  "CPU-vs-GPU equivalence tests (marked gpu), skipped without a GPU.")
    md += _details(r)
    return "\n".join(md) + "\n"


def _details(r: dict) -> list[str]:
    md = []
    if "steps" in r:
        md += ["", "## 1. The gradient-ascent step", "",
               "GFLOP per step = 2 x the forward pass's convolution FLOPs up to the tapped layer (the input "
               "gradient costs about what the forward pass costs); the ceiling is a 2048x2048 float32 numpy "
               "matmul timed interleaved with the steps.", "",
               "| model | s/step | s/step, BN not folded | GFLOP | GFLOP/s | of matmul |",
               "|---|---|---|---|---|---|"]
        for s in r["steps"]["rows"]:
            md.append(f"| {s['model']} {s['layer']} | {s['seconds_per_step']:.3f} | "
                      f"{s['seconds_per_step_unfolded_bn']:.3f} "
                      f"({s['bn_folding_speedup']:.2f}x) | {s['gflop_per_step']} | {s['gflops']:.0f} | "
                      f"{_pct(s['fraction_of_matmul'])} |")
        if "settings" in r["steps"]:
            st = r["steps"]["settings"]
            md += ["", "TensorFlow settings (EfficientNet-Lite0 step, each in its own process, processes alternated; "
                   + st["note"] + "):", "",
                   "| process settings | BN folded | BN not folded |", "|---|---|---|"]
            for k in ("tensorflow_defaults", "dreamvid"):
                md.append(f"| {k} | {st[k]['folded']:.3f} s | {st[k]['unfolded']:.3f} s |")
            md.append(f"\nThe step as dreamvid runs it is {st['speedup_vs_tf_defaults_unfolded']:.2f}x faster than the "
                      "same step with TensorFlow's defaults and the network as loaded. (These processes ran at another "
                      "moment than the table above, so their seconds differ with the load; compare within a table.)")
        for model, p in r["steps"].get("profiles", {}).items():
            md += ["", f"Where one {model} step goes (tf.profiler, {p['ms_per_step_in_kernels']} ms in kernels per "
                   "step, profiling included), by op type and by layer:", "",
                   "| op | ms/step | share | | layer | ms/step | share |", "|---|---|---|---|---|---|---|"]
            for o, n in zip(p["top_ops"], p.get("top_layers", [])):
                md.append(f"| {o['op']} | {o['ms']} | {_pct(o['share'])} | | {n['layer']} | {n['ms']} | "
                          f"{_pct(n['share'])} |")
        misses = [s for s in r["steps"]["rows"] if s["hit"] is False]
        for s in misses:
            md.append(f"\n**Miss: {s['model']}** reaches {_pct(s['fraction_of_matmul'])} of the matmul rate, "
                      f"target {_pct(s['target_fraction'])} "
                      f"({s['target_fraction'] / s['fraction_of_matmul']:.2f}x short). "
                      + WHY.get(s["model"], "") + _flopless(r["steps"].get("profiles", {}).get(s["model"])))
    if "still" in r:
        s = r["still"]
        e = s["equivalence"]
        md += ["", "## 2. Still", "",
               f"{s['image']}, preset `{s['preset']}` ({', '.join(f'{k}={v}' for k, v in s['settings'].items())}), "
               f"{s['reps']} interleaved repetitions. Cold = a fresh process's cost after the model is loaded "
               "(dreamvid: network rewrite + one trace; (b): one trace per octave shape); warm = run again.", "",
               "| loop | seconds | traces per run |", "|---|---|---|"]
        md += [f"| {k} | {v:.2f} | {s['traces_per_run'].get(k, '')} |" for k, v in s["seconds"].items()]
        md += ["", f"Same result: each reference's step applied to the input of every one of dreamvid's "
               f"{e['steps_compared']} steps differs from dreamvid's step by "
               + "; ".join(f"{k}: mean {v['mean_px']:.4f} px, 99th percentile {v['p99_px']:.4f} px, "
                           f"max {v['max_px']:.2f} px"
                           for k, v in e["per_step_px"].items())
               + " (0..255 units; one step moves a pixel by about 1.3 px; the rare large ones are ReLU6 units that "
               "float rounding flips). Whole runs change the image by "
               + ", ".join(f"{k} {v} px" for k, v in e["mean_change_px"].items())
               + ". DeepDream is chaotic, so whole runs drift apart from such differences: their distance to "
               "dreamvid's result is " + ", ".join(f"{k} {v} px" for k, v in e["mean_distance_to_dreamvid_px"].items())
               + " (the last is dreamvid with another seed: a different dream). "
               f"Verdict: {'same' if e['ok'] else 'DIFFERENT'}."]
        if not s["hit"]["vs_eager"] or not s["hit"]["vs_keras_example"]:
            md.append("\n**Miss:** " + WHY["still"])
    if "video" in r and "skipped" not in r["video"]:
        v = r["video"]
        settings = ", ".join(f"{k}={x}" for k, x in v["settings"].items())
        md += ["", "## 3. Video", "", f"{v['clip']}, preset `{v['preset']}` ({settings}). "
               "After the first frame dreamvid dreams frame_iterations x frame_num_octave steps per frame, starting "
               "from "
               "the warped previous dream; reference (b) dreams every frame from scratch with the full settings, which "
               "is most of the difference (not a faster step). (b) is timed without decoding, flow or encoding."]
    if "coherence" in r:
        c = r["coherence"]
        md += ["", "## 6. Coherence on every kind of footage", "",
               f"bench/clips.py clips at {c['size'][0]}x{c['size'][1]} (real footage, real_*: at its own size), "
               f"{c['frames']} frames, preset `{c['preset']}`, "
               "measured by `dreamvid coherence` (render/measure.py). vs independent: the first "
               f"{c['independent_frames']} frames against the same frames dreamed with `--flow none`. Long-term: "
               "frame t against t-6 by the direct source flow. Strength: mean |output - source|. s/frame: frames "
               "after the first (see docs/coherence.md for the method, ablations and the before/after). In "
               "brackets: a perfectly coherent dream of the same strength (the photo dreamed once and filmed "
               "along the clip's camera path), the floor of a ratio.", "",
               "| kind | vs source | vs independent | long-term vs source | strength later/first | first/median "
               "| p90/p10 | brightness range | s/frame |", "|---|---|---|---|---|---|---|---|---|"]
        for x in c["rows"]:
            s = x["strength"]
            o = x.get("oracle")
            ind = f"{x['vs_independent']:.3f}" if "vs_independent" in x else ""
            ind += f" ({o['vs_independent']:.3f})" if o else ""
            long_term = f"{x['long_term']:.2f}x" + (f" ({o['long_term']:.2f}x)" if o else "")
            md.append(f"| {x['kind']} | {x['vs_source']:.2f}x | {ind} | {long_term} | "
                      f"{s['later_over_first']:.2f} | {s['first_over_median']:.2f} | {s['p90_over_p10']:.2f} | "
                      f"{x['brightness']['range']:.2f} | {x['seconds_per_frame']:.3f} |")
        md += _file_table(c)
    if "memory" in r:
        md += ["", "## 4. Memory", "",
               f"Peak RSS of a fresh process; {r['memory']['iterations_per_octave']} iterations per "
               "octave (the peak comes with the first full-size step), tiles of 512 px."]
    if "startup" in r and "breakdown" in r["startup"]:
        md += _startup_details(r["startup"])
    if "backends" in r and "skipped" not in r["backends"]:
        md += _backends_details(r["backends"])
    if "looks" in r:
        md += _looks_details(r["looks"])
    return md


def _looks_details(o: dict) -> list[str]:
    """Section 11: what each preset's dream looks like to the judge, and the techniques' cost
    (bench/looks.py; the pictures and what was tried are in docs/looks.md)."""
    c = o["cost"]
    md = ["", "## 11. The DeepDream look", "",
          f"One float32 step of efficientnet_lite0 (block5c_out) at {c['size']} with lapnorm "
          f"{c['techniques']['lapnorm']}, decorrelate {c['techniques']['decorrelate']:g} and transform "
          f"{c['techniques']['transform']:g} over the plain step, interleaved:", "",
          "| backend | plain | with the techniques | ratio |", "|---|---|---|---|"]
    md += [f"| {b} | {x['seconds_per_step']:.4f} s | {x['with_techniques']:.4f} s | {x['ratio']:.2f}x |"
           for b, x in c["backends"].items()]
    if "skipped" in o:
        return md + ["", f"The judge's measures: not measured ({o['skipped']})."]
    md += ["", f"Each preset's dream of {', '.join(o['photos'])} at {o['size']} px (tuned on "
           f"{', '.join(o['tuned_on'])}), judged by EfficientNet-Lite1, which did not dream (bench/judge.py): the "
           "animal and dog classes' share of its top-5 probability, the dream's energy in fine chroma, and for a "
           "class dream on how many photos the class is its top-1 on the picture and on the picture shrunk to a "
           "third and back. Pictures and what was tried: [looks.md](looks.md).", "",
           "| preset | animal share | dog share | fine chroma | class top-1 |", "|---|---|---|---|---|"]
    md += [f"| {row['label']} | {row['animal']:.2f} | {row['dog']:.2f} | {row['fine_chroma']:.3f} | "
           + (f"{row['class_top1']} of {row['of']} |" if "class_top1" in row else "— |") for row in o["rows"]]
    return md


def _backends_details(b: dict) -> list[str]:
    """Section 10: the backends side by side (bench/backends.py)."""
    md = ["", "## 10. Backends: TensorFlow and PyTorch", "",
          "One float32 step per bundled network at its default layer, 512x384 (one tile), the two backends' "
          "repetitions interleaved; `auto` is what `--backend auto` chose for that network in the same process "
          "(it times both at 512x384). The AVX2 rows ran in a child process with oneDNN and ATen capped at AVX2 "
          "(`ONEDNN_MAX_CPU_ISA=AVX2`, `ATEN_CPU_CAPABILITY=avx2`) on the same CPU: a proxy for an AVX2 CPU, whose "
          "caches and clocks differ.", "",
          "| CPU | network | TensorFlow | PyTorch | PyTorch / TensorFlow speed | auto | auto vs today's step | load |",
          "|---|---|---|---|---|---|---|---|"]
    for where, label in (("native", "this CPU"), ("avx2", "AVX2 (emulated)")):
        part = b.get(where, {})
        for row in part.get("rows", []):
            sec = row["seconds_per_step"]
            md.append(f"| {label} | {row['model']} ({row['layer']}) | {sec['tensorflow']:.3f} s | {sec['torch']:.3f} s "
                      f"| {row['torch_speedup']:.2f}x | {row['auto']['backend']} | {row['auto_vs_today']:.2f}x "
                      f"| {part.get('load', '?')} |")
    return md


def _file_table(c: dict) -> list[str]:
    """The file a user plays, per kind: frames and file against the source, file over frames now and
    before issue 24, the size against the crf-18 encode before, and saturation over the frames'."""
    files = [(x["kind"], x["file"]) for x in c["rows"] if "file" in x] + ([("zoom", c["zoom"])] if "zoom" in c else [])
    if not files:
        return []
    md = ["", "The file a user plays (issue 24): the frames encoded as `dreamvid video` encodes them (mp4: "
          "H.264 yuv420p, crf 18) and as before issue 24, each measured with `coherence --frames`; a zoom "
          "against the camera's known motion. Size: over the crf-18 encode before; a GIF's over the GIF before "
          "issue 24 (ffmpeg's palette and error-diffusion dither). Saturation: mean HSV saturation over the "
          "frames'.", "",
          "| kind | frames vs source | mp4 vs source | mp4 / frames (before) | yuv444p / frames | GIF / frames "
          "(before) | size vs crf 18 | GIF size vs before | saturation (before) |", "|---|---|---|---|---|---|---|---|---|"]
    for kind, f in files:
        m, b = f["mp4"], f["before"]
        vs = (f"{m['frames_vs_source']:.2f}x", f"{m['vs_source']:.2f}x") if "vs_source" in m else ("", "")
        md.append(f"| {kind} | {vs[0]} | {vs[1]} | {m['over_frames']:.2f}x ({b['over_frames']:.2f}x) | "
                  f"{f['yuv444p']['over_frames']:.2f}x | {f['gif']['over_frames']:.2f}x "
                  f"({f['gif_before']['over_frames']:.2f}x) | {m['bytes'] / b['bytes']:.2f}x | "
                  f"{f['gif']['bytes'] / f['gif_before']['bytes']:.2f}x | "
                  f"{m['saturation_vs_frames']:.2f} ({b['saturation_vs_frames']:.2f}) |")
    return md


PHASES = {"import": "import TensorFlow, Keras, dreamvid", "network_ready": "network ready (built or from the cache)",
          "dreamer_and_precision": "precision auto and the Dreamer", "trace": "trace the step",
          "first_step": "first step", "second_step": "second step (for scale)"}


def _startup_details(s: dict) -> list[str]:
    """Section 5: where a fresh process's time goes, and before/after when measured (--against)."""
    b = s["breakdown"]
    md = ["", "## 5. Start-up", "",
          f"A fresh process per run (bench/startup.py BREAKDOWN: `classic`, a 365-px image, one tile), "
          f"median seconds of {b['runs']} runs per column, the columns alternated. Model ready and traced = "
          "network + precision + trace + first step (target <= 1.0 s with the cache warm).", "",
          "| phase | no cache | cache warm |", "|---|---|---|"]
    for k, label in PHASES.items():
        if k in b["cache_warm"]["phases_s"]:
            md.append(f"| {label} | {b['no_cache']['phases_s'][k]:.3f} | {b['cache_warm']['phases_s'][k]:.3f} |")
    md.append(f"| **model ready and traced** | {b['no_cache']['model_ready_and_traced_s']:.3f} | "
              f"**{b['cache_warm']['model_ready_and_traced_s']:.3f}** |")
    if "whole_process" in s:
        w = s["whole_process"]
        md += ["", f"The whole `dreamvid image astronaut.jpg -p classic --max-size 512` as a user runs it (wall time "
               f"of a fresh process, cache warm) took {w['seconds']['dreamvid']:.2f} s against "
               f"{w['seconds']['keras_example_script']:.2f} s for the Keras-example-structured script "
               f"(bench/startup.py KERAS_SCRIPT) = {w['speedup']:.2f}x (target {w['target']}x), "
               f"{w['rounds']} alternated rounds."]
    if "newcomer" in s:
        md += _newcomer_details(s["newcomer"])
    a = s.get("against")
    if a:
        before = a["baseline"]["commit"]
        md += ["", f"Before/after in the same run (`--against`: the checkout at `{before}`; {a['rounds']} rounds, "
               "each tree a fresh process, alternated; cache warm; the Keras-example script once a round):", "",
               f"| | before (`{before}`) | after |", "|---|---|---|"]
        for k, label in PHASES.items():
            if k in a["after"]["phases_s"] and k != "import":
                md.append(f"| {label} | {a['before']['phases_s'][k]:.3f} | {a['after']['phases_s'][k]:.3f} |")
        md.append(f"| **model ready and traced** | {a['before']['model_ready_and_traced_s']:.3f} | "
                  f"**{a['after']['model_ready_and_traced_s']:.3f}** |")
        md.append(f"| import TensorFlow, Keras, dreamvid | {a['before']['phases_s']['import']:.3f} | "
                  f"{a['after']['phases_s']['import']:.3f} |")
        md.append(f"| whole `image -p classic` 512 px | {a['before']['whole_process_s']:.2f} | "
                  f"{a['after']['whole_process_s']:.2f} |")
        md.append(f"| vs the Keras-example script ({a['keras_example_script_s']:.2f} s) | "
                  f"{a['before']['speedup_vs_keras_example']:.2f}x | **{a['after']['speedup_vs_keras_example']:.2f}x** |")
    return md


def _flopless(profile) -> str:
    """A sentence on the profiled kernels that do no convolution FLOPs (elementwise, pooling)."""
    if not profile:
        return ""
    others = [o for o in profile["top_ops"] if "Conv" not in o["op"]]
    if not others:
        return ""
    share = sum(o["share"] for o in others)
    return (f" In this run's profile, kernels that do no convolution FLOPs ({', '.join(o['op'] for o in others[:4])}"
            f"{', ...' if len(others) > 4 else ''}) take {_pct(share)} of the kernel time.")


# Why a target is missed, from the profiles (bench/steps.py op_breakdown) and the measurements.
WHY = {
    "efficientnet_lite0": (
        "EfficientNet-Lite0 is 1x1 and depthwise convolutions on thin, high-resolution activations: little "
        "arithmetic per byte moved, so its step is bound by memory bandwidth, not by the FMA units a matmul keeps "
        "busy. The profile shows it: the biggest single kernels are the early layers at full resolution (block2a's "
        "1x1 expansion to 96 channels at 192x256, the stem's input gradient with its 3 output channels), and the "
        "elementwise ReLU6/ReLU6Grad/BiasAdd passes count no FLOPs at all. The reference machine of "
        "shared/reference/README.md (AVX-512, 207 GFLOP/s matmul) had 29% for the same step. "
        "Levers left: fusing Conv+Bias+ReLU6 (grappler's remapper "
        "does, but its fused kernel is slower here: see the settings table), a hand-written input gradient for the "
        "stem, or a GPU."),
    "inception_v3 (random weights)": (
        "Most of its time is in dense convolutions (profile), yet the forward convolutions take longer than "
        "their input gradients, which do the same FLOPs: oneDNN's forward NHWC kernels on this AVX2 CPU run well "
        "below the matmul rate (its blocked-layout mode, TF_ENABLE_MKL_NATIVE_FORMAT=0, was tried and is slower). "
        "Its deeper convolutions (the 1x7/7x1 ones of mixed4 and mixed5) also work on small grids, about 22x30 at "
        "this input, where per-call overheads weigh more."),
    "still": (
        "dreamvid's step is the same TensorFlow computation as the references' (they use the same loss, octaves and "
        "jitter, as they must to be compared), so its lead comes from tracing once instead of once per octave, from "
        "the folded batch norms and from running compiled. The references share the process and so dreamvid's "
        "TensorFlow settings (oneDNN on, remapper off), which speed up the eager loop too; the settings table in "
        "section 1 shows what those are worth on their own."),
}


def write_docs(root, r: dict) -> None:
    """docs/bench.md in full, and the summary between the README's bench markers."""
    doc = root / "docs" / "bench.md"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(markdown(r))
    write_between(root / "README.md", README_START, README_END, summary(r))
    print("wrote docs/bench.md and the README's benchmark table")


def write_between(path, start: str, end: str, lines: list[str]) -> bool:
    """Replace what stands between the marker lines `start` and `end` of the file at `path` by
    `lines`; the rest of the file is kept byte for byte. False (nothing written) without both markers."""
    text = path.read_text()
    if start not in text or end not in text.split(start, 1)[1]:
        return False
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + tail)
    return True


def commit_of(root) -> str:
    """The short hash of HEAD in `root`, "+changes" when tracked files differ from it; "unknown" outside git."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=root).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=root).stdout.strip()
        return head + ("+changes" if dirty else "") if head else "unknown"
    except OSError:
        return "unknown"
