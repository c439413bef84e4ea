"""`homeloc-evaluate loops`: the runtime's loop closure over sequence benchmarks, judged frame by frame.

Loop 1 (:func:`run_sequence`) runs the product path exactly as a SLAM system calls it: for every
frame in order (map, then queries, then distractors) ``Frontend.extract`` (one pass: keypoints and
the global descriptor; or ``GlobalDescriptor`` too with ``--places-model places|ONNX``), then
``LoopClosureDetector.detect`` and ``add_keyframe``; it records each frame's reported loop
and every candidate the detector verified (accepted or not) with its acceptance score, plus the
time of the whole step and the map's bytes. Loop 2 (:func:`score_sequence`, pure) judges the
loops against the ground truth and sweeps the acceptance score (``min_confidence``) into a
precision-recall curve; the sweep is exact because the detector keeps the accepted candidate with
the highest confidence and nothing it does later depends on what it accepted.

Judging (docs/evaluate.md): a loop from a query to a map keyframe is right when the keyframe is
one of the query's positives; to an earlier query keyframe when the two share a positive; a loop
to a distractor keyframe, or reported on a distractor frame, is false. Loops reported while the
map is being built are listed but not scored (the format has no ground truth among map frames).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from homeloc.data_synthesis.formats.loops import LoopSequence, load_loop_sequence
from homeloc.eval.config import LoopsConfig, prepare_out, set_threads
from homeloc.eval.errors import EvalError
from homeloc.eval.plots import plot_pr
from homeloc.eval.report import markdown_table, write_json, write_pairs_csv, write_table
from homeloc.runtime.io import read_image
from homeloc.train import metrics as M

log = logging.getLogger(__name__)

SWEEP = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # min_confidence values in the trade-off table


@dataclass
class FrameRecord:
    """What loop 1 saw on one frame (kf_id = frame index)."""

    index: int
    phase: str
    name: str
    loop: int | None
    confidence: float | None
    inliers: int
    score: float | None
    ms: float
    verifications: list = field(default_factory=list)  # Verification of each candidate verified


# ------------------------------------------------------------------------------------ loop 1
# options passed to the detector as given; None: the runtime's default
DETECTOR_OPTIONS = ("min_confidence", "min_inliers", "min_inlier_ratio", "min_spread", "temporal_k", "descriptor_bits")  # fmt: skip


def detector_options(config: LoopsConfig) -> dict:
    opts = {"exclude_recent": config.exclude_recent, "verify_rotation": config.verify_rotation}
    for name in DETECTOR_OPTIONS:
        if getattr(config, name) is not None:
            opts[name] = getattr(config, name)
    return opts


def run_sequence(seq: LoopSequence, config: LoopsConfig) -> tuple[list[FrameRecord], dict]:
    """Run the runtime over the sequence; (one record per frame, map stats)."""
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.loop_closure import LoopClosureDetector
    from homeloc.runtime.places import GlobalDescriptor

    one_pass = config.places_model == "frontend"  # the frontend's own global output, no place model
    frontend = Frontend(config.keypoints_model, threads=config.threads, global_descriptor=one_pass)
    place_model = None if config.places_model in (None, "places") else config.places_model
    places = "frontend" if one_pass else GlobalDescriptor(place_model, threads=config.threads)
    det = LoopClosureDetector(places, frontend, K=seq.K, **detector_options(config))
    records = []
    for i, frame in enumerate(tqdm(seq.frames, desc=f"loops {seq.name}", unit="frame", leave=False)):
        image = read_image(frame.path)
        t0 = time.perf_counter()
        features = frontend.extract(image)
        desc = features.global_descriptor if one_pass else places.describe(image)[0]
        loop = det.detect(desc, features=features) if len(det) else None
        det.add_keyframe(i, desc, features=features)
        ms = (time.perf_counter() - t0) * 1000
        records.append(FrameRecord(i, frame.phase, frame.name, None if loop is None else loop.kf_id,
                                   None if loop is None else loop.confidence, 0 if loop is None else loop.inliers,
                                   None if loop is None else loop.score, ms, list(det.last_verifications)))  # fmt: skip
    stats = vars(det.stats())
    stats["config"] = det.config
    return records, stats


# ------------------------------------------------------------------------------------ loop 2
def judge(seq: LoopSequence, frame: int, keyframe: int) -> bool | None:
    """Is a loop from ``frame`` to ``keyframe`` right? None for map frames (not scored)."""
    a, b = seq.frames[frame], seq.frames[keyframe]
    if a.phase == "map":
        return None
    if a.phase == "distractors" or b.phase == "distractors":
        return False
    if b.phase == "map":
        return keyframe in a.positives
    return bool(a.positives & b.positives)


def best_passed(record: FrameRecord):
    """The verification the detector would accept at a low enough min_confidence (None if none
    passed the floors)."""
    passed = [v for v in record.verifications if v.passed]
    return max(passed, key=lambda v: v.confidence) if passed else None


def score_sequence(seq: LoopSequence, records: list[FrameRecord]) -> dict:
    """Precision, recall, R@100P, the PR curve over min_confidence, false loops, sweep rows."""
    scored = [r for r in records if r.phase != "map"]
    revisit = np.array([bool(seq.frames[r.index].positives) for r in scored])
    loops = [r for r in scored if r.loop is not None]
    right = [r for r in loops if judge(seq, r.index, r.loop)]
    false = [r for r in loops if not judge(seq, r.index, r.loop)]
    conf, correct = [], []
    for r in scored:
        v = best_passed(r)
        conf.append(-np.inf if v is None else v.confidence)
        correct.append(v is not None and bool(judge(seq, r.index, v.kf_id)))
    conf, correct = np.array(conf), np.array(correct)
    precision, recall = M.pr_curve_top1(conf, correct, revisit)
    finite = np.isfinite(np.sort(conf)[::-1])
    precision, recall = precision[finite], recall[finite]
    true_conf = conf[correct]
    false_conf = conf[np.isfinite(conf) & ~correct]
    return {
        "frames": len(records), "map": seq.count("map"), "queries": seq.count("queries"),
        "distractors": seq.count("distractors"), "revisits": int(revisit.sum()),
        "loops": len(loops), "right": len(right), "false": len(false),
        "precision": len(right) / len(loops) if loops else None,
        "recall": len(right) / int(revisit.sum()) if revisit.any() else None,
        "R@100P": M.recall_at_full_precision(precision, recall) if len(precision) else 0.0,
        "max_false_confidence": float(false_conf.max()) if len(false_conf) else None,
        "min_right_confidence": float(true_conf.min()) if len(true_conf) else None,
        "ms_per_frame": float(np.median([r.ms for r in records])),
        "ms_per_frame_mean": float(np.mean([r.ms for r in records])),
        "map_loops_unscored": sum(r.loop is not None for r in records if r.phase == "map"),
        "false_loops": [_loop_row(seq, r) for r in false],
        "sweep": sweep(seq, scored, conf, correct, revisit),
        "curve": {"precision": precision.tolist(), "recall": recall.tolist()},
    }  # fmt: skip


def sweep(seq, scored, conf, correct, revisit) -> list[dict]:
    """Precision / recall / false loops at each min_confidence of SWEEP (same temporal filter)."""
    rows = []
    for t in SWEEP:
        accepted = conf >= t
        n, tp = int(accepted.sum()), int((accepted & correct).sum())
        rows.append({"min_confidence": t, "loops": n, "false": n - tp, "precision": tp / n if n else None,
                     "recall": tp / int(revisit.sum()) if revisit.any() else None})  # fmt: skip
    return rows


def _loop_row(seq: LoopSequence, r: FrameRecord) -> dict:
    kf = seq.frames[r.loop]
    return {"frame": r.index, "name": f"{r.phase}/{r.name}", "keyframe": r.loop, "keyframe_name": f"{kf.phase}/{kf.name}",
            "confidence": r.confidence, "score": r.score, "inliers": r.inliers}  # fmt: skip


# ------------------------------------------------------------------------------------- report
COLUMNS = [
    ("frames", "frames", "d"), ("revisits", "revisits", "d"), ("distractors", "distractors", "d"),
    ("loops", "loops", "d"), ("right", "right", "d"), ("false", "false", "d"),
    ("precision", "precision", ".3f"), ("recall", "recall", ".3f"), ("R@100P", "R@100P", ".3f"),
    ("max_false_confidence", "max false conf.", ".3f"), ("min_right_confidence", "min right conf.", ".3f"),
    ("ms_per_frame", "ms/frame", ".1f"), ("map_kb", "map KB", ".1f"),
]  # fmt: skip


def run_loops(config: LoopsConfig) -> Path:
    """Evaluate every sequence of ``config.data``; writes summary.json, table.md, pr.png,
    false_loops.csv, frames.csv, verifications.csv and config.yaml into ``config.out``."""
    out = Path(config.out)
    if not config.data:
        raise EvalError("no sequence given (--data DIR [DIR ...])")
    prepare_out(out, config, "loops")
    set_threads(config.threads)
    summary, curves, frames, checks, falses = {}, {}, [], [], []
    for spec in config.data:
        seq = load_loop_sequence(spec)
        records, stats = run_sequence(seq, config)
        s = score_sequence(seq, records)
        s["map_kb"] = stats["total_bytes"] / 1024
        s["map_stats"] = {k: v for k, v in stats.items() if k != "config"}
        s["detector"] = stats["config"]
        summary[seq.name] = s
        curves[seq.name] = (np.array(s["curve"]["precision"]), np.array(s["curve"]["recall"]))
        falses += [{"sequence": seq.name, **row} for row in s["false_loops"]]
        frames += [_frame_row(seq, r) for r in records]
        checks += [{"sequence": seq.name, "frame": r.index, "name": r.name, **vars(v),
                    "right": judge(seq, r.index, v.kf_id)} for r in records for v in r.verifications]  # fmt: skip
    write_json(out / "summary.json", summary)
    plot_pr(out / "pr.png", curves)
    write_pairs_csv(out / "false_loops.csv", falses or [{"sequence": "", "frame": ""}])
    write_pairs_csv(out / "frames.csv", frames)
    write_pairs_csv(out / "verifications.csv", checks or [{"sequence": "", "frame": ""}])
    write_table(out / "table.md", loops_table(summary))
    return out


def _frame_row(seq: LoopSequence, r: FrameRecord) -> dict:
    return {"sequence": seq.name, "frame": r.index, "phase": r.phase, "name": r.name, "loop": r.loop,
            "right": None if r.loop is None else judge(seq, r.index, r.loop), "confidence": r.confidence,
            "inliers": r.inliers, "ms": r.ms}  # fmt: skip


def loops_table(summary: dict) -> str:
    rows = [{"sequence": name, **s} for name, s in summary.items()]
    parts = ["## Loop closure (detect + add_keyframe per frame, the runtime defaults unless set)", "",
             markdown_table(rows, COLUMNS, ["sequence"]), ""]  # fmt: skip
    parts += ["### Trade-off: min_confidence (the acceptance score) swept on the logged candidates", ""]
    sweep_rows = [{"sequence": n, **row} for n, s in summary.items() for row in s["sweep"]]
    parts += [markdown_table(sweep_rows, [("min_confidence", "min_confidence", ".2f"), ("loops", "loops", "d"),
              ("false", "false", "d"), ("precision", "precision", ".3f"), ("recall", "recall", ".3f")],
              ["sequence"]), ""]  # fmt: skip
    false = [(n, f) for n, s in summary.items() for f in s["false_loops"]]
    parts += [f"### False loops: {len(false)}", ""]
    parts += [f"- {n}: {f['name']} -> {f['keyframe_name']} (confidence {f['confidence']:.3f}, "
              f"{f['inliers']} inliers, retrieval {f['score']:.3f})" for n, f in false] or ["none"]  # fmt: skip
    return "\n".join(parts) + "\n"
