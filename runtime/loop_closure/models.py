"""The ONNX models a map is built with: loaded when first needed, and checked against the models
the map records (descriptors of a different model are not comparable with the map's)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from homeloc.runtime.assets import graph_sha256, replaced_graphs
from homeloc.runtime.features import Features
from homeloc.runtime.frontend import Frontend
from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.places import GlobalDescriptor


class MapModels:
    """The place (global descriptor) and keypoint models of a map.

    ``info`` is the identity of each kind of model ("places", "keypoints") the map was built
    with; it is saved with the map. A model given as a path is opened at once; None means the
    shipped model, opened when first needed (descriptor-only use never opens it).
    ``global_model="frontend"``: no place model; the global descriptor is the frontend's own
    (``Features.global_descriptor``, one forward pass for both; default frontend: the shipped
    one-pass ``frontend`` model), and the frontend's identity is also the map's "places" identity.
    ``global_model="places"``: the shipped separate place model (opened when first needed) with
    the shipped keypoint-only model. ``global_model=None``: "frontend" unless a given frontend
    has no global output, then "places" (what None meant before the one pass shipped).
    """

    FRONTEND = "frontend"
    PLACES = "places"

    def __init__(
        self,
        global_model: GlobalDescriptor | str | os.PathLike | None,
        frontend: Frontend | str | os.PathLike | None,
    ) -> None:
        if isinstance(frontend, (str, os.PathLike)):
            frontend = Frontend(frontend)
        if global_model is None:
            # the one pass is the default: it matched or beat the place model on every dev loop
            # sequence (docs/evaluate.md); a keypoint-only frontend keeps the old pairing
            one_pass = frontend is None or frontend.has_global
            global_model = self.FRONTEND if one_pass else self.PLACES
        self.from_frontend = isinstance(global_model, str) and global_model == self.FRONTEND
        if isinstance(global_model, str) and global_model in (self.FRONTEND, self.PLACES):
            global_model = None
        self.places = (
            GlobalDescriptor(global_model) if isinstance(global_model, (str, os.PathLike)) else global_model
        )
        self.keypoints = frontend
        if self.from_frontend and self.keypoints is not None and not self.keypoints.has_global:
            raise ValueError(f"{self.keypoints.model_path}: global_model='frontend' needs a frontend model "
                             "with a 'global' output (python -m homeloc.export.frontend)")  # fmt: skip
        self.info: dict[str, dict] = {}
        self._checked: set[int] = set()  # id() of the model objects already checked against the map

    def places_model(self, dim: int | None) -> GlobalDescriptor:
        """The place model (the shipped one if none was given), checked against the map."""
        if self.places is None:
            self.places = GlobalDescriptor(None)
            self.check(dim)
        return self.places

    def keypoint_model(self, dim: int | None) -> Frontend:
        """The keypoint model (the shipped one if none was given), checked against the map."""
        if self.keypoints is None:
            self.keypoints = Frontend(None, global_descriptor=self.from_frontend)
            self.check(dim)
        return self.keypoints

    def describe_image(self, image: np.ndarray, dim: int | None) -> np.ndarray:
        """Global descriptor of an image: the place model's, or the frontend's own (one pass)."""
        if self.from_frontend:
            return self.keypoint_model(dim).extract(image).global_descriptor
        return self.places_model(dim).describe(image)[0]

    def one_pass(
        self, x: np.ndarray, features: Features | None, dim: int | None
    ) -> tuple[np.ndarray, Features | None]:
        """(descriptor or image, features): with ``global_model="frontend"`` an image is replaced by
        the global descriptor of its features (given ones that carry it, else extracted now), so
        the frame runs through the network once for both. Otherwise nothing changes (a place
        model's map never takes a frontend's descriptor: different spaces)."""
        if not self.from_frontend or not isinstance(x, np.ndarray) or x.ndim < 2:
            return x, features
        if not isinstance(features, Features) or features.global_descriptor is None:
            features = self.keypoint_model(dim).extract(x)
        return features.global_descriptor, features

    def check(self, dim: int | None, again: bool = False) -> None:
        """Record the identity of the models in use, or refuse one that differs from the map's
        (dim: the map's descriptor dimension, None while empty). again: re-check models already
        checked (after ``info`` was replaced by a loaded map's)."""
        if again:
            self._checked.clear()
        g, f = self.places, self.keypoints
        if g is not None and id(g) not in self._checked:
            self._note("places", g.model_path, g.metadata)
            if dim is not None and g.dim != dim:
                raise ValueError(f"{g.model_path}: gives {g.dim}-d descriptors, the map holds {dim}-d")
            self._checked.add(id(g))
        if f is not None and id(f) not in self._checked:
            self._note("keypoints", f.model_path, f.metadata)
            if self.from_frontend:
                self._note("places", f.model_path, f.metadata)
                g_dim = f.metadata.get("homeloc.global_dim")
                if dim is not None and g_dim is not None and int(g_dim) != dim:
                    raise ValueError(
                        f"{f.model_path}: gives {g_dim}-d global descriptors, the map holds {dim}-d"
                    )
            self._checked.add(id(f))

    @classmethod
    def built_with(cls, info: dict[str, dict]) -> str:
        """FRONTEND or PLACES: where the global descriptors of a map with these recorded models
        came from (a one-pass map records the frontend as both its "places" and "keypoints"
        model; a map that records neither was never given images: the current default)."""
        places, keypoints = info.get("places"), info.get("keypoints")
        if places is None and keypoints is None:
            return cls.FRONTEND
        same = (
            places is not None
            and keypoints is not None
            and places.get("identity") == keypoints.get("identity")
        )
        return cls.FRONTEND if same else cls.PLACES

    def adopt_given(self) -> None:
        """Forget the recorded identity of each kind of model that was given: the given models
        become the map's at the next :meth:`check` (loading with check_model=False)."""
        for kind, model in (("places", self.places), ("keypoints", self.keypoints)):
            if model is not None:
                self.info.pop(kind, None)

    def _note(self, kind: str, path: Path, metadata: dict[str, str]) -> None:
        # identity: the trained weights (homeloc.weights_sha256, the same for the fp32 and int8
        # exports of one checkpoint), else the file itself; since identity_version 2 also the hash of
        # the graph's actual weights, so a file whose weights changed under kept metadata is refused
        # (maps saved before, without it, get the metadata check alone)
        weights = metadata.get("homeloc.weights_sha256")
        info = {"identity": f"weights:{weights}" if weights else f"file:{file_sha256(path)}",
                "model_version": metadata.get("homeloc.model_version"),
                "precision": metadata.get("homeloc.precision"),
                "graph_sha256": graph_sha256(path), "identity_version": 2}  # fmt: skip
        known = self.info.get(kind)
        if known is None:
            self.info[kind] = info
        elif known.get("identity") != info["identity"] or (
            # a shipped file that replaced the map's when the same weights were quantized again
            _weights_changed(known, info) and known.get("graph_sha256") not in replaced_graphs(path)
        ):
            raise ValueError(
                f"{path}: this {kind} model differs from the one the map was built with "
                f"({_differs(known, info)}); its descriptors are not "
                "comparable. Rebuild the map, or load it with check_model=False if you know they are compatible"
            )


def _weights_changed(known: dict, info: dict) -> bool:
    """Same metadata identity, same precision, other weights (only maps that record them)."""
    return (
        known.get("identity_version", 1) >= 2
        and known.get("precision") == info["precision"]
        and known.get("graph_sha256") != info["graph_sha256"]
    )


def _differs(known: dict, info: dict) -> str:
    if known.get("identity") != info["identity"]:
        return f"{info['identity'][:20]} vs {str(known.get('identity'))[:20]}"
    return (
        f"its weights hash {info['graph_sha256'][:12]} vs {str(known.get('graph_sha256'))[:12]} although "
        "its metadata matches: a modified file, or one quantized again that does not list the map's "
        "as replaced in runtime/assets/MANIFEST.json"
    )
