"""Bad input and faults across the CLIs (issue #18): the exit code (2 bad usage, 1 failed run), one
line on stderr naming the option or file and the problem (no traceback unless --debug), and
nothing half-written left behind.

Every row of the table runs its CLI in a subprocess, as a user does. The CLIs that import torch at
start (synthesize, export, train: 3-7 s per start) run most rows in a subprocess only under
`-m slow`; the default run drives those rows in-process through the same ``main()`` (same parser,
same error path), so every row is checked in every run, and a few of them also in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

MODULES = {
    "synthesize": "homeloc.data_synthesis.cli",
    "evaluate": "homeloc.eval.cli",
    "export": "homeloc.export.cli",
    "train": "homeloc.train.cli",
}
HEAVY = {"synthesize", "export", "train"}  # import torch at start
ASSETS = ROOT / "runtime" / "assets"
UNWRITABLE = "/sys/homeloc-bad-input-test/out"  # mkdir refused even for root


@dataclass(frozen=True)
class Row:
    """One bad input: the CLI, its arguments ({name} = a path of the `data` fixture, {out} = this
    row's output folder), the exit code and a regex the one error line (or, for code 0, the
    output) must match."""

    id: str
    cli: str
    args: tuple[str, ...]
    code: int
    message: str
    subprocess_by_default: bool = False  # heavy CLIs: a few rows also in a subprocess by default
    check: str | None = None  # name of an extra check below

    @property
    def heavy(self) -> bool:
        return self.cli in HEAVY and not self.subprocess_by_default


def synth(*args: str) -> tuple[str, ...]:
    return ("pairs", "--out", "{out}", "--synth.size", "[48,64]", *args)


def matching(*args: str, data: str = "{pairs}") -> tuple[str, ...]:
    return ("matching", "--data", data, "--out", "{out}", *args)


def places(*args: str, data: str) -> tuple[str, ...]:
    return ("places", "--data", data, "--out", "{out}", *args)


ROWS = [
    # 1. false success: every numeric and enum option is checked at parse time
    Row("num-negative", "synthesize", synth("--num", "-1"), 2, r"--num: must be > 0, got -1", True),
    Row("num-zero", "synthesize", synth("--num", "0"), 2, r"--num: must be > 0, got 0"),
    Row("shard-size-negative", "synthesize", synth("--shard_size", "-3"), 2, r"--shard_size: must be > 0, got -3"),
    Row("shard-size-zero", "synthesize", synth("--shard_size", "0"), 2, r"--shard_size: must be > 0, got 0"),
    Row("workers-zero", "synthesize", synth("--workers", "0"), 2, r"--workers: must be > 0, got 0"),
    Row("workers-negative", "synthesize", synth("--workers", "-1"), 2, r"--workers: must be > 0, got -1"),
    Row("swap-probability", "synthesize", synth("--synth.swap", "7"), 2,
        r"--synth: swap is a probability and must be in \[0, 1\], got 7"),
    Row("image-format", "synthesize", synth("--image_format", "xyz"), 2,
        r"--image_format: must be one of '.jpg', '.png', got xyz"),
    Row("size-negative", "synthesize", ("pairs", "--out", "{out}", "--synth.size", "[-5,10]"), 2,
        r"--synth: size must be \(height, width\) >= 1, got \(-5, 10\)"),
    Row("seed-negative", "synthesize", synth("--seed", "-1"), 2, r"--seed: must be >= 0, got -1"),
    Row("resize-negative", "evaluate", matching("--methods", "orb", "--resize", "-1"), 2,
        r"--resize: must be >= 0, got -1"),
    Row("max-keypoints-zero", "evaluate", matching("--methods", "orb", "sift", "--max-keypoints", "0"), 2,
        r"--max-keypoints: must be > 0, got 0"),
    Row("threads-zero", "evaluate", matching("--methods", "orb", "--threads", "0"), 2,
        r"--threads: must be > 0, got 0"),
    Row("h-threshold-negative", "evaluate", matching("--methods", "orb", "--h-threshold", "-1"), 2,
        r"--h-threshold: must be > 0, got -1"),
    # optional options (X | None): the range and the value, not every Union subtype's error
    Row("refresh-below-above-one", "evaluate", ("longterm", "--data", "{out}", "--refresh-below", "2"), 2,
        r"--refresh-below: must be >= 0 and <= 1 or null, got 2 \(see"),
    Row("change-failures-zero", "evaluate", ("longterm", "--data", "{out}", "--change-failures", "0"), 2,
        r"--change-failures: must be > 0 and <= 1 or null, got 0 \(see"),
    Row("opset-too-old", "export", ("--checkpoint", "{evil}", "--kind", "keypoints", "--out", "{out}",
                                    "--opset", "12"), 2, r"--opset: must be >= 17, got 12"),  # fmt: skip
    # 3. valid photos accepted; one unreadable source image skipped and counted, --strict stops
    Row("jpeg-with-trailer", "synthesize", synth("--source", "folder:{trailer_src}", "--num", "2"), 0,
        r"2 samples written and verified$"),
    Row("one-unreadable-source", "synthesize",
        synth("--source", "folder:{bad_src}", "--num", "8", "--shard_size", "4"), 0,
        r"8 samples written and verified; 1 unreadable source images skipped", check="skipped"),
    Row("one-unreadable-source-strict", "synthesize",
        synth("--source", "folder:{bad_src}", "--num", "8", "--shard_size", "4", "--strict", "true"), 2,
        r"bad\.jpg: .*(truncated|not a readable image)"),
    # 4. one line where the docs promise one
    Row("1x1-image-orb-akaze", "evaluate", matching("--methods", "orb", "akaze", data="{tiny_pairs}"), 0,
        r"results in", check="summary"),
    Row("onnx-truncated", "evaluate", matching("--methods", "ours:{truncated_onnx}"), 1,
        r"ours: .*truncated\.onnx: not a loadable ONNX model"),
    Row("onnx-text", "evaluate", matching("--methods", "ours:{text_onnx}"), 1,
        r"ours: .*text\.onnx: not a loadable ONNX model"),
    Row("onnx-empty", "evaluate", matching("--methods", "ours:{empty_onnx}"), 1,
        r"ours: .*empty\.onnx: not a loadable ONNX model"),
    Row("onnx-text-places", "evaluate", places("--methods", "ours:{text_onnx}", data="{nopos}"), 1,
        r"ours: .*text\.onnx: not a loadable ONNX model"),
    Row("onnx-wrong-kind-matching", "evaluate", matching("--methods", "ours:{places_onnx}"), 1,
        r"places\.int8\.onnx: is a 'places' model \(homeloc\.kind\), expected 'keypoints'"),
    Row("onnx-wrong-kind-places", "evaluate", places("--methods", "ours:{keypoints_onnx}", data="{nopos}"), 1,
        r"keypoints\.int8\.onnx: is a 'keypoints' model \(homeloc\.kind\), expected 'places'"),
    Row("out-is-a-file-evaluate", "evaluate", ("matching", "--data", "{pairs}", "--methods", "orb",
                                               "--out", "{a_file}"), 1, r"--out .*a_file: exists and is not a folder"),  # fmt: skip
    Row("out-not-writable-evaluate", "evaluate", ("matching", "--data", "{pairs}", "--methods", "orb",
                                                  "--out", UNWRITABLE), 1, r"--out /sys/.*: cannot create the folder"),  # fmt: skip
    Row("out-is-a-file-synthesize", "synthesize", ("pairs", "--out", "{a_file}", "--num", "2"), 1,
        r"--out .*a_file: exists and is not a folder"),
    Row("out-not-writable-synthesize", "synthesize", ("pairs", "--out", UNWRITABLE, "--num", "2"), 1,
        r"--out /sys/.*: cannot create the folder"),
    Row("ground-truth-binary", "evaluate", places("--methods", "thumbnail", data="{binary_gt}"), 1,
        r"ground_truth\.csv: not a UTF-8 text file"),
    Row("cache-entry-truncated", "evaluate", matching("--methods", "orb", "--cache-dir", "{cache}"), 0,
        r"cache entry corrupt, recomputing", check="same_as_cached"),
    Row("unknown-preset", "train", ("fit", "--config", "{tiny_train}", "--config", "{bogus_preset}",
                                    "--trainer.default_root_dir", "{out}"), 2,  # fmt: skip
        r"homeloc-train fit: error: --model: unknown preset 'bogus'; choose one of"),
    # 5. no silent wrong numbers in places
    Row("no-positive-recall-is-null", "evaluate", places("--methods", "thumbnail", data="{nopos}"), 0,
        r"results in", check="recall_null"),
    Row("duplicate-query", "evaluate", places("--methods", "thumbnail", data="{dup_gt}"), 1,
        r"ground_truth\.csv:3: query 'q0\.png' is listed twice \(first on line 2\)"),
    # 7. never suggest weights_only=False
    Row("malicious-checkpoint", "export", ("--checkpoint", "{evil}", "--kind", "keypoints", "--out", "{out}"), 2,
        r"evil\.ckpt: not a homeloc checkpoint", True),
    # --debug shows the traceback
    Row("debug-traceback", "evaluate", matching("--methods", "ours:{text_onnx}", "--debug"), 1, r"Traceback",
        check="traceback"),
]  # fmt: skip


# --------------------------------------------------------------------------------------- inputs
def _image(path: Path, h: int = 120, w: int = 160, seed: int = 0, ext: str | None = None) -> Path:
    from homeloc.runtime.io import write_image

    rng = np.random.default_rng(seed)
    small = (rng.random((h // 8 + 1, w // 8 + 1, 3)) * 255).astype(np.uint8)
    img = np.kron(small, np.ones((8, 8, 1), np.uint8))[:h, :w]  # blocky texture: keypoints exist
    return write_image(path.with_suffix(ext) if ext else path, img)


def _places_root(root: Path, gt: bytes) -> str:
    for i in range(2):
        _image(root / "database" / f"d{i}.png", seed=10 + i)
        _image(root / "queries" / f"q{i}.png", seed=20 + i)
    (root / "ground_truth.csv").write_bytes(gt)
    return str(root)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad_input")
    _image(d / "pairs" / "a.png")
    (d / "pairs" / "pairs.txt").write_text("a.png a.png 1 0 0 0 1 0 0 0 1\n")
    from homeloc.runtime.io import write_image

    write_image(d / "pairs" / "tiny.png", np.full((1, 1, 3), 128, np.uint8))
    (d / "pairs" / "tiny_pairs.txt").write_text(
        "a.png a.png 1 0 0 0 1 0 0 0 1\ntiny.png tiny.png 1 0 0 0 1 0 0 0 1\n"
    )
    model = (ASSETS / "keypoints.int8.onnx").read_bytes()
    (d / "truncated.onnx").write_bytes(model[: len(model) // 2])
    (d / "text.onnx").write_text("this is not a model\n")
    (d / "empty.onnx").write_bytes(b"")
    (d / "a_file").write_text("precious")
    trailer = _image(d / "trailer_src" / "photo.jpg", 200, 260, seed=3)
    trailer.write_bytes(trailer.read_bytes() + b"\x00\x00\x00\x18ftypmp42" + bytes(4000))  # motion photo
    _image(d / "bad_src" / "good.jpg", 200, 260, seed=4)
    whole = _image(d / "bad_src" / "bad.jpg", 200, 260, seed=5).read_bytes()
    (d / "bad_src" / "bad.jpg").write_bytes(whole[: len(whole) // 2])  # cut in the middle of the scan
    (d / "bogus_preset.yaml").write_text(
        "model:\n  class_path: homeloc.train.keypoints.KeypointSystem\n  init_args:\n    preset: bogus\n"
    )
    import torch

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {d / 'pwned'}",))

    torch.save({"state_dict": {}, "x": Payload()}, d / "evil.ckpt")
    return {
        "pairs": str(d / "pairs" / "pairs.txt"),
        "tiny_pairs": str(d / "pairs" / "tiny_pairs.txt"),
        "truncated_onnx": str(d / "truncated.onnx"),
        "text_onnx": str(d / "text.onnx"),
        "empty_onnx": str(d / "empty.onnx"),
        "places_onnx": str(ASSETS / "places.int8.onnx"),
        "keypoints_onnx": str(ASSETS / "keypoints.int8.onnx"),
        "a_file": str(d / "a_file"),
        "trailer_src": str(d / "trailer_src"),
        "bad_src": str(d / "bad_src"),
        "binary_gt": _places_root(d / "binary_gt", b"query,positives\nq0.png,d0.png\n\xff\xfe\x00\x9c\n"),
        "dup_gt": _places_root(d / "dup_gt", b"query,positives\nq0.png,d0.png\nq0.png,\n"),
        "nopos": _places_root(d / "nopos", b"query,positives\nq0.png,\nq1.png,\n"),
        "evil": str(d / "evil.ckpt"),
        "tiny_train": str(ROOT / "configs" / "train" / "keypoints_tiny.yaml"),
        "bogus_preset": str(d / "bogus_preset.yaml"),
        "root": str(d),
    }


def _prepare(row: Row, data: dict[str, str], tmp: Path) -> dict[str, str]:
    values = {**data, "out": str(tmp / "out")}
    if row.check == "same_as_cached":  # a first run fills the cache; then one entry is cut short
        from homeloc.eval.cli import main as evaluate

        assert (
            evaluate(["matching", "--data", data["pairs"], "--methods", "orb", "--out", str(tmp / "first")])
            == 0
        )
        entry = next((tmp / "first" / "cache").rglob("*.npz"))
        entry.write_bytes(entry.read_bytes()[:100])
        values["cache"] = str(tmp / "first" / "cache")
    return values


# ------------------------------------------------------------------------------------- running
def _run_subprocess(row: Row, argv: list[str]) -> tuple[int, str, str]:
    env = {**os.environ, "WANDB_MODE": "disabled", "NO_ALBUMENTATIONS_UPDATE": "1"}
    p = subprocess.run([sys.executable, "-m", MODULES[row.cli], *argv], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    return p.returncode, p.stdout, p.stderr


def _run_in_process(row: Row, argv: list[str], capsys) -> tuple[int, str, str]:
    import importlib

    main = importlib.import_module(MODULES[row.cli]).main
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _check(row: Row, values: dict[str, str], code: int, stdout: str, stderr: str) -> None:
    assert code == row.code, (
        f"exit code {code}, expected {row.code}\nstdout: {stdout[-2000:]}\nstderr: {stderr[-3000:]}"
    )
    out = Path(values["out"])
    if row.check == "traceback":
        assert "Traceback" in stderr
        return
    assert "Traceback" not in stderr, stderr[-3000:]
    if row.code == 0:
        assert re.search(row.message, stdout + stderr, re.M), (stdout + stderr)[-3000:]
    else:
        errors = [line for line in stderr.splitlines() if ": error: " in line]
        assert len(errors) == 1, stderr[-3000:]  # one line
        assert re.search(row.message, errors[0]), errors[0]
        _nothing_half_written(out, row)
    assert not list(Path(values["root"]).rglob("*.tmp")) and not list(out.parent.rglob("*.tmp"))
    assert not (Path(values["root"]) / "pwned").exists(), "a checkpoint's code ran"
    assert Path(values["a_file"]).read_text() == "precious"
    if row.check == "skipped":
        manifest = json.loads((out / "manifest.json").read_text())
        assert list(manifest["skipped_sources"]) == [str(Path(values["bad_src"]) / "bad.jpg")]
    if row.check == "summary":
        assert set(json.loads((out / "summary.json").read_text())) == {"orb", "akaze"}
    if row.check == "recall_null":
        summary = json.loads((out / "summary.json").read_text())["thumbnail"]
        assert summary["R@1"] is None and summary["R@5"] is None and summary["AUC_PR"] is None
    if row.check == "same_as_cached":
        first = json.loads((out.parent / "first" / "summary.json").read_text())
        assert json.loads((out / "summary.json").read_text()) == first


def _nothing_half_written(out: Path, row: Row) -> None:
    """A failed run leaves no output folder, or (a run stopped while writing shards) only finished
    shards and a manifest that does not claim completeness; never a summary."""
    if not out.exists():
        return
    assert row.cli == "synthesize" and row.code == 2 and "strict" in row.id, sorted(out.rglob("*"))
    manifest = out / "manifest.json"
    assert not manifest.exists() or not json.loads(manifest.read_text())["complete"]
    assert not (out / "config.yaml").exists()


def _params(subprocess_run: bool):
    for row in ROWS:
        slow = subprocess_run and row.heavy
        if not subprocess_run and not row.heavy:
            continue  # runs in a subprocess by default already
        yield pytest.param(row, id=row.id, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("row", list(_params(subprocess_run=True)))
def test_cli_bad_input_in_a_subprocess(row: Row, data, tmp_path):
    values = _prepare(row, data, tmp_path)
    argv = [a.format(**values) for a in row.args]
    _check(row, values, *_run_subprocess(row, argv))


@pytest.mark.parametrize("row", list(_params(subprocess_run=False)))
def test_cli_bad_input_in_process(row: Row, data, tmp_path, capsys):
    """The rows of the torch-importing CLIs, through the same main() in this process (fast)."""
    values = _prepare(row, data, tmp_path)
    argv = [a.format(**values) for a in row.args]
    _check(row, values, *_run_in_process(row, argv, capsys))


# ----------------------------------------------------------------------- 2. no orphaned workers
def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_workers_die_with_a_killed_parent(tmp_path):
    """kill -9 of `homeloc-synthesize pairs --workers 2`: both workers end within seconds
    (before the fix they kept writing shards, then blocked forever on the result pipe)."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", MODULES["synthesize"], "pairs", "--out", str(out), "--num", "4000",
           "--shard_size", "4", "--workers", "2", "--synth.size", "[48,64]"]  # fmt: skip
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [k for k in _children(proc.pid) if _running(k)]
            if len(workers) >= 2 and list(out.glob("pairs-*.tar")):  # both working, shards landing
                break
            time.sleep(0.2)
        assert len(workers) >= 2, "the pool never started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_running(w) for w in workers):
            time.sleep(0.1)
        assert not [w for w in workers if _running(w)], "workers outlived their killed parent"
    finally:
        for w in workers:  # never leave this test's own processes behind
            if _running(w):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
