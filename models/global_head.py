"""The global place descriptor from the keypoint network's own dense descriptors (one forward pass).

HF-Net idea: the robot already computes ``KeypointNet``'s dense, L2-normalised, lighting-invariant
descriptor map for matching; ``GlobalHead`` aggregates that map (NetVLAD, soft assignment to K
centres, then a linear projection) into one place vector, so loop closure costs no second network.
``FrontendNet`` puts both in one dense core: ``image -> (logits, descriptors, global)`` with fixed
tensor ops only (ONNX/int8-clean, dynamic H/W: NetVLAD sums over however many cells there are).

Why the descriptor map and not the trunk features: plain VLAD over these descriptors, untrained,
already matched the trained 128x160 place network on the indoor night set (docs/training.md); the
head only has to learn which residuals matter for places.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from homeloc.models.keypoints import KeypointNet
from homeloc.models.places import NetVLAD, pca_projection


def grid_means(x: Tensor, rows: int, cols: int) -> Tensor:
    """B x D x h x w -> B x (rows*cols*D): the mean descriptor of each cell of a rows x cols grid
    (row-major cells, D values each; a cell with no position, when h < rows, stays 0).

    Built from Range/MatMul only, so it exports with dynamic h, w (``adaptive_avg_pool2d`` to a
    fixed grid does not); equal to ``adaptive_avg_pool2d`` when h, w divide evenly.
    """

    def bins(n: int | Tensor, k: int) -> Tensor:  # k x n: averaging weights of each bin
        pos = torch.arange(n, device=x.device, dtype=x.dtype)
        b = torch.floor((pos + 0.5) * k / n)
        m = (b[None, :] == torch.arange(k, device=x.device, dtype=x.dtype)[:, None]).to(x.dtype)
        return m / m.sum(1, keepdim=True).clamp(min=1.0)

    ry, rx = bins(x.shape[-2], rows), bins(x.shape[-1], cols)
    cells = torch.matmul(ry, torch.matmul(x, rx.t()))  # B x D x rows x cols
    return cells.flatten(2).transpose(1, 2).flatten(1)


@torch.no_grad()
def _set_linear(layer: nn.Linear, weight: Tensor, bias: Tensor) -> None:
    layer.weight.copy_(weight)
    layer.bias.copy_(bias)


class GridMeans(nn.Module):
    """``grid_means`` as a module (no weights), so its nodes carry a name (``head/grid_pool``) that
    int8 export can keep float: the averaging weights are exact 0/1 over counts, nothing to quantize."""

    def __init__(self, rows: int, cols: int) -> None:
        super().__init__()
        self.rows, self.cols = int(rows), int(cols)

    def forward(self, x: Tensor) -> Tensor:
        return grid_means(x, self.rows, self.cols)


class GlobalHead(nn.Module):
    """Dense local descriptors -> one unit place vector.

    Args:
        dim: descriptor dimension D of the keypoint network (64 for ``edge``).
        clusters: NetVLAD centres K (initialise them with ``init_centroids`` from k-means).
        out_dim: projection size (None: the raw K*D NetVLAD vector).
        attention: a learned per-cell weight (sigmoid of a 1x1 conv over the descriptor) on the
            soft assignment, so cells that say nothing about the place (blank walls, noise in the
            dark) can be ignored; it starts uniform (the plain NetVLAD floor).
        grid: (rows, cols) adds a layout branch: the mean descriptor of each grid cell
            (``grid_means``), L2, a linear map to ``grid_dim`` (``fit_grid``: PCA-whitening), L2,
            times ``grid_weight``, concatenated after the NetVLAD output (then L2 over both).
            Why: NetVLAD is orderless, and where things are in the frame is much of what says
            "same place" on a route seen from the same track (Nordland); None: NetVLAD only.

    forward(descriptors: B x D x h x w float32, unit norm over D (not re-normalised); any h, w >= 1)
    -> B x out_dim float32, unit L2 norm.
    """

    def __init__(
        self,
        dim: int = 64,
        clusters: int = 64,
        out_dim: int | None = 256,
        attention: bool = False,
        grid: tuple[int, int] | None = None,
        grid_dim: int = 256,
        grid_weight: float = 0.5,
    ) -> None:
        super().__init__()
        if dim < 1 or clusters < 1 or (out_dim is not None and out_dim < 1):
            raise ValueError(f"dim, clusters and out_dim must be positive, got {dim}, {clusters}, {out_dim}")
        # plain ints: hparams are saved for the weights-only loader (a CLI int subclass would not load)
        self.dim, self.clusters = int(dim), int(clusters)
        self.out_dim_arg = None if out_dim is None else int(out_dim)
        # the keypoint network's descriptors are unit already: no second normalisation (0.4 ms at 640x480)
        self.pool = NetVLAD(self.dim, self.clusters, normalize_input=False)
        self.proj = nn.Linear(self.pool.out_dim, out_dim) if out_dim else None
        if grid is not None and (len(grid) != 2 or min(grid) < 1 or grid_dim < 1 or grid_weight <= 0):
            raise ValueError(f"grid must be (rows, cols) >= 1 with grid_dim >= 1 and grid_weight > 0, "
                             f"got {grid}, {grid_dim}, {grid_weight}")  # fmt: skip
        self.grid = None if grid is None else (int(grid[0]), int(grid[1]))
        self.grid_proj = self.grid_pool = None
        if self.grid is not None:
            self.grid_pool = GridMeans(*self.grid)
            # buffers: saved with the weights, so a checkpoint says its layout
            self.register_buffer("grid_shape", torch.tensor(self.grid))
            self.register_buffer("grid_weight", torch.tensor(float(grid_weight)))
            self.grid_proj = nn.Linear(self.grid[0] * self.grid[1] * self.dim, int(grid_dim))
        self.attention = nn.Conv2d(self.dim, 1, 1) if attention else None
        if self.attention is not None:
            # a uniform weight changes nothing (intra-normalisation removes each cluster's scale):
            # 0.5 everywhere starts as plain NetVLAD, where the sigmoid's gradient is largest
            nn.init.zeros_(self.attention.weight)
            nn.init.zeros_(self.attention.bias)

    @property
    def out_dim(self) -> int:
        vlad = self.out_dim_arg or self.pool.out_dim
        return vlad + (0 if self.grid_proj is None else self.grid_proj.out_features)

    def grid_cells(self, descriptors: Tensor) -> Tensor:
        """B x (rows*cols*D) unit vectors of grid cell means (what ``fit_grid`` fits)."""
        if self.grid is None:
            raise ValueError("this head has no grid branch")
        return F.normalize(self.grid_pool(descriptors), dim=1)

    def pooled(self, descriptors: Tensor) -> Tensor:
        """B x (K*D) NetVLAD vectors before the projection (what ``fit_pca`` fits)."""
        if descriptors.ndim != 4 or descriptors.shape[1] != self.dim:
            raise ValueError(f"descriptors must be B x {self.dim} x h x w, got {tuple(descriptors.shape)}")
        w = None if self.attention is None else torch.sigmoid(self.attention(descriptors))
        return self.pool(descriptors, w)

    def forward(self, descriptors: Tensor) -> Tensor:
        g = self.pooled(descriptors)
        if self.proj is not None:
            g = F.normalize(self.proj(g), dim=1)
        if self.grid_proj is not None:
            c = F.normalize(self.grid_proj(self.grid_cells(descriptors)), dim=1)
            g = F.normalize(torch.cat([g, self.grid_weight * c], dim=1), dim=1)
        return g

    @torch.no_grad()
    def init_centroids(self, centroids: Tensor) -> None:
        """K x D centres (k-means over the descriptors, ``models.places.kmeans_centroids``)."""
        if tuple(centroids.shape) != (self.clusters, self.dim):
            raise ValueError(f"centroids must be {self.clusters} x {self.dim}, got {tuple(centroids.shape)}")
        self.pool.init_from_centroids(centroids)

    @torch.no_grad()
    def fit_pca(self, pooled: Tensor, whiten: bool = True) -> None:
        """Projection = PCA(-whitening) of ``pooled`` (N x K*D NetVLAD vectors, N >= out_dim)."""
        if self.proj is None:
            return
        _set_linear(self.proj, *pca_projection(pooled, self.proj.out_features, whiten))

    @torch.no_grad()
    def fit_grid(self, cells: Tensor) -> None:
        """Grid projection = PCA-whitening of ``cells`` (N x rows*cols*D ``grid_cells`` rows, N >= grid_dim)."""
        if self.grid_proj is None:
            raise ValueError("this head has no grid branch")
        _set_linear(self.grid_proj, *pca_projection(cells, self.grid_proj.out_features, whiten=True))

    # ------------------------------------------------------------------ checkpoints
    @property
    def hparams(self) -> dict[str, Any]:
        h = {"dim": self.dim, "clusters": self.clusters, "out_dim": self.out_dim_arg,
             "attention": self.attention is not None}  # fmt: skip
        if self.grid is not None:
            h.update(
                grid=self.grid, grid_dim=self.grid_proj.out_features, grid_weight=float(self.grid_weight)
            )
        return h

    def save(self, path: str | os.PathLike) -> None:
        """Write ``{"state_dict", "hparams"}`` atomically."""
        from homeloc.runtime.io import atomic_open

        with atomic_open(path, "wb") as f:
            torch.save({"state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
                        "hparams": self.hparams}, f)  # fmt: skip

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, map_location: str = "cpu") -> GlobalHead:
        """Load ``save`` output or a Lightning checkpoint of ``train.global_head.GlobalHeadSystem``
        (weights under ``head.``); D, K and the output size come from the weights' shapes."""
        from homeloc.models.checkpoint_io import load_checkpoint

        ckpt = load_checkpoint(path, map_location)
        if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
            raise ValueError(f"{path}: not a GlobalHead checkpoint (no state_dict)")
        state = ckpt["state_dict"]
        if any(k.startswith("head.") for k in state):
            state = {k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")}
        if "pool.centroids" not in state:
            raise ValueError(f"{path}: holds no GlobalHead weights (no pool.centroids)")
        # the shapes say what to rebuild (a Lightning checkpoint's hyper-parameters lack D)
        clusters, dim = state["pool.centroids"].shape
        out_dim = state["proj.weight"].shape[0] if "proj.weight" in state else None
        grid = {}
        if "grid_shape" in state:
            grid = {"grid": tuple(int(v) for v in state["grid_shape"].tolist()),
                    "grid_dim": int(state["grid_proj.weight"].shape[0]),
                    "grid_weight": float(state["grid_weight"])}  # fmt: skip
        head = cls(int(dim), int(clusters), out_dim, attention="attention.weight" in state, **grid)
        try:
            head.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(
                f"{path}: weights do not fit GlobalHead({dim}, {clusters}, {out_dim}): {e}"
            ) from None
        return head.to(map_location).eval()


class FrontendNet(nn.Module):
    """The robot's one dense core: ``KeypointNet`` + ``GlobalHead`` over its descriptor map.

    forward(image: B x 1 x H x W float32 in [0, 1], H, W multiples of 8) ->
    (logits B x 65 x H/8 x W/8, descriptors B x D x H/8 x W/8 unit norm, global B x G unit norm);
    the first two are exactly ``keypoints(image)``.
    """

    def __init__(self, keypoints: KeypointNet, head: GlobalHead) -> None:
        super().__init__()
        if keypoints.descriptor_dim != head.dim:
            raise ValueError(
                f"head expects {head.dim}-d descriptors, the keypoint net gives {keypoints.descriptor_dim}"
            )
        self.keypoints, self.head = keypoints, head

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, descriptors = self.keypoints(image)
        return logits, descriptors, self.head(descriptors)
