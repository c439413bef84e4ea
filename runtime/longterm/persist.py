"""The long-term map on disk: a :mod:`homeloc.runtime.mapstore` container (the checksummed,
versioned loop-closure map file), format ``homeloc-longterm-map``, ``format_version`` 2 (1: the
same without the places' colour memory and its history; such a map loads with none), or 3 when its
stored descriptors are 4-bit (``feat_bits``): a runtime from before 4-bit coding refuses such a
file naming it, instead of reading the packed bytes as int8.

Metadata: settings, K, rooms, model identities, map clock, last room, next place id, the
change monitor's histories (failures, colour shifts) and the odometry's noise evidence
(:class:`.odometry.NoiseScale`; absent before session 44). Arrays, in this order (it fixes the file's bytes): the experience
columns (:data:`.store.EXPERIENCE_COLUMNS`), ``descriptors``, the place columns, the places'
colour memory (:data:`.store.COLOUR_COLUMNS`, version 2), then the stored
local features as the loop-closure map keeps them (``feat_positions``, ``feat_counts``,
``feat_keypoints`` / ``feat_descriptors`` / ``feat_scores``).

Old maps load: a file of a newer ``format_version`` is refused naming the file, and a loop-closure
map (``homeloc-loop-closure-map``) loads as a long-term map whose keyframes are each the one
experience of its own place (no pose, no room), with its verification settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from homeloc.runtime import __version__, mapstore
from homeloc.runtime.longterm.config import (
    BudgetConfig,
    ChangeConfig,
    OdometryConfig,
    PlaceConfig,
    SearchConfig,
)
from homeloc.runtime.longterm.odometry import NoiseScale
from homeloc.runtime.longterm.rooms import NO_ROOM
from homeloc.runtime.longterm.store import COLOUR_COLUMNS, EXPERIENCE_COLUMNS, PLACE_COLUMNS, Tables
from homeloc.runtime.loop_closure import persist as lc_persist
from homeloc.runtime.loop_closure.config import VerifyConfig, resolve
from homeloc.runtime.loop_closure.index import DescriptorIndex
from homeloc.runtime.loop_closure.stored_features import pack_features, saved_bits, unpack_features

FORMAT = "homeloc-longterm-map"
FORMAT_VERSION = 2  # what a map with int8 descriptors is written as
FORMAT_VERSION_4BIT = 3  # ... and one with 4-bit descriptors
READS = (1, 2, 3)  # format versions this runtime reads


def save(m, path: str | os.PathLike) -> Path:
    """Write LongTermMap ``m`` atomically; returns the path."""
    t = m._t
    arrays = dict(t.cols)
    arrays["descriptors"] = np.zeros((0, 0), np.float32) if t.descriptors is None else t.descriptors
    arrays.update(t.places)
    arrays.update(t.colours)
    ids = t.cols["ids"]
    arrays.update(pack_features(ids, t.features))
    version = FORMAT_VERSION_4BIT if "feat_bits" in arrays else FORMAT_VERSION
    meta = {
        "format": FORMAT, "format_version": version, "runtime_version": __version__,
        "settings": m.settings(), "K": None if m.K is None else m.K.tolist(), "rooms": m.rooms.rects.tolist(),
        "models": m._models.info, "clock": m.clock, "last_room": m.last_room, "next_place": m._next_place,
        "changes": m._changes.state(), "colour_changes": m._changes.colour_state(),
        "odometry_noise": [m.noise.excess, m.noise.model],
    }  # fmt: skip
    return mapstore.write(path, meta, arrays)


def _configs(settings: dict, bits: int) -> dict:
    """The map's settings as config objects; ``bits``: the file's descriptor coding, which a map saved
    before ``VerifyConfig.descriptor_bits`` existed keeps."""
    kinds = {"place": PlaceConfig, "search": SearchConfig, "budget": BudgetConfig, "change": ChangeConfig,
             "verify": VerifyConfig}  # fmt: skip
    odometry = settings.get("odometry")  # absent in maps written before the pose prior existed
    if odometry is not None:
        # one saved before session 44 grew its prior at the model's noise, one saved before session 45
        # reported the least-cost experience through the prior, one saved before session 46 dropped
        # the prior past the heading bound: each still does
        odometry = {
            "adapt_max_scale": None,
            "nearest_place": False,
            "lost_heading_confidence": None,
        } | odometry
    # a map written before session 38 compared each frame with every signature: it keeps doing so
    settings = settings | {"change": {"colour_min_age": 1} | settings["change"],
                           "verify": {"descriptor_bits": bits} | settings["verify"]}  # fmt: skip
    return {name: cls(**settings[name]) for name, cls in kinds.items()} | {
        "learn": bool(settings["learn"]), "odometry": None if odometry is None else OdometryConfig(**odometry)}  # fmt: skip


def load(cls, path, global_model, frontend, check_model: bool):
    """A LongTermMap from a long-term or loop-closure map file (see the module docstring)."""
    meta, arrays = mapstore.read(path)
    if meta.get("format") == lc_persist.FORMAT:
        return _from_loop_closure(
            cls, lc_persist.SavedMap(path, meta, arrays), global_model, frontend, check_model
        )
    if meta.get("format") != FORMAT:
        raise mapstore.MapFormatError(f"{path}: not a long-term map (format {meta.get('format')!r})")
    if meta.get("format_version") not in READS:
        raise mapstore.MapFormatError(
            f"{path}: long-term map format version {meta.get('format_version')} is not supported (this runtime reads {READS})"
        )
    try:
        m = cls(
            global_model,
            frontend,
            K=meta["K"],
            rooms=meta["rooms"],
            **_configs(meta["settings"], saved_bits(arrays)),
        )
        t = Tables()
        t.cols = {name: arrays[name] for name in EXPERIENCE_COLUMNS}
        t.places = {name: arrays[name] for name in PLACE_COLUMNS}
        if meta["format_version"] >= 2:  # version 1 maps had no colour memory: empty
            t.colours = {name: arrays[name] for name in COLOUR_COLUMNS}
        t.descriptors = arrays["descriptors"] if len(t.cols["ids"]) else None
        t.features = unpack_features(arrays, t.cols["ids"])
        m.clock, m.last_room, m._next_place = int(meta["clock"]), meta["last_room"], int(meta["next_place"])
        m._changes.restore(meta["changes"], meta.get("colour_changes"))
        # absent in maps saved before session 44: no evidence yet (the model's own noise)
        m.noise = NoiseScale(*(float(v) for v in meta.get("odometry_noise", (0.0, 0.0))))
    except (KeyError, TypeError, ValueError) as e:
        raise mapstore.MapFormatError(f"{path}: long-term map content not understood ({e})") from None
    m._t = t
    _adopt_models(m, meta, check_model)
    return m


def _adopt_models(m, meta: dict, check_model: bool) -> None:
    m._models.info = dict(meta.get("models", {}))
    if not check_model:
        m._models.adopt_given()
    m._models.check(m.dim, again=True)


def _from_loop_closure(cls, saved: lc_persist.SavedMap, global_model, frontend, check_model: bool):
    """Each keyframe of a loop-closure map becomes the one experience of its own place."""
    path = saved.path
    try:
        groups = resolve({}, saved.config)
    except (TypeError, ValueError) as e:
        raise mapstore.MapFormatError(f"{path}: map configuration not understood ({e})") from None
    if groups["index"].pca_dim is not None:
        raise mapstore.MapFormatError(
            f"{path}: a loop-closure map with PCA-reduced descriptors cannot become a long-term map"
        )
    ids = lc_persist.restore_ids(saved)
    index = lc_persist.restore_index(saved, DescriptorIndex(groups["index"]), len(ids))
    feats = lc_persist.restore_features(saved, ids)
    m = cls(global_model, frontend, K=saved.meta.get("K"), verify=groups["verify"])
    desc = index.decode_all()
    for i, kf in enumerate(ids):
        m._t.add_place(i, None, NO_ROOM)
        row = {"ids": kf, "place": i, "pose": np.full((3, 4), np.nan), "created": 0, "last_used": 0, "matches": 0,
               "stale": 0}  # fmt: skip
        m._t.append(row, desc[i], feats.get(int(kf)))
    m._next_place = len(ids)
    _adopt_models(m, saved.meta, check_model)
    return m
