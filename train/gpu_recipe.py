"""One-GPU training recipe for the keypoint model, for a clean machine that has torch and lightning
and nothing else of ours (no network needed).

Here (the dev box), make the bundle once: `make gpu-bundle` (wheels of homeloc and of the few
dependencies that torch+lightning do not bring, the config, the precomputed pair shards and the
teacher cache; see docs/training.md, "GPU recipe"). There:

    python gpu_recipe.py --bundle BUNDLE --out OUT [--minutes 9] [--accelerator gpu] [--precision bf16-mixed]

installs the wheels into OUT/site (pip --target --no-index --no-deps: the machine's environment is
not touched), trains `BUNDLE/keypoints_gpu.yaml` for a fixed wall budget, and leaves
OUT/checkpoints/last.ckpt, OUT/model.pt (the network alone, KeypointNet.save), OUT/metrics.csv
(Lightning's CSV log) and OUT/throughput.json (steps, images, seconds). Only the standard library
is imported here: the script runs before anything of ours is installed. The same file is
`homeloc.train.gpu_recipe` inside the package.

With data made on the GPU machine (`make gpu-fly-bundle`, which fits the 64 MiB that travels with a
checkout to a lent machine):

    python train/gpu_recipe.py --bundle build/gpu_fly --config keypoints_gpu_fly.yaml --tree . \
        --out OUT --minutes 7 --probe-steps 60

Options after `--` go to `homeloc-train fit` and override the config, e.g. a continued run:
`--max-steps 550 -- --model.init_args.init_checkpoint init.pt --model.init_args.lr 5e-4`.

--tree: homeloc is imported from this source checkout (no wheel of ours: its model assets are
38 MB); --probe-steps: a short run first measures the machine's steps/s, and the real run's
max_steps is set so that the cosine learning-rate schedule ends with the time budget (with only
max_time, a run stopped by the clock never reaches the schedule's low learning rates).
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
    if (site / ".installed").is_file():
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
    (site / ".installed").write_text("\n".join(Path(w).name for w in wheels))


def link_tree(tree: Path, ns: Path) -> None:
    """ns/homeloc: the checkout's package folders linked under the namespace as pyproject.toml's
    `[tool.setuptools] package-dir` maps them (homeloc.<name> -> <folder>), its one owner."""
    import tomllib

    pkg = ns / "homeloc"
    if not (tree / "homeloc" / "__init__.py").is_file() or not (tree / "pyproject.toml").is_file():
        raise SystemExit(f"gpu_recipe: error: --tree {tree}: not a homeloc checkout (no homeloc/__init__.py)")
    dirs = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    pkg.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tree / "homeloc" / "__init__.py", pkg / "__init__.py")
    for name, folder in dirs.items():
        if name.count(".") != 1:  # "homeloc" itself is the copied __init__; deeper ones ride along
            continue
        link = pkg / name.partition(".")[2]
        if not link.is_symlink():
            link.symlink_to((tree / folder).resolve(), target_is_directory=True)


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
    bundle: Path,
    out: Path,
    minutes: float,
    accelerator: str,
    precision: str,
    batch: int,
    workers: int,
    config: str = "keypoints_gpu.yaml",
    max_steps: int | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    """`homeloc-train fit` on the bundle's config with the budget and output folder filled in;
    `extra` (e.g. `--model.init_args.lr 5e-4`) comes last, so it overrides the config."""
    m, s = divmod(int(round(minutes * 60)), 60)
    steps = ["--trainer.max_steps", str(max_steps)] if max_steps else []
    return [
        sys.executable, "-m", "homeloc.train.cli", "fit", "--config", str(bundle / config), *steps,
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
        *(extra or []),
    ]  # fmt: skip


def planned_steps(probe: dict, probe_wall_s: float, budget_s: float, margin: float = 0.92) -> int:
    """Steps that fit the budget at the probe's rate: the probe's start-up (wall minus training
    time: imports, workers, the teacher's weights) is paid again by the real run."""
    rate = probe["steps"] / max(probe["train_s"], 1e-9)
    startup = max(probe_wall_s - probe["train_s"], 0.0)
    return max(int(rate * (budget_s - startup) * margin), 1)


def collect(out: Path) -> dict:
    """Copy the newest CSV log to OUT/metrics.csv; return the run's throughput.json."""
    runs = sorted(glob.glob(str(out / "csv" / "version_*")), key=os.path.getmtime)
    if not runs:
        raise SystemExit(f"gpu_recipe: error: {out / 'csv'}: training wrote no log")
    if (Path(runs[-1]) / "metrics.csv").is_file():  # absent when fewer steps than log_every_n_steps
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
    p.add_argument("--config", default="keypoints_gpu.yaml", help="training config inside the bundle")
    p.add_argument("--tree", type=Path, help="import homeloc from this checkout instead of a wheel")
    p.add_argument(
        "--probe-steps", type=int, default=0, help="measure the rate first; set max_steps to the budget"
    )
    p.add_argument("--max-steps", type=int, default=0, help="a fixed step count instead of a probe")
    p.add_argument(
        "fit_args", nargs="*", help="after --: options for `homeloc-train fit` (override the config)"
    )
    a = p.parse_args(argv)
    if not 0 < a.minutes <= MAX_MINUTES:
        p.error(f"--minutes: must be in (0, {MAX_MINUTES}], got {a.minutes}")
    if not (a.bundle / a.config).is_file():
        p.error(f"--config: {a.bundle / a.config}: no such file (make gpu-bundle / gpu-fly-bundle)")
    if a.probe_steps < 0:
        p.error(f"--probe-steps: must be >= 0, got {a.probe_steps}")
    if a.max_steps < 0 or (a.max_steps and a.probe_steps):
        p.error(f"--max-steps: must be >= 0 and not given with --probe-steps, got {a.max_steps}")
    check_base()
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    paths = [str(out / "site"), str(a.bundle.resolve() / "pyextra")]
    if a.tree:
        link_tree(a.tree.resolve(), out / "ns")
        paths.insert(0, str(out / "ns"))
    if not a.skip_install:
        install_wheels(a.bundle.resolve(), out / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]),
           "WANDB_MODE": "disabled", "NO_ALBUMENTATIONS_UPDATE": "1"}  # fmt: skip
    bundle = a.bundle.resolve()
    t0 = time.time()
    steps = a.max_steps or None
    if a.probe_steps:
        probe_out = out / "probe"
        cmd = fit_command(bundle, probe_out, MAX_MINUTES, a.accelerator, a.precision, a.batch, a.workers,
                          a.config, a.probe_steps, a.fit_args)  # fmt: skip
        code = subprocess.run(cmd, cwd=bundle, env=env).returncode
        if code != 0:
            print(f"gpu_recipe: error: the probe run exited with {code}", file=sys.stderr)
            return code
        probe = collect(probe_out)
        steps = planned_steps(probe, time.time() - t0, a.minutes * 60)
        print(f"gpu_recipe: probe {probe['steps']} steps in {probe['train_s']:.1f} s of training "
              f"({time.time() - t0:.1f} s wall): max_steps {steps} for {a.minutes} min", flush=True)  # fmt: skip
        shutil.rmtree(probe_out / "checkpoints", ignore_errors=True)
    t1 = time.time()
    cmd = fit_command(bundle, out, a.minutes, a.accelerator, a.precision, a.batch, a.workers, a.config, steps,
                      a.fit_args)  # fmt: skip
    code = subprocess.run(cmd, cwd=bundle, env=env).returncode  # config paths are relative to the bundle
    if code != 0:
        print(f"gpu_recipe: error: training exited with {code}", file=sys.stderr)
        return code
    tp = collect(out)
    last = out / "checkpoints" / "last.ckpt"
    save = ("import sys; from homeloc.models.keypoints import KeypointNet; "
            "KeypointNet.from_checkpoint(sys.argv[1]).save(sys.argv[2])")  # fmt: skip
    # cwd = the bundle, as for training: `python -c` puts the working folder first on sys.path, and a
    # checkout's root holds a bare homeloc/ that would hide the linked tree (no homeloc.models).
    subprocess.run(
        [sys.executable, "-c", save, str(last), str(out / "model.pt")], cwd=bundle, env=env, check=True
    )
    print(json.dumps({"out": str(out), "max_steps": steps, "wall_s_fit": round(time.time() - t1, 1),
                      "wall_s_total": round(time.time() - t0, 1), **tp}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
