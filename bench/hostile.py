"""python -m bench.hostile [--only GROUP,...] [--json FILE]: the hostile-input sweep of issue 25.

Every case of the issue and more of each class, each run as the real `dreamvid` command in a
child process: hostile numbers, special files, plans that grow without bound, video frames of
absurd size, nesting and encodings, interrupts, and the messages of class 6. A case is CLEAN
when it ends as it should: a refusal is exactly one `Error:` line (or one `Interrupted.` /
`Terminated.` line) with the documented exit code, no traceback, within its time limit; a
case that should work exits 0. Each child's peak memory (ru_maxrss, its reaped children
included: ffmpeg) is measured; a refused case must stay under MAX_REFUSED_RSS.

Inputs are made in a temporary folder from the bundled samples and the bundled ffmpeg (one
16000x16000 PNG-in-MKV frame, silent and black clips, pipes, sockets, links, big keyframe
files); nothing is downloaded. Takes about 5 minutes on 2 busy cores.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_REFUSED_RSS = 1 << 30  # bytes: every refusal stays under 1 GB
REFUSE_S = 30.0  # s: a refusal before any model loads (the CLI's import is ~1-3 s on a busy machine)
MODEL_S = 90.0  # s: a refusal or a tiny render after TensorFlow and the model loaded
TINY = ["-i", "1", "--num-octave", "1", "--max-size", "64"]  # the least dreaming a render can do


@dataclass
class Case:
    group: str  # the class: numbers, files, plans, frames, nesting, interrupts, messages
    name: str
    argv: list[str]  # after `dreamvid`; {d} is the folder of made inputs
    code: int = 2  # the exit code expected (0: a result expected)
    words: str = ""  # in the one line
    limit: float = REFUSE_S
    stop: tuple[str, float] | None = None  # ("INT" | "TERM", seconds after the start)
    env: dict = field(default_factory=dict)


@dataclass
class Outcome:
    group: str
    name: str
    clean: bool
    code: int | None
    seconds: float
    peak_mb: float
    line: str
    why: str = ""
    stderr: str = ""  # its tail, where the case was not clean


# ---- the inputs ---------------------------------------------------------------------------------------------------

def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_inputs(d: Path) -> None:
    """Every file the cases name, in `d`."""
    shutil.copy(ROOT / "samples" / "chelsea.jpg", d / "photo.jpg")
    shutil.copy(ROOT / "samples" / "bunny.mp4", d / "clip.mp4")
    (d / "folder").mkdir()
    (d / "folder.png").mkdir()  # an existing folder named like a picture (-o)
    os.mkfifo(d / "fifo.jpg")
    for name in ("fifo.mp4", "fifo.toml", "fifo.png", "fifo.mp3", "fifo.keras", "fifo.pth"):
        os.mkfifo(d / name)
    for name, target in (("zero.jpg", "/dev/zero"), ("urandom.png", "/dev/urandom"), ("zero.toml", "/dev/zero"),
                         ("zero.mp4", "/dev/zero"), ("urandom.mp3", "/dev/urandom"), ("dangling.jpg", "nowhere.jpg"),
                         ("fifolink.jpg", "fifo.jpg"), ("loop1.jpg", "loop2.jpg"), ("loop2.jpg", "loop1.jpg"),
                         ("oloop1.png", "oloop2.png"), ("oloop2.png", "oloop1.png"), ("ozero.png", "/dev/zero"),
                         ("dloop1", "dloop1")):
        os.symlink(target, d / name)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(d / "sock.jpg"))
    s.close()
    (d / "unreadable.jpg").write_bytes((d / "photo.jpg").read_bytes())
    os.chmod(d / "unreadable.jpg", 0)
    _keyframes(d)
    _presets(d)
    _media(d)


def _keyframes(d: Path) -> None:
    kf = "[[keyframe]]\ntime = {t}\nzoom = {z}\n"
    (d / "kf10k.toml").write_text("".join(kf.format(t=i * 0.02, z=1.01) for i in range(10_000)))
    (d / "kf10k_expr.toml").write_text("".join(kf.format(t=i * 0.02, z='"1.01+0.01*sin(t)"') for i in range(10_000)))
    (d / "kf100k.toml").write_text("".join(kf.format(t=i * 0.02, z=1.01) for i in range(100_000)))
    (d / "kf_1e9.toml").write_text(kf.format(t=0, z=1.1) + kf.format(t="1e9", z=1.1))
    (d / "kf_23h.toml").write_text(kf.format(t=0, z=1.1) + kf.format(t=80_000, z=1.1))
    (d / "kf_bigint.toml").write_text(kf.format(t=0, z="1" + "0" * 400))
    (d / "kf_bigtime.toml").write_text(kf.format(t="1" + "0" * 400, z=1.1))
    (d / "kf_expr400.toml").write_text(kf.format(t=0, z='"' + "1" * 400 + '*t"') + kf.format(t=2, z=1.1))
    (d / "kf_5000digits.toml").write_text(kf.format(t=0, z="1" * 5000))
    (d / "kf_deep.toml").write_text("[[keyframe]]\ntime = 0\nzoom = " + "[" * 5000 + "]" * 5000 + "\n")
    (d / "kf_deep_table.toml").write_text("[[keyframe]]\ntime = 0\nlayers = " + "{a=" * 10_000 + "1" + "}" * 10_000)
    (d / "kf_dotted.toml").write_text("[[keyframe]]\ntime = 0\nlayers." + ".".join(["a"] * 10_000) + " = 1\n")
    latin = "# caf\u00e9 au lait\n" + kf.format(t=0, z=1.1) + kf.format(t=2, z=1.2)
    (d / "kf_latin1.toml").write_bytes(latin.encode("latin-1"))
    (d / "kf_utf16.toml").write_bytes(latin.encode("utf-16"))
    (d / "kf_bom.toml").write_bytes(b"\xef\xbb\xbf" + latin.encode("utf-8"))  # UTF-8 with a BOM: fine
    (d / "kf_utf32.toml").write_bytes(latin.encode("utf-32"))
    (d / "kf_binary.toml").write_bytes(bytes(range(256)) * 64)
    (d / "kf_9mb.toml").write_text(kf.format(t=0, z=1.1) + "#" * (9 << 20) + "\n")
    (d / "kf_longkey.toml").write_text(kf.format(t=0, z=1.1) + "k" * 1_000_000 + " = 1\n")
    (d / "kf_longeasing.toml").write_text(kf.format(t=0, z=1.1) + 'easing = "' + "e" * 1_000_000 + '"\n')


def _presets(d: Path) -> None:
    (d / "p_fps.toml").write_text('[zoom]\nfps = "1e100000000"\n')
    (d / "p_fps_num.toml").write_text("[zoom]\nfps = 1e308\n")
    (d / "p_bigint.toml").write_text("[dream]\nstep = 1" + "0" * 400 + "\n")
    (d / "p_bigint_iter.toml").write_text("[dream]\niterations = 1" + "0" * 400 + "\n")
    (d / "p_bigweight.toml").write_text("[dream.layers]\nblock4c_out = 1" + "0" * 400 + "\n")
    (d / "p_5000.toml").write_text("[dream]\nseed = " + "1" * 5000 + "\n")
    (d / "p_deep.toml").write_text("[dream]\nlayers = " + "[" * 10_000 + "]" * 10_000 + "\n")
    (d / "p_dotted.toml").write_text("[dream]\nlayers." + ".".join(["a"] * 10_000) + " = 1\n")
    (d / "p_latin1.toml").write_bytes("# r\u00e9glages\n[dream]\nstep = 0.02\n".encode("latin-1"))
    (d / "p_utf16.toml").write_bytes("[dream]\nstep = 0.02\n".encode("utf-16"))
    (d / "p_big.toml").write_bytes(b"# " + b"x" * (9 << 20) + b"\n")


def _media(d: Path) -> None:
    run = [ffmpeg(), "-v", "error", "-y"]
    subprocess.run(run + ["-f", "lavfi", "-i", "color=c=black:s=16000x16000:r=1", "-frames:v", "1", "-c:v", "png",
                          str(d / "huge.mkv")], check=True)
    subprocess.run(run + ["-f", "lavfi", "-i", "testsrc=s=320x180:r=25", "-t", "1", "-pix_fmt", "yuv420p",
                          str(d / "silent.mp4")], check=True)
    subprocess.run(run + ["-f", "lavfi", "-i", "color=c=black:s=320x180:r=25", "-t", "4", "-pix_fmt", "yuv420p",
                          str(d / "black.mp4")], check=True)
    subprocess.run(run + ["-f", "lavfi", "-i", "color=c=black:s=320x180", "-frames:v", "1", str(d / "black.png")],
                   check=True)
    subprocess.run(run + ["-f", "lavfi", "-i", "sine=f=440:d=2", str(d / "song.wav")], check=True)
    subprocess.run(run + ["-f", "lavfi", "-i", "color=c=black:s=16000x16000", "-frames:v", "1", str(d / "huge.png")],
                   check=True)
    _png_bomb(d / "bomb.png", 50_000, 50_000)
    clip = (d / "clip.mp4").read_bytes()
    (d / "cut.mp4").write_bytes(clip[: len(clip) // 3] if clip[4:8] != b"ftyp" else clip[:2000])
    (d / "text.mp4").write_text("not a video\n")
    subprocess.run(run + ["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "0.5", "-f", "lavfi", "-i",
                          "color=s=64x48", "-frames:v", "0", "-map", "0", "-map", "1", str(d / "empty.mp4")],
                   check=False, capture_output=True)  # ffmpeg words a clip of no frames as ENOSPC: not ours


def _png_bomb(path: Path, w: int, h: int) -> None:
    """A valid little PNG whose header claims w x h (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


# ---- the cases ----------------------------------------------------------------------------------------------------

def cases() -> list[Case]:
    return [*_numbers(), *_files(), *_plans(), *_frames(), *_nesting(), *_interrupts(), *_messages(), *_studio()]


# One request to the studio's app (its worker stopped: a job is only checked), from a child process.
STUDIO = """
import json, sys, warnings
warnings.simplefilter("ignore")  # starlette's own deprecation notes are not dreamvid's lines
from pathlib import Path
from fastapi.testclient import TestClient
from dreamvid.web.jobs import Studio
from dreamvid.web.server import create_app
d = Path(sys.argv[1])
client = TestClient(create_app(Studio(d / "studio")), base_url="http://127.0.0.1:7860")
body = Path(sys.argv[2]).read_text()
name = "clip.mp4" if '"mode": "video"' in body else "photo.jpg"
token = client.post("/api/uploads", content=(d / name).read_bytes(), headers={"X-Filename": name}).json()
body = body.replace("TOKEN", token["upload"])
r = client.post("/api/jobs", content=body.encode(), headers={"content-type": "application/json"})
error = r.json().get("error") if r.headers.get("content-type", "").startswith("application/json") else r.text
print(f"Error: HTTP {r.status_code}: {error}" if r.status_code >= 400 else f"HTTP {r.status_code}", file=sys.stderr)
sys.exit(2 if 400 <= r.status_code < 500 else 1 if r.status_code >= 500 else 0)
"""
STUDIO_BODIES = {
    "zoom fps 1e100000000": '"mode": "zoom", "params": {"fps": "1e100000000"}',
    "step a 400-digit int": '"mode": "image", "params": {"step": 1' + "0" * 400 + "}",
    "seed a 5000-digit int": '"mode": "image", "params": {"seed": ' + "1" * 5000 + "}",
    "layer weight 1e400": '"mode": "image", "layers": {"block4c_out": 1e400}',
    "layer weight 400 digits": '"mode": "image", "layers": {"block4c_out": 1' + "0" * 400 + "}",
    "video start 390 digits": '"mode": "video", "params": {"start": "' + "1" * 390 + '"}',
    "toml fps 1e100000000": '"mode": "zoom", "toml": "[zoom]\\nfps = \\"1e100000000\\"\\n"',
    "toml step 400 digits": '"mode": "image", "toml": "[dream]\\nstep = 1' + "0" * 400 + '\\n"',
    "toml nested 10000 deep": '"mode": "image", "toml": "[dream]\\nlayers = ' + "[" * 10_000 + "]" * 10_000 + '\\n"',
    "toml dotted 10000 deep": '"mode": "image", "toml": "[dream]\\nlayers.' + ".".join("a" * 10_000) + ' = 1\\n"',
    "params nested 50000 deep": '"mode": "image", "params": ' + "[" * 50_000 + "]" * 50_000,
    "body of 1 MB": '"mode": "image", "params": {"classes": "' + "x" * 1_000_000 + '"}',
    "vary 70 values": '"mode": "sweep", "params": {"vary": "seed=' + ",".join(map(str, range(70))) + '"}',
    "checkpoints 300 digits": '"mode": "timelapse", "params": {"checkpoints": "40,' + "9" * 300 + '"}',
    "classes 300 digits": '"mode": "image", "params": {"classes": "' + "1" * 300 + '"}',
}


def _studio() -> list[Case]:
    out = []
    for i, (name, body) in enumerate(STUDIO_BODIES.items()):
        out.append(Case("studio", name, ["@studio", f"body{i}.json", '{"upload": "TOKEN", ' + body + "}"], 2))
    return out


def _numbers() -> list[Case]:
    z = ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--dry-run"]
    v = ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4"]
    big, huge = "1" + "0" * 400, "1" * 5000
    out = [Case("numbers", f"zoom --fps {f}", [*z, "--fps", f], 2, "fps") for f in
           ("1e100000000", "1e-100000000", "1e10000000", huge, big, "1/0", "-24", "nan", "1e308", "24" * 40,
            "30000/1001" + "0" * 5000)]
    out += [Case("numbers", f"video --fps {f[:12]}", [*v, "--fps", f], 2, "fps") for f in ("1e100000000", huge)]
    out += [Case("numbers", f"timelapse --fps {f[:12]}", ["timelapse", "{d}/photo.jpg", "-o", "{d}/t.mp4", "--fps", f],
                 2, "fps") for f in ("1e100000000", huge)]
    out += [Case("numbers", f"video --{w} {what}", [*v, f"--{w}", val], 2, w) for w in ("start", "end")
            for what, val in (("5000 digits", huge), ("f+5000 digits", "f" + huge), ("1:...5000", "1:" + huge),
                              ("unicode digit", "f\u00b2"), ("1e9999", "1e9999"))]
    out += [Case("numbers", f"zoom --zoom {what}", [*z, "--zoom", val], 2, "zoom") for what, val in
            (("400-digit int", big), ("5000 digits", huge), ("expr with 400 digits", big[:300] + "*t"),
             ("1e999", "1e999"), ("9**9**9", "9**9**9"))]
    out += [Case("numbers", f"video --step {what}", [*v, "--step", val], 2, "step") for what, val in
            (("400 digits", big), ("5000 digits", huge), ("expr 400 digits", big + "*t"))]
    out += [Case("numbers", f"video --blend {what}", [*v, "--blend", val], 2, "blend") for what, val in
            (("400 digits", big), ("expr 1e400", "1e400*t"))]
    out += [Case("numbers", "image --layer NAME:400digits", ["image", "{d}/photo.jpg", "-o", "{d}/i.png", "-l",
                                                             "block4c_out:" + big], 2, "block4c_out"),
            Case("numbers", "image --layer NAME/5000digits", ["image", "{d}/photo.jpg", "-o", "{d}/i.png", "-l",
                                                              "block4c_out/" + huge], 2, "block4c_out"),
            Case("numbers", "image --layer NAME/unicode digit", ["image", "{d}/photo.jpg", "-o", "{d}/i.png", "-l",
                                                                 "block4c_out/\u00b2"], 2, "channel"),
            Case("numbers", "image --class 5000 digits", ["image", "{d}/photo.jpg", "-o", "{d}/i.png", "--class",
                                                          huge], 2, "classes"),
            Case("numbers", "image --seed 400 digits", ["image", "{d}/photo.jpg", "-o", "{d}/i.png", "--seed", big],
                 2, "seed"),
            Case("numbers", "sweep --vary seed=5000 digits", ["sweep", "{d}/photo.jpg", "-o", "{d}/s.png", "--vary",
                                                              "seed=" + huge], 2, "seed"),
            Case("numbers", "sweep --vary channel=0-5000digits", ["sweep", "{d}/photo.jpg", "-o", "{d}/s.png",
                                                                  "--vary", "channel=0-" + huge], 2, "channel"),
            Case("numbers", "timelapse --checkpoints 5000 digits", ["timelapse", "{d}/photo.jpg", "-o", "{d}/t.mp4",
                                                                    "--checkpoints", "40," + huge], 2, "checkpoints"),
            Case("numbers", "zoom --pan 400 digits", [*z, "--pan", big + ",0"], 2, "pan"),
            Case("numbers", "env DREAMVID_MAX_PIXELS=1e999", ["image", "{d}/photo.jpg", "-o", "{d}/i.png"], 2,
                 "DREAMVID_MAX_PIXELS", env={"DREAMVID_MAX_PIXELS": "1e999"})]
    img = ["image", "{d}/photo.jpg", "-o", "{d}/i.png"]
    out += [Case("numbers", f"image {flag} {what}", [*img, flag, val], 2) for flag in
            ("--iterations", "--num-octave", "--octave-scale", "--jitter", "--tile", "--tile-batch", "--max-loss",
             "--smooth", "--guide-weight", "--max-size") for what, val in (("400 digits", big), ("5000 digits", huge),
                                                                           ("1e400", "1e400"), ("nan", "nan"))]
    out += [Case("numbers", f"{cmd} {flag} {what}", [cmd, "{d}/photo.jpg", "-o", f"{{d}}/o{ext}", flag, val], 2)
            for cmd, ext, flag in (("timelapse", ".mp4", "--hold"), ("timelapse", ".mp4", "--fade"),
                                   ("timelapse", ".png", "--cell-size"), ("timelapse", ".png", "--columns"),
                                   ("zoom", ".mp4", "--frames"), ("zoom", ".mp4", "--color-hold"),
                                   ("zoom", ".mp4", "--interpolate"))
            for what, val in (("400 digits", big), ("1e308", "1e308"))]
    out += [Case("numbers", f"video {flag} 400 digits", [*v, flag, big], 2) for flag in
            ("--cadence", "--interpolate", "--crf", "--frame-iterations", "--temporal-weight")]
    out += [Case("numbers", f"preset {name}", [*z, "--preset", f"{{d}}/{name}.toml"], 2, words) for name, words in
            (("p_fps", "fps"), ("p_fps_num", "fps"), ("p_bigint", "step"), ("p_bigint_iter", "iterations"),
             ("p_bigweight", "block4c_out"), ("p_5000", "TOML"))]
    out += [Case("numbers", f"keyframes {name}", [*z, "--keyframes", f"{{d}}/{name}.toml"], 2, words)
            for name, words in (("kf_bigint", "zoom"), ("kf_bigtime", "time"), ("kf_expr400", "zoom"),
                                ("kf_5000digits", "TOML"))]
    return out


def _files() -> list[Case]:
    out = []
    special = ("fifo.jpg", "zero.jpg", "urandom.png", "fifolink.jpg", "sock.jpg", "loop1.jpg", "dangling.jpg",
               "folder", "photo.jpg/x.jpg", *(("unreadable.jpg",) if os.geteuid() != 0 else ()))  # root reads it
    for name in special:
        out.append(Case("files", f"image {name}", ["image", f"{{d}}/{name}", "-o", "{d}/o.png"], 2))
        out.append(Case("files", f"image --mask {name}", ["image", "{d}/photo.jpg", "-o", "{d}/o.png", "--mask",
                                                         f"{{d}}/{name}"], 2, "mask"))
        out.append(Case("files", f"image --guide {name}", ["image", "{d}/photo.jpg", "-o", "{d}/o.png", "--guide",
                                                          f"{{d}}/{name}"], 2, "guide"))
    for name in ("fifo.jpg", "zero.jpg", "urandom.png", "loop1.jpg"):
        out.append(Case("files", f"zoom {name}", ["zoom", f"{{d}}/{name}", "-o", "{d}/z.mp4"], 2))
        out.append(Case("files", f"sweep {name}", ["sweep", f"{{d}}/{name}", "-o", "{d}/s.png", "--vary",
                                                   "step=0.01,0.02"], 2))
    for name in ("fifo.toml", "zero.toml", "folder", "loop1.jpg"):
        out.append(Case("files", f"zoom --keyframes {name}", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4",
                                                             "--keyframes", f"{{d}}/{name}", "--dry-run"], 2))
        out.append(Case("files", f"image --preset {name}", ["image", "{d}/photo.jpg", "-o", "{d}/o.png",
                                                           "--preset", f"{{d}}/{name}" + ("/x.toml" * (name == "folder"))],
                        2, "preset"))
    for name in ("fifo.mp4", "zero.mp4", "loop1.jpg", "sock.jpg"):
        out.append(Case("files", f"video {name}", ["video", f"{{d}}/{name}", "-o", "{d}/v.mp4"], 2, "video"))
        out.append(Case("files", f"video --mask {name}", ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4", "--mask",
                                                         f"{{d}}/{name}"], 2, "mask"))
        out.append(Case("files", f"coherence {name}", ["coherence", "{d}/clip.mp4", f"{{d}}/{name}"], 2))
    for name in ("fifo.mp3", "urandom.mp3", "loop1.jpg", "folder"):
        out.append(Case("files", f"zoom --audio {name}", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--audio",
                                                         f"{{d}}/{name}", "--dry-run"], 2, "audio"))
    out += [Case("files", "image /proc/kcore (128 TB)", ["image", "/proc/kcore", "-o", "{d}/o.png"], 2, "kcore"),
            Case("files", "image /dev/null", ["image", "/dev/null", "-o", "{d}/o.png"], 2, "device"),
            Case("files", "--keyframes /proc/self/environ", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4",
                                                             "--keyframes", "/proc/self/environ", "--dry-run"], 2),
            Case("files", "image a 5000-byte path", ["image", "{d}/" + "x" * 5000 + ".jpg", "-o", "{d}/o.png"], 2),
            Case("files", "-o a 5000-byte name", ["image", "{d}/photo.jpg", "-o", "{d}/" + "x" * 5000 + ".png"], 2),
            Case("files", "--save-cells a FIFO", ["sweep", "{d}/photo.jpg", "-o", "{d}/s.png", "--vary", "seed=0,1",
                                                  "--save-cells", "{d}/fifo.png"], 2, "named pipe"),
            Case("files", "--save-cells a loop", ["sweep", "{d}/photo.jpg", "-o", "{d}/s.png", "--vary", "seed=0,1",
                                                  "--save-cells", "{d}/oloop1.png"], 2, "loop"),
            Case("files", "image -o a loop without extension", ["image", "{d}/photo.jpg", "-o", "{d}/dloop1"], 2,
                 "loop"),
            Case("files", "video -o a folder-of-frames loop", ["video", "{d}/clip.mp4", "-o", "{d}/dloop1"], 2,
                 "loop")]
    out += [Case("files", "image --weights fifo", ["image", "{d}/photo.jpg", "-o", "{d}/o.png", "--weights",
                                                   "{d}/fifo.pth", *TINY], 2, "weights", MODEL_S),
            Case("files", "image --model fifo.keras", ["image", "{d}/photo.jpg", "-o", "{d}/o.png", "--model",
                                                       "{d}/fifo.keras"], 2, "model"),
            Case("files", "-o symlink loop", ["image", "{d}/photo.jpg", "-o", "{d}/oloop1.png"], 2, "loop"),
            Case("files", "-o link to /dev/zero", ["image", "{d}/photo.jpg", "-o", "{d}/ozero.png"], 2, "device"),
            Case("files", "-o an existing FIFO", ["image", "{d}/photo.jpg", "-o", "{d}/fifo.png"], 2, "pipe"),
            Case("files", "-o under a file", ["image", "{d}/photo.jpg", "-o", "{d}/photo.jpg/o.png"], 2, "is a file"),
            Case("files", "-o deep under a file", ["video", "{d}/clip.mp4", "-o", "{d}/photo.jpg/a/b/v.mp4"], 2,
                 "is a file"),
            Case("files", "--work-dir a FIFO", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--work-dir",
                                                "{d}/fifo.png", "--frames", "2", *TINY], 2, "", MODEL_S),
            Case("files", "--work-dir under a file", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--work-dir",
                                                      "{d}/photo.jpg/w", "--frames", "2", *TINY], 2, "", MODEL_S)]
    return out


def _plans() -> list[Case]:
    z = ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--dry-run", "--json"]
    many = ",".join(str(i) for i in range(20_000))  # 109 KB: an argument is at most 128 KB (MAX_ARG_STRLEN)
    return [
        Case("plans", "keyframes 10k --dry-run", [*z, "--keyframes", "{d}/kf10k.toml"], 0, limit=120),
        Case("plans", "keyframes 10k expressions --dry-run", [*z, "--keyframes", "{d}/kf10k_expr.toml"], 0, limit=120),
        Case("plans", "keyframes 100k", [*z, "--keyframes", "{d}/kf100k.toml"], 2, "keyframes"),
        Case("plans", "last keyframe at 1e9 s", [*z, "--keyframes", "{d}/kf_1e9.toml"], 2, "time"),
        Case("plans", "last keyframe at 80000 s, 24 fps", [*z, "--keyframes", "{d}/kf_23h.toml"], 2, "frames"),
        Case("plans", "--vary with 20k values", ["sweep", "{d}/photo.jpg", "-o", "{d}/s.png", "--vary",
                                                 "seed=" + many], 2, "values"),
        Case("plans", "--vary channel=0-63 x 300", ["sweep", "{d}/photo.jpg", "-o", "{d}/s.png", "--vary",
                                                    "channel=" + ",".join(["0-63"] * 300)], 2, "values"),
        Case("plans", "--vary 9x9 cells", ["sweep", "{d}/photo.jpg", "-o", "{d}/s.png", "--vary",
                                           "seed=" + ",".join(map(str, range(9))), "--vary",
                                           "step=" + ",".join(f"0.0{i}" for i in range(1, 10))], 2, "cells"),
        Case("plans", "zoom --duration 86400 --fps 1000", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--duration",
                                                           "86400", "--fps", "1000"], 2, "frames"),
        Case("plans", "zoom --frames 10**9", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--frames", str(10 ** 9)],
             2, "frames"),
        Case("plans", "--checkpoints 5000 values", ["timelapse", "{d}/photo.jpg", "-o", "{d}/t.mp4",
                                                    "--checkpoints", ",".join(str(i) for i in range(1, 5001))], 2,
             "checkpoints"),
        Case("plans", "--workers 10000 (2 cells)", ["sweep", "{d}/photo.jpg", "-o", "{d}/w.png", "--vary",
                                                    "seed=0,1", "--workers", "10000", *TINY], 0, limit=300),
    ]


def _frames() -> list[Case]:
    return [
        Case("frames", "video 16000x16000 PNG-in-MKV", ["video", "{d}/huge.mkv", "-o", "{d}/v.mp4"], 2, "megapixels"),
        Case("frames", "video 16000x16000 --max-size 96", ["video", "{d}/huge.mkv", "-o", "{d}/v.mp4", "--max-size",
                                                           "96"], 2, "megapixels"),
        Case("frames", "--mask 16000x16000 clip", ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4", "--mask",
                                                   "{d}/huge.mkv"], 2, "megapixels"),
        Case("frames", "coherence of a 16000x16000 clip", ["coherence", "{d}/huge.mkv", "{d}/huge.mkv"], 2,
             "megapixels"),
        Case("frames", "image a 16000x16000 PNG (256 MP)", ["image", "{d}/huge.png", "-o", "{d}/o.png"], 2,
             "megapixels"),
        Case("frames", "--guide a 50000x50000 PNG bomb", ["image", "{d}/photo.jpg", "-o", "{d}/o.png", "--guide",
                                                          "{d}/bomb.png"], 2, "megapixels"),
        Case("frames", "video --mask a PNG bomb", ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4", "--mask",
                                                   "{d}/bomb.png"], 2, "megapixels"),
        Case("frames", "--audio a 16000x16000 clip", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--audio",
                                                      "{d}/huge.mkv", "--dry-run"], 2, "audio"),
        Case("frames", "video of 0 frames", ["video", "{d}/empty.mp4", "-o", "{d}/v.mp4"], 2),
        Case("frames", "video cut short (no moov)", ["video", "{d}/cut.mp4", "-o", "{d}/v.mp4"], 2),
        Case("frames", "text named .mp4", ["video", "{d}/text.mp4", "-o", "{d}/v.mp4"], 2),
        Case("frames", "a 1-px limit", ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4"], 2, "megapixels",
             env={"DREAMVID_MAX_VIDEO_PIXELS": "1"}),
        Case("frames", "a bad limit", ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4"], 2, "DREAMVID_MAX_VIDEO_PIXELS",
             env={"DREAMVID_MAX_VIDEO_PIXELS": "lots"}),
    ]


def _nesting() -> list[Case]:
    z = ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--dry-run"]
    out = [Case("nesting", f"keyframes {name}", [*z, "--keyframes", f"{{d}}/{name}.toml"], 2, words)
           for name, words in (("kf_deep", "levels"), ("kf_deep_table", "levels"), ("kf_dotted", "levels"),
                               ("kf_latin1", "UTF-8"), ("kf_utf16", "UTF-16"))]
    out.append(Case("nesting", "keyframes with a UTF-8 BOM", [*z, "--keyframes", "{d}/kf_bom.toml"], 0))
    out += [Case("nesting", f"keyframes {name}", [*z, "--keyframes", f"{{d}}/{name}.toml"], 2, words)
            for name, words in (("kf_utf32", "UTF-8"), ("kf_binary", "UTF-8"), ("kf_9mb", "MB"),
                                ("kf_longkey", "unknown key"), ("kf_longeasing", "easing"))]
    out += [Case("nesting", f"preset {name}", [*z, "--preset", f"{{d}}/{name}.toml"], 2, words)
            for name, words in (("p_deep", "levels"), ("p_dotted", "levels"), ("p_latin1", "UTF-8"),
                                ("p_utf16", "UTF-16"), ("p_big", "MB"))]
    return out


def _interrupts() -> list[Case]:
    render = ["image", "{d}/photo.jpg", "-o", "{d}/int.png", *TINY]
    out = []
    for sig, code in (("INT", 130), ("TERM", 143)):
        for delay in (0.03, 0.06, 0.1, 0.15, 0.3, 0.6, 1.2, 3.0):  # 0.03: within Python's own start (~40 ms)
            out.append(Case("interrupts", f"SIG{sig} at {delay} s", render, code, "", MODEL_S, (sig, delay)))
    return out


def _messages() -> list[Case]:
    return [
        Case("messages", "-o an existing folder named x.png", ["image", "{d}/photo.jpg", "-o", "{d}/folder.png",
                                                               *TINY], 0, limit=MODEL_S),
        Case("messages", "-o under a file", ["image", "{d}/photo.jpg", "-o", "{d}/photo.jpg/o.png"], 2, "is a file"),
        Case("messages", "--audio a silent video", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--audio",
                                                    "{d}/silent.mp4", "--dry-run"], 2, "without a soundtrack"),
        Case("messages", "--audio a JPEG", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--audio", "{d}/photo.jpg",
                                            "--dry-run"], 2, "still image"),
        Case("messages", "--audio a song", ["zoom", "{d}/photo.jpg", "-o", "{d}/z.mp4", "--audio", "{d}/song.wav",
                                            "--dry-run", "--json"], 0),
        Case("messages", "video --mask an all-black clip", ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4", "--mask",
                                                            "{d}/black.mp4"], 2, "black"),
        Case("messages", "image --mask an all-black image", ["image", "{d}/photo.jpg", "-o", "{d}/o.png", "--mask",
                                                             "{d}/black.png"], 2, "black"),
        Case("messages", "video -l X:0*t", ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4", "-l", "block4c_out:0*t"], 2,
             "0 at every frame"),
        Case("messages", "video -l X:0*t -l Y:0", ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4", "-l",
                                                   "block4c_out:0*t", "-l", "block5c_out:0"], 2, "0 at every frame"),
        Case("messages", "video -l X:max(0,t-100)", ["video", "{d}/clip.mp4", "-o", "{d}/v.mp4", "-l",
                                                     "block4c_out:max(0,t-100)"], 2, "0 at every frame"),
    ]


# ---- running one -------------------------------------------------------------------------------------------------

def run_case(case: Case, d: Path) -> Outcome:
    argv = [os.path.join(os.path.dirname(sys.executable), "dreamvid"), *(a.replace("{d}", str(d)) for a in case.argv)]
    if case.argv[0] == "@studio":  # a JSON body posted to the studio's app
        (d / case.argv[1]).write_text(case.argv[2])
        argv = [sys.executable, "-c", STUDIO, str(d), str(d / case.argv[1])]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **case.env}
    for name in ("z.mp4", "v.mp4", "o.png", "i.png", "s.png", "t.mp4", "w.png", "int.png"):
        (d / name).unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = _Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=d)
    if case.stop is not None:
        time.sleep(case.stop[1])
        proc.send_signal(getattr(signal, f"SIG{case.stop[0]}"))
    try:
        out, err = proc.communicate(timeout=case.limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return Outcome(case.group, case.name, False, None, time.perf_counter() - t0, 0.0, "", "timed out")
    seconds = time.perf_counter() - t0
    peak = _peak_rss(proc)
    return _judge(case, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), seconds, peak)


def _peak_rss(proc: subprocess.Popen) -> float:
    """The child's peak resident memory in MB, its reaped children (ffmpeg) included."""
    usage = getattr(proc, "rusage", None)
    if usage is not None:
        return usage.ru_maxrss / 1024
    return 0.0


class _Popen(subprocess.Popen):
    """Popen that keeps the rusage of wait4 (peak memory of the child and its reaped children)."""

    def _try_wait(self, wait_flags):
        try:
            pid, status, self.rusage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            pid, status = self.pid, 0
        return pid, status


def _judge(case: Case, code: int, out: str, err: str, seconds: float, peak: float) -> Outcome:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    why = []
    if "Traceback" in err:
        why.append("traceback" + ("" if "/dreamvid/" in err else " (in Python's own start-up: no dreamvid frame)"))
    if code != case.code:
        why.append(f"exit {code}, expected {case.code}" + (" (killed by the signal: no handler yet)"
                                                            if case.stop is not None and code < 0 and not err else ""))
    if case.code == 0:
        pass  # a result: warnings and notes may come before it
    elif case.stop is not None:
        if len(lines) != 1:
            why.append(f"{len(lines)} lines")
        elif not (last.startswith(("Interrupted", "Terminated")) or last.startswith("Error: ")):
            why.append("not one Interrupted/Terminated/Error line")
    else:
        if len(lines) != 1 or not last.startswith("Error: "):
            why.append(f"{len(lines)} lines" if len(lines) != 1 else "not an Error: line")
        if case.words and case.words.lower() not in last.lower():
            why.append(f"{case.words!r} not named")
        if peak * (1 << 20) > MAX_REFUSED_RSS:
            why.append(f"peak {peak:.0f} MB")
    return Outcome(case.group, case.name, not why, code, seconds, peak, last[:300] or out.strip()[-200:],
                   "; ".join(why), err[-3000:] if why else "")


# ---- the report ---------------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def summary(results: list[Outcome]) -> dict:
    refused = [r for r in results if r.code not in (0, None)]
    slowest = max(refused, key=lambda r: r.seconds, default=None)
    return {"cases": len(results), "clean": sum(r.clean for r in results),
            "refused_peak_mb": round(max((r.peak_mb for r in refused), default=0.0), 1),
            "slowest_refusal": {"name": slowest.name, "seconds": round(slowest.seconds, 2)} if slowest else None,
            "cpu": cpu_model(), "cores": os.cpu_count(), "load": round(os.getloadavg()[0], 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated groups: numbers, files, plans, frames, nesting, interrupts, "
                                       "messages")
    parser.add_argument("--json", type=Path, help="write every outcome and the summary here")
    args = parser.parse_args(argv)
    groups = set(args.only.split(",")) if args.only else None
    chosen = [c for c in cases() if groups is None or c.group in groups]
    results = []
    with tempfile.TemporaryDirectory(prefix="dreamvid-hostile-") as tmp:
        d = Path(tmp)
        make_inputs(d)
        for case in chosen:
            r = run_case(case, d)
            results.append(r)
            mark = "ok " if r.clean else "BAD"
            print(f"{mark} {r.group:10s} {r.name[:46]:46s} exit {r.code!s:4s} {r.seconds:6.2f} s {r.peak_mb:6.0f} MB  "
                  f"{r.line[:110]}{'  <- ' + r.why if r.why else ''}", flush=True)
        os.chmod(d / "unreadable.jpg", 0o600)
    s = summary(results)
    print(json.dumps(s, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": s, "cases": [asdict(r) for r in results]}, indent=1) + "\n")
    return 0 if s["clean"] == s["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
