"""The loop-closure map on disk: a :mod:`homeloc.runtime.mapstore` container (format
``homeloc-loop-closure-map``).

Metadata: the flat detector options (``config``), K, descriptor dimension, trained flag, model
identities and the runtime version. Arrays, in this order (it fixes the file's bytes):
``ids`` (int64, insertion order), ``index`` (``faiss.serialize_index`` bytes, absent while the
map is empty), ``pca_A``/``pca_b`` (when PCA is used), then the local features of the keyframes
that have them: ``feat_positions`` (map positions), ``feat_counts`` and the concatenated
``feat_keypoints``/``feat_descriptors``/``feat_scores`` (absent when no keyframe has features).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from homeloc.runtime import __version__, mapstore
from homeloc.runtime.loop_closure.index import DescriptorIndex, Projection
from homeloc.runtime.loop_closure.stored_features import (
    StoredFeatures,
    pack_features,
    saved_bits,
    unpack_features,
)

FORMAT = "homeloc-loop-closure-map"


def save_map(
    path: str | os.PathLike,
    *,
    ids: np.ndarray,
    index: DescriptorIndex,
    features: dict[int, StoredFeatures],
    config: dict,
    K: np.ndarray | None,
    models: dict[str, dict],
) -> Path:
    """Write a map atomically; returns its path."""
    arrays: dict[str, np.ndarray] = {"ids": ids}
    if index.faiss_index is not None:
        arrays["index"] = faiss.serialize_index(index.faiss_index)
    if index.projection is not None:
        arrays["pca_A"], arrays["pca_b"] = index.projection
    arrays.update(pack_features(ids, features))
    meta = {
        "format": FORMAT,
        "runtime_version": __version__,
        "config": dict(config),
        "K": None if K is None else K.tolist(),
        "dim": index.dim,
        "trained": index.trained,
        "models": models,
    }
    return mapstore.write(path, meta, arrays)


@dataclass
class SavedMap:
    """A map file's content (arrays still raw: see :func:`restore_index`, :func:`restore_features`)."""

    path: str | os.PathLike
    meta: dict
    arrays: dict[str, np.ndarray]

    @property
    def config(self) -> dict:
        """The flat detector options (KeyError when missing). A map saved before the option
        ``descriptor_bits`` existed keeps the coding its file holds (int8), not today's default."""
        config = self.meta["config"]
        if "descriptor_bits" in config:
            return config
        try:
            bits = saved_bits(self.arrays)
        except ValueError as e:
            raise mapstore.MapFormatError(f"{self.path}: {e}") from None
        return {"descriptor_bits": bits} | config


def read_map(path: str | os.PathLike) -> SavedMap:
    """Read a map file: MapFormatError (a ValueError naming the file) for a damaged or foreign
    file, FileNotFoundError when there is none."""
    meta, arrays = mapstore.read(path)
    if meta.get("format") != FORMAT:
        raise mapstore.MapFormatError(f"{path}: not a loop-closure map (format {meta.get('format')!r})")
    return SavedMap(path, meta, arrays)


def restore_ids(saved: SavedMap) -> np.ndarray:
    return saved.arrays["ids"].astype(np.int64)


def restore_index(saved: SavedMap, index: DescriptorIndex, num_ids: int) -> DescriptorIndex:
    """The saved descriptor index, with the settings of ``index`` (the detector's)."""
    a, meta = saved.arrays, saved.meta
    dim, trained = meta["dim"], bool(meta["trained"])
    faiss_index = None
    if "index" in a:
        faiss_index = faiss.deserialize_index(a["index"])
        if faiss_index.ntotal != num_ids:
            raise mapstore.MapFormatError(
                f"{saved.path}: index holds {faiss_index.ntotal} entries for {num_ids} ids"
            )
    projection: Projection | None = (a["pca_A"], a["pca_b"]) if "pca_A" in a else None
    return DescriptorIndex.restore(index.config, dim, trained, faiss_index, projection)


def restore_features(saved: SavedMap, ids: np.ndarray) -> dict[int, StoredFeatures]:
    """kf_id -> stored local features of the keyframes that have them (MapFormatError naming the
    file for a coding this runtime does not read)."""
    try:
        return unpack_features(saved.arrays, ids)
    except ValueError as e:
        raise mapstore.MapFormatError(f"{saved.path}: {e}") from None
