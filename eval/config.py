"""Typed configurations of the evaluation jobs (what the CLI resolves and saves)."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from homeloc.eval.errors import EvalError
from homeloc.runtime.io import atomic_write, make_output_dir


@dataclass
class LocalFeatureJob:
    """What every job over cached local features shares (matching, pose); the field order is the
    saved config.yaml's."""

    data: str
    methods: list[str]
    out: Path
    max_keypoints: int = 1024
    resize: int = 640
    threads: int = 1
    cache_dir: Path | None = None
    overwrite: bool = False
    recompute: bool = False


@dataclass
class MatchingConfig(LocalFeatureJob):
    webcam_homography: bool = False
    webcam_buckets: str = "brightness"
    seed: int = 0
    wxbs_categories: list[str] | None = None
    h_threshold: float = 3.0
    f_threshold: float = 1.0
    visualize: int = 3


@dataclass
class PlacesConfig:
    data: str
    methods: list[str]
    out: Path
    resize: int = 640
    max_keypoints: int = 1024
    threads: int = 1
    cache_dir: Path | None = None
    overwrite: bool = False
    recompute: bool = False
    nordland_split: str = "last3rd"
    nordland_tolerance: int = 2


@dataclass
class SpeedConfig:
    methods: list[str]
    out: Path
    size: str = "480x640"
    threads: int = 1
    max_keypoints: int = 1024
    image: Path | None = None
    warmup: int = 5
    runs: int = 20
    overwrite: bool = False


@dataclass
class PoseConfig(LocalFeatureJob):
    e_threshold: float = 1.0


@dataclass
class ReliabilityConfig:
    data: list[str]
    out: Path
    keypoints_model: str | None = None
    reliability_model: str | None = None
    failure_share: float = 0.4
    seed: int = 1
    threads: int = 1
    overwrite: bool = False


@dataclass
class LoopsConfig:
    """`homeloc-evaluate loops` options. Detector settings left None are the detector's defaults."""

    data: list[str]
    out: Path
    keypoints_model: str | None = None
    # "frontend": the one-pass frontend's global output (the default since it matched or beat the
    # place model on every loop sequence, docs/evaluate.md); "places" or None: the shipped place
    # model; else a place ONNX
    places_model: str | None = "frontend"
    threads: int = 1
    exclude_recent: int = 10
    min_confidence: float | None = None
    min_inliers: int | None = None
    min_inlier_ratio: float | None = None
    min_spread: float | None = None
    temporal_k: int | None = None
    verify_rotation: bool = True
    descriptor_bits: int | None = None
    overwrite: bool = False


@dataclass
class LongTermEvalConfig:
    """`homeloc-evaluate longterm` options."""

    data: str
    out: Path = Path("reports/longterm")
    budget_bytes: int = 2_000_000
    keypoints_model: str | None = None
    places_model: str | None = "frontend"
    threads: int = 1
    tolerance_m: float = 1.0
    tolerance_deg: float = 45.0
    max_days: int | None = None
    refresh_below: float | None = None
    per_place: bool = False
    stale_penalty: float | None = None
    change_failures: float | None = None
    verify_top: int = 3
    min_confidence: float | None = None
    max_stored_features: int | None = None
    # the long-term map's default, runtime.longterm.config.DESCRIPTOR_BITS (a literal: the CLI imports
    # no runtime; tests/eval/test_longterm.py checks the two agree)
    descriptor_bits: int = 4
    verify_rotation: bool = True
    agree_confidence: float | None = None
    agree_count: int = 2
    agree_deg: float | None = None
    strict_deg: float | None = None
    odometry: bool = False
    odometry_noise: float = 1.0
    odometry_seed: int = 0
    odometry_gap: float | None = None
    odometry_dock: bool = False
    odometry_path: bool = True
    fit_sigma_deg: float | None = None
    prior_confidence: float | None = None
    prior_agree_confidence: float | None = None
    prior_agree_min_inliers: int | None = None
    prior_single_confidence: float | None = None
    prior_single_doubt_m: float | None = None
    prior_conflict_by_position: bool | None = None
    prior_conflict_radii: float | None = None
    prior_view_sigma_deg: float | None = None
    prior_nearest_weak: bool | None = None
    prior_fuse_strict: bool | None = None
    prior_view_sigma_m: float | None = None
    prior_cross_check_radii: float | None = None
    prior_cross_check_doubt: bool | None = None
    prior_cross_check_colocated: float | None = None
    prior_weak_gate_sigmas: float | None = None
    prior_strict_gate_sigmas: float | None = None
    prior_strict_heading_sigmas: float | None = None
    prior_recentre: bool | None = None
    prior_recentre_shrinks: bool | None = None
    prior_rotation_px: float | None = None
    prior_recentre_heading: bool | None = None
    prior_nearest_heading: bool | None = None
    prior_nearest_place: bool | None = None
    prior_cross_check: bool | None = None
    prior_cross_check_strongest: bool | None = None
    prior_still_check: bool | None = None
    prior_still_at_dock: bool | None = None
    prior_still_share: float | None = None
    prior_sure_inliers: int | None = None
    prior_max_sigma_m: float | None = None
    prior_max_sigma_deg: float | None = None
    prior_lost_heading_confidence: float | None = None
    prior_metric_min_inliers: int | None = None
    prior_metric_reset_heading_sigmas: float | None = None
    odometry_depth_noise: float = 0.02
    prior_adapt_max_scale: float | None = None
    prior_ambiguous_keeps: bool | None = None
    odometry_kidnap: float = 0.0
    odometry_slip: float = 0.0
    odometry_map_poses: str = "exact"
    evidence_negatives: int = 4
    overwrite: bool = False


def config_dict(config) -> dict:
    """Plain YAML-able dict of a config (paths as strings)."""

    def plain(v):
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, int | float) and not isinstance(v, bool):  # option types (PositiveInt...)
            return int(v) if isinstance(v, int) else float(v)
        return v

    return {k: plain(v) for k, v in asdict(config).items()}


def prepare_out(out: Path, config, task: str) -> Path:
    """Create DIR and save the resolved config as DIR/config.yaml (reusable as
    `homeloc-evaluate TASK --config DIR/config.yaml`). Refuses (EvalError) when DIR already holds
    results of a different configuration, unless config.overwrite is set."""
    make_output_dir(out)
    resolved = config_dict(config)
    path = out / "config.yaml"
    if path.is_file() and not getattr(config, "overwrite", False):
        old = yaml.safe_load(path.read_text()) or {}
        ignore = {"overwrite", "recompute"}
        if {k: v for k, v in old.items() if k not in ignore} != {
            k: v for k, v in resolved.items() if k not in ignore
        }:
            raise EvalError(
                f"{out} holds results of a different configuration ({path}); pass --overwrite "
                "or choose another --out"
            )
    header = f"# resolved configuration; rerun with: homeloc-evaluate {task} --config {path}\n"
    atomic_write(path, header + yaml.safe_dump(resolved, sort_keys=False))
    return path


def set_threads(n: int) -> None:
    """Limit OpenCV, numpy's BLAS, torch, faiss and their OpenMP pools to n threads (for fair timings)."""
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(n)
    # numpy's OpenBLAS sizes its pool by the cores: matching's 512 x 512 matmul took 10-30 ms with
    # 2 threads on 2 busy cores against 1.3 ms with one (session 48); every time measured before
    # session 48 ran it so. Limits every BLAS and OpenMP pool loaded now (set_threads runs again
    # after a method imports torch or faiss).
    threadpool_limits(n)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(n)
    if "faiss" in sys.modules:
        import faiss

        faiss.omp_set_num_threads(n)
