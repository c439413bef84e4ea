"""One-GPU training recipe for the keypoint model, for a clean machine that has torch and lightning
and nothing else of ours (no network needed).

Here (the dev box), make the bundle once: `make gpu-bundle` (wheels of homeloc and of the few
dependencies that torch+lightning do not bring, the config, the precomputed pair shards and the
teacher cache; see docs/training.md, "GPU recipe"). There:

    python gpu_recipe.py --bundle BUNDLE --out OUT [--minutes 9] [--accelerator gpu] [--precision bf16-mixed]

installs the wheels into OUT/site (pip --target --no-index --no-deps: the machine's environment is
not touched), trains `BUNDLE/keypoints_gpu.yaml` for a fixed wall budget, and leaves
OUT/checkpoints/last.ckpt, OUT/metrics.csv (Lightning's CSV log) and OUT/throughput.json (steps,
images, seconds). Only the standard library is imported here: the script runs before anything
of ours is installed. The same file is `homeloc.train.gpu_recipe` inside the package.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MAX_MINUTES = 9.0


def install_wheels(bundle: Path, site: Path) -> None:
    """Every wheel in BUNDLE/wheels into `site` (pip --target), offline and without dependency
    resolution: the bundle holds exactly what torch + lightning lack (Makefile GPU_DEPS)."""
    wheels = sorted(glob.glob(str(bundle / "wheels" / "*.whl")))
    if not wheels:
        raise SystemExit(f"gpu_recipe: error: {bundle / 'wheels'}: no wheels (make gpu-bundle)")
    if (site / "homeloc").is_dir():
        return  # installed by an earlier call with this --out
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--no-deps",
        "--target",
        str(site),
        *wheels,
    ]
    subprocess.run(cmd, check=True)


def check_base() -> None:
    """torch and lightning must be there already (they are the machine's, never ours to install)."""
    for mod in ("torch", "lightning"):
        try:
            __import__(mod)
        except ImportError:
            raise SystemExit(
                f"gpu_recipe: error: this machine lacks {mod}; the recipe expects torch and lightning"
            ) from None


def fit_command(
    bundle: Path, out: Path, minutes: float, accelerator: str, precision: str, batch: int, workers: int
) -> list[str]:
    """`homeloc-train fit` on the bundle's config with the budget and output folder filled in."""
    m, s = divmod(int(round(minutes * 60)), 60)
    return [
        sys.executable, "-m", "homeloc.train.cli", "fit", "--config", str(bundle / "keypoints_gpu.yaml"),
        "--trainer.accelerator", accelerator, "--trainer.precision", precision,
        "--trainer.max_time", f"00:00:{m:02d}:{s:02d}", "--trainer.default_root_dir", str(out),
        "--trainer.logger", json.dumps([{"class_path": "lightning.pytorch.loggers.CSVLogger",
                                          "init_args": {"save_dir": str(out), "name": "csv"}}]),
        "--trainer.callbacks", json.dumps([
            {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
             "init_args": {"dirpath": str(out / "checkpoints"), "save_last": True, "every_n_train_steps": 200,
                           "save_top_k": 0}},
            {"class_path": "homeloc.train.throughput.ImagesPerSecond"}]),
        "--data.init_args.batch_size", str(batch), "--data.init_args.num_workers", str(workers),
    ]  # fmt: skip


def collect(out: Path) -> dict:
    """Copy the newest CSV log to OUT/metrics.csv; return the run's throughput.json."""
    runs = sorted(glob.glob(str(out / "csv" / "version_*")), key=os.path.getmtime)
    if not runs:
        raise SystemExit(f"gpu_recipe: error: {out / 'csv'}: training wrote no log")
    shutil.copyfile(Path(runs[-1]) / "metrics.csv", out / "metrics.csv")
    tp = Path(runs[-1]) / "throughput.json"
    if tp.is_file():
        shutil.copyfile(tp, out / "throughput.json")
        return json.loads(tp.read_text())
    return {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="gpu_recipe.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--bundle", required=True, type=Path, help="folder made by `make gpu-bundle`")
    p.add_argument("--out", required=True, type=Path, help="checkpoint + metrics.csv go here")
    p.add_argument(
        "--minutes", type=float, default=MAX_MINUTES, help=f"wall budget of training (<= {MAX_MINUTES})"
    )
    p.add_argument("--accelerator", default="gpu")
    p.add_argument("--precision", default="bf16-mixed")
    p.add_argument("--batch", type=int, default=64, help="pairs per step")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers")
    p.add_argument(
        "--skip-install", action="store_true", help="homeloc is importable already (tests, dev box)"
    )
    a = p.parse_args(argv)
    if not 0 < a.minutes <= MAX_MINUTES:
        p.error(f"--minutes: must be in (0, {MAX_MINUTES}], got {a.minutes}")
    if not (a.bundle / "keypoints_gpu.yaml").is_file():
        p.error(f"--bundle: {a.bundle}: no keypoints_gpu.yaml (make gpu-bundle)")
    check_base()
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not a.skip_install:
        install_wheels(a.bundle.resolve(), out / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(out / "site"), os.environ.get("PYTHONPATH", "")]),
           "WANDB_MODE": "disabled", "NO_ALBUMENTATIONS_UPDATE": "1"}  # fmt: skip
    t0 = time.time()
    cmd = fit_command(a.bundle.resolve(), out, a.minutes, a.accelerator, a.precision, a.batch, a.workers)
    code = subprocess.run(cmd, cwd=a.bundle, env=env).returncode  # config paths are relative to the bundle
    if code != 0:
        print(f"gpu_recipe: error: training exited with {code}", file=sys.stderr)
        return code
    tp = collect(out)
    print(json.dumps({"out": str(out), "wall_s_total": round(time.time() - t0, 1), **tp}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
