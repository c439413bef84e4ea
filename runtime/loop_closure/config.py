"""Settings of :class:`~homeloc.runtime.loop_closure.LoopClosureDetector`, grouped by the part of
the detector that reads them, as small frozen dataclasses validated on construction.

The detector still accepts the old flat keyword arguments (``index="pq", pq_bytes=32, ...``) and
saves its settings in that flat form (the map file format predates the groups);
:data:`LEGACY_OPTIONS` maps each flat name to its group and field, :func:`resolve` and
:func:`flatten` convert between the two forms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from homeloc.runtime.loop_closure.stored_features import BITS

INDEX_TYPES = ("flat", "pq", "ivfpq", "sq8", "sq6", "sq4")
VERIFICATIONS = ("auto", "fundamental", "homography", "essential")


def _at_least(name: str, value: Any, low: int) -> None:
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


@dataclass(frozen=True)
class IndexConfig:
    """How global descriptors are stored and searched (see :mod:`.index`).

    Args:
        kind: "flat" (exact, 4·D bytes), "pq" or "ivfpq" (product-quantized codes, ``pq_bytes``
            each), "sq8" / "sq6" / "sq4" (every dimension scalar-quantized to 8 / 6 / 4 bits over
            its trained range: D bytes, 3·D/4, D/2).
        pca_dim: reduce descriptors to this many dimensions by PCA before coding (None: keep D).
        pca_whiten: PCA-whitening (components scaled to unit variance, then re-normalised): on
            real image descriptors (Nordland thumbnails) it raised recall, as it does for NetVLAD.
        pq_bytes: code bytes per keyframe for "pq"/"ivfpq" (8-bit sub-quantizers; the largest
            divisor of the coded dimension not above pq_bytes is used).
        nlist: IVF lists (None or 0: about training size / 16, a power of two).
        nprobe: IVF lists scanned per query.
        train_size: keyframe count that triggers training of PCA/PQ (None: only ``train()``).
    """

    kind: str = "ivfpq"
    pca_dim: int | None = None
    pca_whiten: bool = False
    pq_bytes: int = 64
    nlist: int | None = None  # not validated: 0 and negative values always meant "automatic"
    nprobe: int = 16
    train_size: int | None = 1000

    def __post_init__(self) -> None:
        if self.kind not in INDEX_TYPES:
            raise ValueError(f"unknown index {self.kind!r}; choose one of {INDEX_TYPES}")
        if self.pca_dim is not None:
            _at_least("pca_dim", self.pca_dim, 1)
        _at_least("pq_bytes", self.pq_bytes, 1)
        _at_least("nprobe", self.nprobe, 1)
        if self.train_size is not None and self.train_size < 1:
            raise ValueError(f"train_size must be >= 1 or None, got {self.train_size}")
        object.__setattr__(self, "pca_whiten", bool(self.pca_whiten))


@dataclass(frozen=True)
class RetrievalConfig:
    """Which keyframes a query retrieves.

    Args:
        top_k: candidates retrieved per query.
        min_score: candidates below this cosine similarity are ignored by ``detect()``.
        exclude_recent: default number of most recent keyframes a query ignores.
    """

    top_k: int = 5
    min_score: float = 0.0
    exclude_recent: int = 0

    def __post_init__(self) -> None:
        _at_least("top_k", self.top_k, 1)
        _at_least("exclude_recent", self.exclude_recent, 0)
        object.__setattr__(self, "min_score", float(self.min_score))


@dataclass(frozen=True)
class TemporalConfig:
    """Temporal consistency: ``detect()`` accepts a loop only after ``k`` consecutive queries whose
    best candidates lie within ``window`` keyframes (insertion order) of each other (k=1: off;
    the default 2 means one frame alone never closes a loop)."""

    k: int = 2
    window: int = 3

    def __post_init__(self) -> None:
        _at_least("temporal_k (TemporalConfig.k)", self.k, 1)
        _at_least("temporal_window (TemporalConfig.window)", self.window, 0)


# Acceptance score of a verified loop / localization. 0.6 since the keypoint model of session 17
# (docs/evaluate.md, "Session 17"): at 0.5 it accepted one wrong place (0.522) on a held-apart
# long-term home; at 0.6 no dev loop sequence or long-term home loses a right loop or localization
# against the previous model at 0.5.
MIN_CONFIDENCE = 0.6


@dataclass(frozen=True)
class VerifyConfig:
    """Geometric verification with local features, and the local features kept for it.

    A verified candidate is accepted when it passes three floors (``min_inliers`` inliers, an
    inlier share of at least ``min_inlier_ratio`` of the mutual-NN matches, inliers covering at
    least ``min_spread`` of a 4 x 4 grid in both images) and its acceptance score
    :func:`.verify.confidence` is >= ``min_confidence``, the one knob that trades recall for
    precision (docs/evaluate.md has the table); of several accepted candidates the one with the
    highest confidence wins.

    Args:
        min_inliers: geometric inliers a loop needs (0: no verification, retrieval only).
        min_inlier_ratio: inliers / mutual-NN matches a loop needs.
        min_spread: share of the 16 cells of a 4 x 4 grid (over each image's keypoints) that hold
            an inlier, in the image where it is smaller: inliers clustered in one corner fail.
        min_confidence: acceptance score threshold in [0, 1).
        top: how many of the retrieved candidates are verified (best first).
        method: "auto" (essential with K, else fundamental), "fundamental", "homography" or
            "essential" (needs K).
        ransac_threshold: pixels (None: 3 for homography, 1 for fundamental/essential).
        max_distance: descriptor distance limit of the local matches (None: mutual NN only).
        store_features: keep local features of keyframes for verification.
        max_stored_features: keypoints kept per keyframe (best scores).
        descriptor_bits: how the kept descriptors are coded (:mod:`.stored_features`): 4 (two
            levels a byte, ``5 + D / 2`` bytes a keypoint: about 1.8x the keyframes in the same
            bytes; the default since session 43: on the five loop-closure dev sequences the same
            loops as int8 at 0.60 of the map bytes, docs/evaluate.md) or 8 (int8, ``5 + D``; for
            descriptors too alike for 4 bits, which the runtime warns about).
        rotation: with the essential matrix, also fit a rotation-only model at the same threshold
            and keep whichever explains more matches (views from one spot, where the essential
            matrix's cheirality check drops the points at infinity).
    """

    min_inliers: int = 20
    top: int = 3
    min_inlier_ratio: float = 0.2
    min_spread: float = 0.25
    min_confidence: float = MIN_CONFIDENCE
    method: str = "auto"
    ransac_threshold: float | None = None
    max_distance: float | None = None
    store_features: bool = True
    max_stored_features: int = 512
    rotation: bool = True
    descriptor_bits: int = 4

    def __post_init__(self) -> None:
        if self.method not in VERIFICATIONS:
            raise ValueError(f"unknown verification {self.method!r}; choose one of {VERIFICATIONS}")
        _at_least("min_inliers", self.min_inliers, 0)
        _at_least("verify_top (VerifyConfig.top)", self.top, 0)
        _at_least("max_stored_features", self.max_stored_features, 1)
        if self.descriptor_bits not in BITS:
            raise ValueError(f"descriptor_bits must be one of {BITS}, got {self.descriptor_bits!r}")
        for name in ("min_inlier_ratio", "min_spread", "min_confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
            object.__setattr__(self, name, float(value))


@dataclass(frozen=True)
class PruneConfig:
    """``duplicate_score``: cosine similarity above which ``prune()`` merges two keyframes
    (pick it between the similarity of consecutive keyframes and that of different places)."""

    duplicate_score: float = 0.9

    def __post_init__(self) -> None:
        object.__setattr__(self, "duplicate_score", check_duplicate_score(self.duplicate_score))


def check_duplicate_score(value: Any) -> float:
    """A cosine similarity threshold in [-1, 1] (NaN or anything outside would merge every
    keyframe, or none, in ``prune()``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"duplicate_score must be a number in [-1, 1], got {value!r}")
    value = float(value)
    if not -1.0 <= value <= 1.0:  # also False for NaN
        raise ValueError(f"duplicate_score must be a number in [-1, 1], got {value!r}")
    return value


# group name (the detector's keyword for a config object) -> its class
GROUPS: dict[str, type] = {
    "index": IndexConfig,
    "retrieval": RetrievalConfig,
    "temporal": TemporalConfig,
    "verify": VerifyConfig,
    "pruning": PruneConfig,
}

# flat keyword (constructor, saved maps) -> (group, field); in the order maps have always saved them
LEGACY_OPTIONS: dict[str, tuple[str, str]] = {
    "index": ("index", "kind"),
    "pca_dim": ("index", "pca_dim"),
    "pca_whiten": ("index", "pca_whiten"),
    "pq_bytes": ("index", "pq_bytes"),
    "nlist": ("index", "nlist"),
    "nprobe": ("index", "nprobe"),
    "train_size": ("index", "train_size"),
    "min_score": ("retrieval", "min_score"),
    "min_inliers": ("verify", "min_inliers"),
    "temporal_k": ("temporal", "k"),
    "temporal_window": ("temporal", "window"),
    "top_k": ("retrieval", "top_k"),
    "verify_top": ("verify", "top"),
    "exclude_recent": ("retrieval", "exclude_recent"),
    "verification": ("verify", "method"),
    "ransac_threshold": ("verify", "ransac_threshold"),
    "max_distance": ("verify", "max_distance"),
    "store_features": ("verify", "store_features"),
    "max_stored_features": ("verify", "max_stored_features"),
    "descriptor_bits": ("verify", "descriptor_bits"),
    "duplicate_score": ("pruning", "duplicate_score"),
    "min_inlier_ratio": ("verify", "min_inlier_ratio"),
    "min_spread": ("verify", "min_spread"),
    "min_confidence": ("verify", "min_confidence"),
    "verify_rotation": ("verify", "rotation"),
}


def legacy_default(name: str) -> Any:
    """Default of a flat option: its group's field default (the constructor uses the same)."""
    group, field = LEGACY_OPTIONS[name]
    return next(f.default for f in dataclasses.fields(GROUPS[group]) if f.name == field)


def resolve(given: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The five config groups from config objects and flat options.

    given: group name -> config object or None; options: flat name -> value. A group given as an
    object takes its settings from it alone: a flat option of that group that is not at its
    default raises ValueError (the two would disagree).
    """
    unknown = set(options) - set(LEGACY_OPTIONS)
    if unknown:
        raise TypeError(f"unknown loop-closure option(s): {sorted(unknown)}")
    fields: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    for name, value in options.items():
        group, field = LEGACY_OPTIONS[name]
        if given.get(group) is None:
            fields[group][field] = value
        elif value != legacy_default(name):
            raise ValueError(
                f"{name}={value!r} conflicts with {group}={given[group]!r}: set it in the config"
            )
    out = {}
    for group, cls in GROUPS.items():
        obj = given.get(group)
        if obj is not None and not isinstance(obj, cls):
            raise TypeError(f"{group} must be a {cls.__name__}, got {type(obj).__name__}")
        out[group] = obj if obj is not None else cls(**fields[group])
    return out


def flatten(groups: dict[str, Any]) -> dict[str, Any]:
    """The flat options (what maps save) of config groups (group name -> config object)."""
    return {name: getattr(groups[group], field) for name, (group, field) in LEGACY_OPTIONS.items()}


class _FlatOption:
    """One flat option as an attribute of the detector (``det.min_inliers``), read from and
    written to its group (``det.verify_config``; writing replaces it with a validated copy)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.group, self.field = LEGACY_OPTIONS[name]

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, f"{self.group}_config"), self.field)

    def __set__(self, obj: Any, value: Any) -> None:
        attr = f"{self.group}_config"
        setattr(obj, attr, dataclasses.replace(getattr(obj, attr), **{self.field: value}))


class FlatOptions:
    """The flat options as attributes, as the detector had them before the groups (a mixin for a
    class with ``index_config``, ``retrieval_config``, ``temporal_config``, ``verify_config`` and
    ``pruning_config``)."""

    index = _FlatOption()  # the index kind: "flat", "pq" or "ivfpq"
    pca_dim = _FlatOption()
    pca_whiten = _FlatOption()
    pq_bytes = _FlatOption()
    nlist = _FlatOption()
    nprobe = _FlatOption()
    train_size = _FlatOption()
    min_score = _FlatOption()
    min_inliers = _FlatOption()
    temporal_k = _FlatOption()
    temporal_window = _FlatOption()
    top_k = _FlatOption()
    verify_top = _FlatOption()
    exclude_recent = _FlatOption()
    verification = _FlatOption()
    ransac_threshold = _FlatOption()
    max_distance = _FlatOption()
    store_features = _FlatOption()
    max_stored_features = _FlatOption()
    duplicate_score = _FlatOption()
    min_inlier_ratio = _FlatOption()
    min_spread = _FlatOption()
    min_confidence = _FlatOption()
    verify_rotation = _FlatOption()
    descriptor_bits = _FlatOption()
