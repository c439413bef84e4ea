"""`homeloc-evaluate`: matching, places and speed comparisons of our models against peers.

A thin wrapper over eval.evaluate_matching.run_matching, eval.evaluate_places.run_places and
eval.speed.run_speed. Every subcommand accepts --config FILE.yaml and --print_config.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Literal

from jsonargparse import ActionConfigFile
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, restricted_number_type

from homeloc.data_synthesis.cli_errors import (
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    debug_requested,
    run_guarded,
)
from homeloc.data_synthesis.cli_errors import OneLineParser as ArgumentParser  # every parser: one-line errors
from homeloc.data_synthesis.formats.errors import DataError
from homeloc.eval.errors import EvalError

Share = restricted_number_type("Share", float, [(">", 0), ("<=", 1)])  # in (0, 1]

SPEC_HELP = (
    "dataset: a path whose kind is detected from its layout, or KIND:PATH with KIND one of "
    "pairs (pairs.txt file), hpatches (i_*/v_* folders), wxbs (category/scene/corrs.txt), "
    "webcam (scene folders of YYYYMMDD_HHMMSS images), places (database/ queries/ "
    "ground_truth.csv), nordland (summer/ winter/). Formats: docs/evaluate.md"
)


def _flag(parser: ArgumentParser, name: str, help: str) -> None:
    parser.add_argument(
        name, type=bool, nargs="?", const=True, default=False, help=help + " (the flag alone means true)"
    )


def _common(parser: ArgumentParser, task: str) -> None:
    from homeloc.eval.methods import method_help

    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    parser.add_argument(
        "--methods",
        type=str,
        nargs="+",
        required=True,
        help=f"methods to compare in one table; NAME or NAME:ARG (ours:PATH = an exported .onnx or a torch checkpoint). Available: {method_help(task)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder (summary.json, table.md, plots, CSV, config.yaml)",
    )
    parser.add_argument(
        "--threads", type=PositiveInt, default=1, help="CPU threads for OpenCV, torch, ONNX Runtime and faiss"
    )


def _cache(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path | None,
        default=None,
        help="feature cache folder (default: OUT/cache); keyed by method, model-file hash, image content, resize, keypoint budget",
    )
    _flag(parser, "--overwrite", "replace results of a different configuration in OUT (otherwise refused)")
    _flag(
        parser,
        "--recompute",
        "ignore cached features and extract again (e.g. after changing a method's code)",
    )


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="homeloc-evaluate",
        description="Evaluate local features (matching), place descriptors (places) and runtime (speed) under lighting change, ours side by side with peers.",
    )
    sub = parser.add_subcommands(dest="command", required=True)
    sub.add_subcommand(
        "matching",
        _matching_parser(),
        help="keypoint matching: repeatability, MMA, homography accuracy, WxBS GT recall",
    )
    sub.add_subcommand("places", _places_parser(), help="place recognition: R@1/5/10, AUC_PR, R@100P")
    sub.add_subcommand("speed", _speed_parser(), help="runtime: ms/frame, size_mb, gmacs")
    sub.add_subcommand(
        "pose", _pose_parser(), help="relative pose from matches: AUC@5/10/20 deg, median error"
    )
    sub.add_subcommand(
        "reliability", _reliability_parser(), help="frame reliability / pair confidence: AUROC, ECE"
    )
    sub.add_subcommand("loops", _loops_parser(), help="loop closure: precision, recall, false loops")
    sub.add_subcommand("longterm", _longterm_parser(), help="long-term map over months: success, false, map bytes per day")  # fmt: skip
    return parser


def _matching_parser() -> ArgumentParser:
    m = ArgumentParser(
        description="Match image pairs with mutual nearest neighbours and score them against ground truth (homography or WxBS correspondences)."
    )
    _common(m, "local")
    m.add_argument("--data", type=str, required=True, help=SPEC_HELP)
    m.add_argument(
        "--max-keypoints",
        type=PositiveInt,
        default=1024,
        help="keypoint budget per image, the same for every method (highest scores kept)",
    )
    m.add_argument(
        "--resize",
        type=NonNegativeInt,
        default=640,
        help="downscale images so the longer side is at most this many px before extraction (0 = keep); keypoints are mapped back to the original pixels",
    )
    _cache(m)
    _flag(
        m,
        "--webcam-homography",
        "webcam: warp the second image by a seeded random homography (GT = that H) instead of identity GT",
    )
    m.add_argument(
        "--webcam-buckets",
        type=Literal["brightness", "hour"],
        default="brightness",
        help="webcam lighting buckets: brightness relative to the scene's median (night < 0.60 <= dusk < 0.85 <= day), or capture hour from the file name (night 21-05h, dusk 05-08h and 17-21h, day 08-17h)",
    )
    m.add_argument("--seed", type=NonNegativeInt, default=0, help="seed of the webcam random homographies")
    m.add_argument(
        "--wxbs-categories",
        type=str,
        nargs="+",
        default=None,
        help="WxBS categories to evaluate (default all; the lighting ones are WGALBS WGLBS WLABS)",
    )
    m.add_argument(
        "--h-threshold",
        type=PositiveFloat,
        default=3.0,
        help="USAC_MAGSAC inlier threshold (px) for homography estimation",
    )
    m.add_argument(
        "--f-threshold",
        type=PositiveFloat,
        default=1.0,
        help="USAC_MAGSAC inlier threshold (px) for fundamental-matrix estimation (WxBS)",
    )
    m.add_argument(
        "--visualize",
        type=NonNegativeInt,
        default=3,
        help="number of pairs drawn with matches (green correct, red wrong) per method",
    )
    return m


def _places_parser() -> ArgumentParser:
    p = ArgumentParser(
        description="Retrieve the database image of each query by cosine similarity; recall@1/5/10, top-1 precision-recall AUC and recall at 100% precision."
    )
    _common(p, "places")
    p.add_argument("--data", type=str, required=True, help=SPEC_HELP)
    p.add_argument(
        "--resize",
        type=NonNegativeInt,
        default=640,
        help="longer-side limit (px) for methods that resize (dense_vlad, vlad_ours, ours)",
    )
    p.add_argument(
        "--max-keypoints",
        type=PositiveInt,
        default=1024,
        help="keypoint budget passed to methods built on local features (ours)",
    )
    _cache(p)
    p.add_argument(
        "--nordland-split",
        type=Literal["all", "first2of3", "last3rd"],
        default="last3rd",
        help="Nordland places kept (ordered by frame): all, the first two thirds (training), or the last third (held out, default)",
    )
    p.add_argument(
        "--nordland-tolerance",
        type=NonNegativeInt,
        default=2,
        help="Nordland: database places within +-N positions of the query's own count as correct",
    )
    return p


def _speed_parser() -> ArgumentParser:
    s = ArgumentParser(description="Median milliseconds per frame after warm-up, model file size and GMACs.")
    _common(s, "local")
    s.add_argument("--size", type=str, default="480x640", help="input size HxW")
    s.add_argument("--max-keypoints", type=PositiveInt, default=1024, help="keypoint budget")
    s.add_argument(
        "--image",
        type=Path | None,
        default=None,
        help="image to time on (resized to --size); default a synthetic textured image",
    )
    s.add_argument("--warmup", type=NonNegativeInt, default=5, help="untimed warm-up runs")
    s.add_argument("--runs", type=PositiveInt, default=20, help="timed runs (the median is reported)")
    _flag(s, "--overwrite", "replace results of a different configuration in OUT (otherwise refused)")
    return s


def _pose_parser() -> ArgumentParser:
    p = ArgumentParser(
        description="Relative pose from mutual-NN matches (essential matrix, MAGSAC++, each image's intrinsics) on "
        "pose pair lists: `image0 image1 K0(9) K1(9) R(9) t(3)` lines (x1 = R x0 + t) or SuperGlue's ScanNet "
        "layout; AUC of max(rotation, translation-direction) error at 5/10/20 degrees and the median error."
    )
    _common(p, "local")
    p.add_argument(
        "--data",
        type=str,
        required=True,
        help="a pose pair list, or a folder holding one (pairs.txt, pose_pairs.txt or a single .txt); formats: docs/evaluate.md",
    )
    p.add_argument(
        "--max-keypoints",
        type=PositiveInt,
        default=1024,
        help="keypoint budget per image, the same for every method",
    )
    p.add_argument(
        "--resize",
        type=NonNegativeInt,
        default=640,
        help="longer-side limit (px) before extraction (0 = keep); keypoints are mapped back to the original pixels",
    )
    p.add_argument(
        "--e-threshold",
        type=PositiveFloat,
        default=1.0,
        help="MAGSAC++ inlier threshold in px at the extraction resolution (scaled to the original image)",
    )
    _cache(p)
    return p


def _loops_parser() -> ArgumentParser:
    p = ArgumentParser(
        description="Run the runtime loop closure (Frontend + GlobalDescriptor + LoopClosureDetector: detect, then add_keyframe, per frame) over loop-sequence folders; precision, recall, R@100P, PR curve over min_confidence, every false loop, ms/frame, map bytes."
    )
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    p.add_argument("--data", type=str, nargs="+", required=True,
                   help="loop-sequence folders (map/ queries/ [distractors/] ground_truth.csv [K.txt]; docs/evaluate.md), one table row each")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="output folder (summary.json, table.md, pr.png, false_loops.csv, frames.csv, verifications.csv, config.yaml)")  # fmt: skip
    p.add_argument(
        "--keypoints-model", type=str | None, default=None, help="keypoint ONNX (default: the shipped int8)"
    )
    p.add_argument("--places-model", type=str, default="frontend", help="'frontend' (default): no place model, the one-pass frontend's global descriptor (with --keypoints-model: a frontend ONNX); 'places': the shipped separate place model; or a place ONNX")  # fmt: skip
    p.add_argument("--threads", type=PositiveInt, default=1, help="ONNX Runtime / OpenCV / faiss threads")
    p.add_argument("--exclude-recent", type=NonNegativeInt, default=10, help="keyframes just before a frame that it never closes a loop with")  # fmt: skip
    unit = ClosedUnitInterval
    for name, typ, what in (("min-confidence", unit, "acceptance score threshold"), ("min-inliers", NonNegativeInt, "inlier floor"),
                            ("min-inlier-ratio", unit, "inliers / matches floor"), ("min-spread", unit, "inlier spread floor"),
                            ("temporal-k", PositiveInt, "consecutive agreeing frames")):  # fmt: skip
        p.add_argument(
            f"--{name}", type=typ | None, default=None, help=f"detector {what} (default: the runtime default)"
        )
    p.add_argument("--descriptor-bits", type=int | None, choices=(8, 4), default=None, help="how the detector codes the local descriptors it keeps per keyframe (VerifyConfig.descriptor_bits): 8 (int8) or 4 (two a byte, about 1.8x the keyframes in the same bytes; default: the runtime's)")  # fmt: skip
    p.add_argument("--verify-rotation", type=bool, default=True, help="with K, the verification also fits a rotation-only model and keeps it where it explains more matches (views from one spot; VerifyConfig.rotation); false: the essential matrix alone, as before session 20")  # fmt: skip
    _flag(p, "--overwrite", "replace results of a different configuration in OUT (otherwise refused)")
    return p


def _longterm_parser() -> ArgumentParser:
    p = ArgumentParser(
        description="Replay the days of rendered homes in order through the runtime long-term map (localize each frame, "
        "update the map), a static map of the first day and an append-everything map pruned to the same budget; "
        "per day: localization success, false localizations, map bytes, ms/frame (summary.json, table.md, longterm.png)."
    )
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    p.add_argument("--data", type=str, required=True, help="a rendered folder (home_*/cameras.json, homeloc-synthesize render --days D) or one home folder")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("reports/longterm"), help="output folder (summary.json, table.md, longterm.png, frames.csv, config.yaml; map checkpoints in state/)")  # fmt: skip
    p.add_argument("--budget-bytes", type=PositiveInt, default=2_000_000, help="memory budget of the long-term and append maps (bytes, per home)")  # fmt: skip
    p.add_argument("--keypoints-model", type=str | None, default=None, help="keypoint ONNX (default: the shipped int8)")  # fmt: skip
    p.add_argument("--places-model", type=str, default="frontend", help="'frontend' (default): no place model, the one-pass frontend's global descriptor (with --keypoints-model: a frontend ONNX); 'places': the shipped separate place model; or a place ONNX")  # fmt: skip
    p.add_argument("--threads", type=PositiveInt, default=1, help="ONNX Runtime / OpenCV threads")
    p.add_argument("--tolerance-m", type=PositiveFloat, default=1.0, help="correct place: camera centres within this distance (and the same room)")  # fmt: skip
    p.add_argument("--tolerance-deg", type=PositiveFloat, default=45.0, help="correct place: view directions within this angle")  # fmt: skip
    p.add_argument("--max-days", type=PositiveInt | None, default=None, help="replay only the first N days (default: all)")  # fmt: skip
    p.add_argument("--verify-top", type=PositiveInt, default=3, help="candidates every map verifies per frame (the loop-closure default: 3)")  # fmt: skip
    p.add_argument("--min-confidence", type=ClosedUnitInterval | None, default=None, help="every map's acceptance score threshold (default: the runtime's, 0.6)")  # fmt: skip
    p.add_argument("--descriptor-bits", type=int, choices=(8, 4), default=4, help="how every map, the baselines too, codes the descriptors it keeps (VerifyConfig.descriptor_bits): 4 (two a byte, the long-term map's default since session 39: about 1.8x the keyframes in the same budget) or 8 (int8, as before)")  # fmt: skip
    p.add_argument("--max-stored-features", type=PositiveInt | None, default=None, help="keypoints every map keeps per keyframe and verifies with (VerifyConfig.max_stored_features; default: the runtime's, 512)")  # fmt: skip
    p.add_argument("--verify-rotation", type=bool, default=True, help="with K, every map's verification also fits a rotation-only model and keeps it where it explains more matches (views from one spot; VerifyConfig.rotation); false: the essential matrix alone, as before session 20")  # fmt: skip
    p.add_argument("--refresh-below", type=ClosedUnitInterval | None, default=None, help="long-term map: a frame localized with a confidence below this also becomes an experience (default: the runtime's PlaceConfig)")  # fmt: skip
    p.add_argument("--stale-penalty", type=NonNegativeFloat | None, default=None, help="long-term map: usefulness removed from experiences of a room declared changed (0: changes do not affect forgetting; default: the runtime's)")  # fmt: skip
    p.add_argument("--change-failures", type=Share | None, default=None, help="long-term maps: also declare a room changed when at least this share of its last frames at known places fail to localize (the failure signal, ChangeConfig.major_share; default: the runtime's, off since session 25; 0.5: the setting measured)")  # fmt: skip
    _flag(
        p, "--per-place", "long-term map: retrieve the best experience of each place (SearchConfig.per_place)"
    )
    p.add_argument("--agree-confidence", type=ClosedUnitInterval | None, default=None, help="long-term map: also accept a place whose --agree-count experiences each verify with at least this score while no other place does (SearchConfig.agree_confidence; default: off)")  # fmt: skip
    p.add_argument("--agree-count", type=PositiveInt, default=2, help="long-term map: experiences of one place that must agree (>= 2)")  # fmt: skip
    p.add_argument("--agree-deg", type=PositiveFloat | None, default=None, help="long-term map: the agreeing experiences must imply the frame's orientation within this angle (SearchConfig.agree_deg; default: no check)")  # fmt: skip
    p.add_argument("--strict-deg", type=PositiveFloat | None, default=None, help="long-term maps: a search where two experiences verify at the acceptance score implying frame orientations further apart than this angle localizes nothing (SearchConfig.strict_deg; default: the runtime's, 30; 180: off)")  # fmt: skip
    _flag(p, "--odometry", "also run the 'odometry' map: the long-term map with the pose prior from simulated wheel odometry (true relative motion within a round plus the noise of runtime.longterm.OdometryConfig)")  # fmt: skip
    p.add_argument("--odometry-noise", type=NonNegativeFloat, default=1.0, help="simulated odometry noise as a multiple of the noise model the prior assumes (1: as assumed)")  # fmt: skip
    p.add_argument("--odometry-seed", type=NonNegativeInt, default=0, help="seed of the simulated odometry noise (per frame: seed, frame index)")  # fmt: skip
    p.add_argument("--odometry-gap", type=PositiveFloat | None, default=None, help="odometry map: the robot's odometry also connects the rounds of a day, over a path this many times the straight line between them (an assumption: the renderer shows no path; default: a new round starts without a prior)")  # fmt: skip
    _flag(p, "--odometry-dock", "odometry map: the robot starts each day (and each round, unless --odometry-gap connects them) at its charging dock (the renderer's, see --odometry-path; else assumed at the pose of the first day's first frame, the map's origin): the prior restarts there with OdometryConfig.dock_sigma_m/dock_sigma_deg and the odometry of the drive from it")  # fmt: skip
    p.add_argument("--odometry-path", type=bool, default=True, help="odometry map: where cameras.json has the patrol's path and dock (render --days; older folders: homeloc-synthesize render-path), the odometry noise grows with the path driven between frames and the dock is the renderer's; false: the straight line between frames and the assumed dock and undocking of older runs")  # fmt: skip
    p.add_argument("--fit-sigma-deg", type=NonNegativeFloat | None, default=None, help="odometry map: a verification's own rotation error (one sigma, degrees) allowed beside the prior's in the heading check (OdometryConfig.fit_sigma_deg; default: the runtime's)")  # fmt: skip
    p.add_argument("--prior-confidence", type=ClosedUnitInterval | None, default=None, help="odometry map: verification score accepted among the pose prior's candidates (OdometryConfig.min_confidence; default: the runtime's)")  # fmt: skip
    p.add_argument("--prior-agree-confidence", type=ClosedUnitInterval | None, default=None, help="odometry map: when no candidate of the pose prior verifies at --prior-confidence, two experiences of one spot (within OdometryConfig.agree_radius_m) each verifying at this score with the predicted heading localize the frame (OdometryConfig.agree_confidence; default: the runtime's, 0.04; 1: off, no verification scores 1)")  # fmt: skip
    p.add_argument("--prior-agree-min-inliers", type=NonNegativeInt | None, default=None, help="odometry map: inliers each agreeing experience needs while the prior's position is within OdometryConfig.agree_max_sigma_m (OdometryConfig.agree_min_inliers; default: the runtime's, 12; 0: the verifier's floor, off; else at least 8)")  # fmt: skip
    p.add_argument("--prior-single-confidence", type=ClosedUnitInterval | None, default=None, help="odometry map: when nothing else localizes and the prior's position is within OdometryConfig.agree_max_sigma_m, one experience verifying at this score with the predicted heading, the nearest to the predicted position, localizes the frame unless an experience elsewhere passes the verifier's floors (OdometryConfig.single_confidence; default: the runtime's, 0.05; 1: off, no verification scores 1)")  # fmt: skip
    p.add_argument("--prior-single-doubt-m", type=NonNegativeFloat | None, default=None, help="odometry map: the last resort (--prior-single-confidence) is not taken when an experience further than this many metres from it passes the verifier's floors (OdometryConfig.single_doubt_m; default: the runtime's, 2; 0.3: before session 31)")  # fmt: skip
    p.add_argument("--prior-conflict-by-position", type=bool | None, default=None, help="odometry map: verifying experiences conflict (ambiguous) only when their positions differ by more than the place radius, and at one position the one viewing nearest the predicted heading is reported (OdometryConfig.conflict_by_position; default: the runtime's, true; false: another view direction beyond the place angle conflicts too)")  # fmt: skip
    p.add_argument("--prior-conflict-radii", type=PositiveFloat | None, default=None, help="odometry map: verifying experiences conflict (ambiguous) only when their positions differ by more than this many place radii (OdometryConfig.conflict_radii; default: the runtime's, 2: two experiences both within the radius of the frame; 1: before session 26)")  # fmt: skip
    p.add_argument("--prior-view-sigma-deg", type=NonNegativeFloat | None, default=None, help="odometry map: spread (degrees, one sigma) of the view directions one spot is revisited from, added to the prior's heading sigma when the nearest experience is chosen (OdometryConfig.view_sigma_deg; default: the runtime's, 20; 0: the prior's sigma alone, before session 26)")  # fmt: skip
    p.add_argument("--prior-nearest-weak", type=bool | None, default=None, help="odometry map: once an experience verified strongly among the prior's candidates, the one reported is the nearest of every experience of that place that verified with the predicted heading at the agreement score, weaker ones included (OdometryConfig.nearest_weak; default: the runtime's, true; false: the nearest of the strong ones, before session 27)")  # fmt: skip
    p.add_argument("--prior-fuse-strict", type=bool | None, default=None, help="odometry map: a strict localization through the prior updates it by the Kalman update, the experience's pose taken as a measurement with the seed's sigmas, instead of seeding it anew there (OdometryConfig.fuse_strict; default: the runtime's, true; false: seeded anew, before session 27)")  # fmt: skip
    p.add_argument("--prior-view-sigma-m", type=NonNegativeFloat | None, default=None, help="odometry map: spread (metres, one sigma) of the positions one spot is revisited from, added to the prior's position sigma when the nearest experience is chosen (OdometryConfig.view_sigma_m; default: the runtime's; 0: the prior's sigma alone, before session 28)")  # fmt: skip
    p.add_argument("--prior-cross-check-radii", type=PositiveFloat | None, default=None, help="odometry map: the cross-check's strict localization overrules a weak one only further than this many place radii from it (OdometryConfig.cross_check_radii; default: the runtime's; 1: one radius, before session 28)")  # fmt: skip
    p.add_argument("--prior-cross-check-doubt", type=bool | None, default=None, help="odometry map: a strict match between one place radius and --prior-cross-check-radii from the weak localization makes the frame ambiguous (not localized, the prior dropped) (OdometryConfig.cross_check_doubt; default: the runtime's, false)")  # fmt: skip
    p.add_argument("--prior-cross-check-colocated", type=NonNegativeFloat | None, default=None, help="odometry map: the cross-check's strict match overrules a weak localization only when a rotation-only fit explains at least this share of its inliers, i.e. the frame was taken at that experience's spot, not further along its line of sight (OdometryConfig.cross_check_colocated; default: the runtime's; 0: off, any strict match overrules, before session 29)")  # fmt: skip
    p.add_argument("--prior-still-at-dock", type=bool | None, default=None, help="odometry map: just docked, odometry that claims the robot stood still is believed, the robot is at its dock (OdometryConfig.still_at_dock; default: the runtime's, true; false: the prior is dropped, no frame since the dock confirming the claim, before session 30)")  # fmt: skip
    p.add_argument("--prior-ambiguous-keeps", type=bool | None, default=None, help="odometry map: a frame whose prior's candidates are ambiguous (two places verify) keeps the prior, one miss more (OdometryConfig.ambiguous_keeps; default: the runtime's, true; false: the prior is dropped, before session 32)")  # fmt: skip
    p.add_argument("--prior-sure-inliers", type=NonNegativeInt | None, default=None, help="odometry map: a weak localization with at least this many inliers updates the prior's heading with a strict one's error (seed_sigma_deg) instead of fit_sigma_deg (OdometryConfig.sure_inliers; default: the runtime's, off since session 41; 40: session 40's default; 0: off)")  # fmt: skip
    p.add_argument("--prior-max-sigma-m", type=PositiveFloat | None, default=None, help="odometry map: the prior is dropped (global localization only) once its position sigma passes this many metres (OdometryConfig.max_sigma_m; default: the runtime's, 1.5)")  # fmt: skip
    p.add_argument("--prior-adapt-max-scale", type=NonNegativeFloat | None, default=None, help="odometry map: estimate online how much worse than its model the odometry's heading is (a scale of 1 up to this, from the heading innovations of strict localizations) and grow the prior's odometry noise by it (OdometryConfig.adapt_max_scale; default: the runtime's, off; 0: off, the model's noise; session 44 measured 3 with --prior-max-sigma-deg 30)")  # fmt: skip
    p.add_argument("--prior-max-sigma-deg", type=PositiveFloat | None, default=None, help="odometry map: the prior is dropped (global localization only) once its heading sigma passes this many degrees, at most 180 (OdometryConfig.max_sigma_deg; default: the runtime's, 20 since session 42; 30 before)")  # fmt: skip
    p.add_argument("--prior-lost-heading-confidence", type=NonNegativeFloat | None, default=None, help="odometry map: a heading sigma past --prior-max-sigma-deg keeps the prior's position with the heading lost (until its position sigma passes --prior-max-sigma-m), and a localization through it is reported only when its best verification scores at least this, in [0, 1] (OdometryConfig.lost_heading_confidence; default: the runtime's, 0.1 since session 50; inf: off, the prior dropped)")  # fmt: skip
    p.add_argument("--prior-metric-min-inliers", type=NonNegativeInt | None, default=None, help="odometry map: after a localization through the prior, PnP of the frame against the verified experiences' keypoints lifted by their stored depth (the renders' depth, --odometry-depth-noise) places the frame; with at least this many PnP inliers the verified experience nearest that position is reported and the prior updated by it (OdometryConfig.metric_min_inliers; default: the runtime's, 30 since session 47; 0: off; at least 4)")  # fmt: skip
    p.add_argument("--prior-metric-reset-heading-sigmas", type=NonNegativeFloat | None, default=None, help="odometry map with metric localization: a PnP pose far enough to reset the prior whose heading is more than this many sigmas (the prior's heading sigma and the PnP's, combined) from the prior's is not taken (OdometryConfig.metric_reset_heading_sigmas; default: the runtime's, off; inf: off; session 50)")  # fmt: skip
    p.add_argument("--odometry-depth-noise", type=NonNegativeFloat, default=0.02, help="odometry map with metric localization (--prior-metric-min-inliers, on by default): the depth an experience keeps per keypoint is the render's z-depth times (1 + this x a standard normal draw, per keypoint from --odometry-seed), a SLAM map point's or a depth camera's error (default 0.02)")  # fmt: skip
    p.add_argument("--prior-still-share", type=NonNegativeFloat | None, default=None, help="odometry map: odometry that claims the robot stood still is believed only when the frame sees the previous one from the same spot, a rotation-only fit explaining this share of the verification's inliers (OdometryConfig.still_share; default: the runtime's, 0.6; 0: off, the strict verification alone, before session 31)")  # fmt: skip
    p.add_argument("--prior-weak-gate-sigmas", type=NonNegativeFloat | None, default=None, help="odometry map: a localization through the prior that no strict verification supports reports its experience only within the place radius plus this many of the prior's position sigmas of the predicted position (OdometryConfig.weak_gate_sigmas; default: the runtime's; inf: off, the candidates' gate alone, before session 30)")  # fmt: skip
    p.add_argument("--prior-strict-gate-sigmas", type=NonNegativeFloat | None, default=None, help="odometry map: while the prior holds, a strict localization found without it (global search, cross-check) is taken only within the place radius plus this many of the prior's position sigmas of the predicted position, else the frame is a miss (OdometryConfig.strict_gate_sigmas; default: the runtime's; inf: off, no bound, before session 30)")  # fmt: skip
    p.add_argument("--prior-strict-heading-sigmas", type=NonNegativeFloat | None, default=None, help="odometry map: while the prior holds, a strict localization found by the global search is taken only when the heading its verification implies is within this many hypot(prior heading sigma, fit_sigma_deg) of the predicted one, else a miss (OdometryConfig.strict_heading_sigmas; inf: off; default: the runtime's)")  # fmt: skip
    p.add_argument("--prior-recentre", type=bool | None, default=None, help="odometry map: a weak localization moves the prior's position toward its experience, its sigma kept (OdometryConfig.recentre; default: the runtime's, true; false: it only resets the misses)")  # fmt: skip
    p.add_argument("--prior-recentre-shrinks", type=bool | None, default=None, help="odometry map: the weak localization that moves the prior's position also shrinks its sigma by the same Kalman update (OdometryConfig.recentre_shrinks; default: the runtime's, true; false: sigma kept)")  # fmt: skip
    p.add_argument("--prior-rotation-px", type=NonNegativeFloat | None, default=None, help="odometry map: the heading a verification implies comes from a rotation-only fit at this many pixels (OdometryConfig.rotation_px; default: the runtime's, 4; 0: the essential matrix's R)")  # fmt: skip
    p.add_argument("--prior-recentre-heading", type=bool | None, default=None, help="odometry map: a weak localization also updates the prior's heading by the Kalman update, from the heading its verification's rotation implies (OdometryConfig.recentre_heading; default: the runtime's, true; false: the heading kept)")  # fmt: skip
    p.add_argument("--prior-nearest-heading", type=bool | None, default=None, help="odometry map: the experience reported among those that verify is the one nearest the prior's pose in position and heading, each in the prior's sigmas (OdometryConfig.nearest_heading; default: the runtime's, true; false: by position alone)")  # fmt: skip
    p.add_argument("--prior-nearest-place", type=bool | None, default=None, help="odometry map: the experience reported among those that verify is the one most probably within the place's radius and angle of the frame under the prior, the nearest breaking ties (OdometryConfig.nearest_place; default: the runtime's, false: the least cost, the nearest in the prior's sigmas widened by how revisits spread; session 45 measured both)")  # fmt: skip
    p.add_argument("--prior-still-check", type=bool | None, default=None, help="odometry map: odometry claiming the robot stood still must be confirmed by the frame verifying against the previous one, else the prior is dropped (OdometryConfig.still_m; false: off; default: the runtime's)")  # fmt: skip
    p.add_argument("--prior-cross-check", type=bool | None, default=None, help="odometry map: a weak localization through the prior stands only if the strict search without the prior does not localize the frame at another place; if it does, that one is reported and seeds the prior (OdometryConfig.cross_check; default: the runtime's)")  # fmt: skip
    p.add_argument("--prior-cross-check-strongest", type=bool | None, default=None, help="odometry map: the localization counts as weak for --prior-cross-check only when no accepted experience verified at the strict score (OdometryConfig.cross_check_strongest; default: the runtime's, true; false: when the one reported, the nearest, did not, before session 26)")  # fmt: skip
    p.add_argument("--odometry-kidnap", type=ClosedUnitInterval, default=0.0, help="odometry map: the share of odometry steps at which the robot is carried, unseen: the odometry reports no motion while the robot moved to the frame's pose (drawn per frame from --odometry-seed; 0: never); table.md and summary.json kidnaps split the odometry map's results into the frames carried to, the later ones before the next dock, and the rest")  # fmt: skip
    p.add_argument("--odometry-map-poses", type=Literal["exact", "belief"], default="exact", help="odometry map: the pose a frame that becomes an experience is filed at (and its colours compared around): exact, the rendered one (a SLAM map without error); belief, where the map's own pose prior puts the robot after localizing the frame (a robot with only odometry and this map; while the prior is dropped the experience is filed without a pose). The other maps always get the rendered pose")  # fmt: skip
    p.add_argument("--odometry-slip", type=ClosedUnitInterval, default=0.0, help="odometry map: the share of odometry steps on which the wheels slip, unseen: the step's translation and turn are each reported at a factor drawn from 0.5-1.5 (drawn per frame from --odometry-seed; 0: never); table.md and summary.json slips split the odometry map's results into the frames slipped to, the later ones before the next dock, and the rest")  # fmt: skip
    p.add_argument("--evidence-negatives", type=NonNegativeInt, default=4, help="per frame after the mapping day, verify it against this many earlier frames of other places (>= 2 m away, the most similar first): its noise floor; a localization scoring above it is 'seen' (table column, summary noise_floor; 0: off)")  # fmt: skip
    _flag(p, "--overwrite", "replace results of a different configuration in OUT (otherwise refused; a killed run with the same configuration resumes)")  # fmt: skip
    return p


def _reliability_parser() -> ArgumentParser:
    p = ArgumentParser(
        description="Does the frontend's frame reliability (and pair confidence) predict registration failure, "
        "calibrated? Homography pair sets mixed with synthesized failures; AUROC, ECE, reliability diagram."
    )
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    p.add_argument(
        "--data",
        type=str,
        nargs="+",
        required=True,
        help="homography pair SPECs (webcam:DIR, hpatches:DIR, pairs.txt)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--keypoints-model", type=str | None, default=None, help="keypoint ONNX (default: the shipped one)"
    )
    p.add_argument(
        "--reliability-model",
        type=str | None,
        default=None,
        help="reliability JSON (default: the shipped one)",
    )
    p.add_argument(
        "--failure-share",
        type=float,
        default=0.4,
        help="share of pairs whose second image gets a synthesized failure",
    )
    p.add_argument(
        "--seed",
        type=NonNegativeInt,
        default=1,
        help="seed of the failures (the shipped model was fitted with 0)",
    )
    p.add_argument("--threads", type=PositiveInt, default=1, help="CPU threads")
    _flag(p, "--overwrite", "replace results of a different configuration in OUT (otherwise refused)")
    return p


def _run(command: str, ns) -> Path:
    args = {k: v for k, v in vars(ns).items() if k not in ("config", "__path__")}
    if command == "matching":
        from homeloc.eval.config import MatchingConfig
        from homeloc.eval.evaluate_matching import run_matching

        return run_matching(MatchingConfig(**args))
    if command == "places":
        from homeloc.eval.config import PlacesConfig
        from homeloc.eval.evaluate_places import run_places

        return run_places(PlacesConfig(**args))
    if command == "loops":
        from homeloc.eval.config import LoopsConfig
        from homeloc.eval.evaluate_loops import run_loops

        return run_loops(LoopsConfig(**args))
    if command == "longterm":
        from homeloc.eval.config import LongTermEvalConfig
        from homeloc.eval.evaluate_longterm import run_longterm

        return run_longterm(LongTermEvalConfig(**args))
    if command == "reliability":
        from homeloc.eval.config import ReliabilityConfig
        from homeloc.eval.evaluate_reliability import run_reliability

        return run_reliability(ReliabilityConfig(**args))
    if command == "pose":
        from homeloc.eval.config import PoseConfig
        from homeloc.eval.evaluate_pose import run_pose

        return run_pose(PoseConfig(**args))
    from homeloc.eval.config import SpeedConfig
    from homeloc.eval.speed import run_speed

    return run_speed(SpeedConfig(**args))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 evaluation error, 2 usage error); errors are one
    line on stderr, the traceback only with --debug (or -v)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    debug, argv = debug_requested(argv)
    parser = build_parser()
    ns = parser.parse_args(argv)
    command = ns.command
    sub_ns = ns[command]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from homeloc.runtime.io import ImageReadError

    def run() -> int:
        out = _run(command, sub_ns)
        print((out / "table.md").read_text())
        print(f"results in {out}", file=sys.stderr)
        return 0

    return run_guarded(
        f"homeloc-evaluate {command}", run, debug, run_errors=(EvalError, DataError, ImageReadError)
    )


if __name__ == "__main__":
    sys.exit(main())
