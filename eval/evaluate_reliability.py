"""`homeloc-evaluate reliability`: does the frame reliability (and the pair confidence) predict
registration failure, and is it calibrated?

On homography pair sets mixed with synthesized failures (homeloc.data_synthesis.failures: dark,
blur, saturated, noise, covered lens, uniform; `--failure-share` of the pairs, seeded), the runtime
frontend extracts, matches and fits a homography per pair; a pair succeeds when its corners land
within 5 px of the ground truth. Reported: AUROC and expected calibration error (10 bins) of
min(reliability0, reliability1) and of the pair confidence against success, the mean reliability
and the cause named per failure kind, a reliability diagram (reliability.png), every pair (pairs.csv).
Use another `--seed` than the model's fit (the default 1 vs 0) for pairs it has not seen.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from homeloc.eval.config import ReliabilityConfig, prepare_out, set_threads
from homeloc.runtime import reliability as rel
from homeloc.runtime.frontend import Frontend
from homeloc.train.metrics import calibration_bins
from homeloc.train.reliability import PairMeasure, collect, scores

log = logging.getLogger(__name__)


def per_failure(model: rel.ReliabilityModel, measures: list[PairMeasure]) -> dict[str, dict]:
    """For each failure kind ("none" = ordinary pairs): pairs, success rate, mean reliability of the
    changed frame, and how often each cause was named for it."""
    out: dict[str, dict] = {}
    for kind in sorted({m.failure or "none" for m in measures}):
        ms = [m for m in measures if (m.failure or "none") == kind]
        named = [rel.causes(m.frame1) for m in ms]
        out[kind] = {
            "pairs": len(ms),
            "success_rate": float(np.mean([m.success for m in ms])),
            "reliability_mean": float(np.mean([model.frame(m.frame1) for m in ms])),
            "causes": {c: float(np.mean([c in n for n in named])) for c in rel.CAUSES},
        }
    return out


def _table(summary: dict) -> str:
    s = summary["scores"]
    f = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [
        f"## Frame reliability and pair confidence ({s['pairs']} pairs, success rate {f(s['success_rate'])})", "",
        "| predictor | AUROC | ECE |", "|---|---:|---:|",
        f"| min(reliability0, reliability1) | {f(s['frame_auroc'])} | {f(s['frame_ece'])} |",
        f"| pair confidence | {f(s['pair_auroc'])} | {f(s['pair_ece'])} |", "",
        "| image 1 | pairs | success | mean reliability | " + " | ".join(rel.CAUSES) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(rel.CAUSES),
    ]  # fmt: skip
    for kind, e in summary["per_failure"].items():
        causes = " | ".join(f"{e['causes'][c]:.2f}" for c in rel.CAUSES)
        lines.append(
            f"| {kind} | {e['pairs']} | {e['success_rate']:.2f} | {e['reliability_mean']:.3f} | {causes} |"
        )
    return "\n".join(lines) + "\n"


def run_reliability(config: ReliabilityConfig) -> Path:
    from homeloc.eval import plots, report

    set_threads(config.threads)
    model = rel.ReliabilityModel.load(config.reliability_model)
    frontend = Frontend(
        config.keypoints_model, threads=config.threads, reliability=False
    )  # model applied below
    out = Path(config.out)
    prepare_out(out, config, "reliability")
    measures = collect(list(config.data), frontend, config.failure_share, config.seed)
    y = [m.success for m in measures]
    frame_p = [min(model.frame(m.frame0), model.frame(m.frame1)) for m in measures]
    pair_p = [model.pair(m.pair) for m in measures]
    summary = {
        "scores": scores(model, measures),
        "per_failure": per_failure(model, measures),
        "bins": {"frame": calibration_bins(frame_p, y), "pair": calibration_bins(pair_p, y)},
        "model": str(config.reliability_model or rel.DEFAULT_MODEL),
    }
    report.write_json(out / "summary.json", summary)
    rows = [{"pair": m.name, "failure": m.failure, "success": m.success, "reliability0": model.frame(m.frame0),
             "reliability1": model.frame(m.frame1), "pair_confidence": model.pair(m.pair),
             "causes1": " ".join(rel.causes(m.frame1))} for m in measures]  # fmt: skip
    report.write_pairs_csv(out / "pairs.csv", rows)
    report.write_table(out / "table.md", _table(summary))
    plots.plot_reliability_diagram(out / "reliability.png", summary["bins"]["frame"], summary["bins"]["pair"])
    return out
