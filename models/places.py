"""Global place descriptor (NetVLAD or GeM over a CNN trunk) for loop-closure detection.

`PlaceNet.forward(image) -> B×D` L2-normalised, fixed tensor ops only (ONNX/int8-clean). Trunks
train from random initialisation (no downloads): torchvision MobileNetV3-small or ResNet18, or
the keypoint network's own encoder (`keypoint:edge`), so one forward pass can serve both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NetVLAD(nn.Module):
    """NetVLAD (Arandjelović et al.): soft-assign local features to K centres, sum residuals.

    Input B×C×h×w, output B×(K*C) with intra-normalisation (per cluster) then global L2.
    `alpha` is the soft-assignment sharpness (1 / temperature) used when initialising from centres.
    """

    def __init__(self, dim: int, clusters: int = 32, alpha: float = 50.0, normalize_input: bool = True):
        super().__init__()
        self.dim, self.clusters, self.alpha = dim, clusters, alpha
        self.normalize_input = normalize_input  # False: the caller guarantees unit local features
        self.assign = nn.Conv2d(dim, clusters, 1, bias=True)
        self.centroids = nn.Parameter(torch.randn(clusters, dim) * 0.1)

    @torch.no_grad()
    def init_from_centroids(self, centroids: Tensor) -> None:
        """Centres from k-means over L2-normalised local features (see `kmeans_centroids`).

        Assignment logits alpha * (2 c·x - |c|^2) give a softmax equal to a soft nearest-centre rule."""
        c = F.normalize(centroids.float(), dim=1)
        self.centroids.copy_(c)
        self.assign.weight.copy_((2.0 * self.alpha * c)[..., None, None])
        self.assign.bias.copy_(-self.alpha * c.norm(dim=1) ** 2)

    def soft_assign(self, x: Tensor) -> Tensor:
        """B×C×h×w (already L2-normalised over C) -> B×K×h×w probabilities (sum to 1 over K)."""
        return F.softmax(self.assign(x), dim=1)

    def forward(self, x: Tensor, weights: Tensor | None = None) -> Tensor:
        """weights: optional B×1×h×w per-location weights multiplying the soft assignment."""
        if self.normalize_input:
            x = F.normalize(x, dim=1)
        xf = x.flatten(2)  # B×C×N, the map's own layout
        # The assignment conv as a linear map with the softmax over the last axis: the same numbers
        # as softmax(conv(x), dim=1), but ONNX Runtime's Softmax over axis 1 of B×K×h×w transposes
        # (3.7 of the head's 7.4 ms at 60x80 locations, 1 thread).
        a = F.softmax(
            F.linear(xf.transpose(1, 2), self.assign.weight.flatten(1), self.assign.bias), dim=-1
        )  # B×N×K
        if weights is not None:
            a = a * weights.flatten(2).transpose(1, 2)
        # sum_n a_nk (x_n - c_k) = (x @ a) - (sum_n a_nk) c_k, with sum_n a_nk from the same MatMul
        # (a row of ones under x): no transposed MatMul and no ReduceSum over N, which cost ORT
        # 0.35 of the head's 1.1-1.3 ms at 60x80 locations, 1 thread
        ones = torch.ones_like(xf[:, :1])
        va = torch.matmul(torch.cat([xf, ones], dim=1), a)  # B×(C+1)×K
        vlad = va[:, :-1] - va[:, -1:] * self.centroids.t()[None]  # B×C×K
        vlad = F.normalize(vlad, dim=1)  # intra-normalisation (per centre)
        return F.normalize(vlad.transpose(1, 2).flatten(1), dim=1)

    @property
    def out_dim(self) -> int:
        return self.dim * self.clusters


class GeM(nn.Module):
    """Generalised-mean pooling (Radenović et al.): (mean x^p)^(1/p), learnable p, then L2."""

    def __init__(self, dim: int, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.p = nn.Parameter(torch.tensor(float(p)))

    def forward(self, x: Tensor) -> Tensor:
        pooled = x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)
        return F.normalize(pooled, dim=1)

    @property
    def out_dim(self) -> int:
        return self.dim


def _mobilenet_trunk() -> tuple[nn.Module, int]:
    from torchvision.models import mobilenet_v3_small

    net = mobilenet_v3_small(weights=None)  # random init: nothing can be downloaded here
    return net.features, 576


def _resnet18_trunk() -> tuple[nn.Module, int]:
    from torchvision.models import resnet18

    r = resnet18(weights=None)
    return nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3, r.layer4), 512


class _KeypointTrunk(nn.Module):
    """The keypoint network's encoder and descriptor head (HF-Net idea: one shared backbone).

    Returns the dense local descriptors (B×D×H/8×W/8, before their L2 norm): initialised from a
    trained keypoint model they are already lighting-invariant, and NetVLAD over them beat VLAD
    over the fused trunk features (indoor night R@1 0.946 vs 0.914, untrained; docs/training.md)."""

    def __init__(self, preset: str):
        super().__init__()
        from homeloc.models.keypoints import KeypointNet

        self.net = KeypointNet(preset)
        # Detector parts are dead weight here (and unused parameters break DDP): drop them.
        self.net.fine = None
        del self.net.detector, self.net.detector_out
        self.out_channels = self.net.descriptor_dim

    def forward(self, x: Tensor) -> Tensor:
        feats, _ = self.net.encode(x)
        return self.net.descriptor_out(self.net.descriptor(feats))


BACKBONES = {"mobilenetv3_small": _mobilenet_trunk, "resnet18": _resnet18_trunk}


class PlaceNet(nn.Module):
    """Trunk -> 1x1 reduction -> NetVLAD or GeM -> optional linear projection -> L2.

    forward(image: B×3×H×W or B×1×H×W float32 in [0,1]) -> B×out_dim float32, unit norm.
    Images are resized to `input_size` (H, W) before the network, by `describe` and the runtime.
    Gray input is repeated to 3 channels for torchvision trunks (the robot may run an IR camera).
    """

    MEAN = (0.45, 0.45, 0.45)
    STD = (0.225, 0.225, 0.225)

    def __init__(
        self,
        backbone: str = "mobilenetv3_small",
        head: str = "netvlad",
        clusters: int = 32,
        reduce_dim: int | None = 64,
        out_dim: int | None = 256,
        input_size: tuple[int, int] = (128, 160),
    ):
        super().__init__()
        self.input_size = (int(input_size[0]), int(input_size[1]))  # H, W the network is trained and run at
        self.backbone_name, self.head_name = backbone, head
        self.clusters, self.reduce_dim, self.out_dim_arg = clusters, reduce_dim, out_dim
        if backbone.startswith("keypoint:"):
            self.trunk = _KeypointTrunk(backbone.split(":", 1)[1])
            channels, self.in_channels = self.trunk.out_channels, 1
        elif backbone in BACKBONES:
            self.trunk, channels = BACKBONES[backbone]()
            self.in_channels = 3
        else:
            raise ValueError(f"unknown backbone {backbone!r}; choose {sorted(BACKBONES)} or keypoint:PRESET")
        # torchvision's MobileNetV3 uses BatchNorm momentum 0.01, tuned for ImageNet-length runs:
        # on our short CPU runs its eval-mode statistics stay near init and recall collapses in
        # eval while train-mode batches look fine. 0.1 settles within ~30 steps.
        for m in self.trunk.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
        # reduce_dim None keeps the trunk's channels: a trained keypoint trunk's descriptors are
        # what we want to pool, and a random 1x1 mix would scramble them before training.
        self.reduce = nn.Conv2d(channels, reduce_dim, 1) if reduce_dim else nn.Identity()
        pool_dim = reduce_dim or channels
        if head == "netvlad":
            self.pool = NetVLAD(pool_dim, clusters)
        elif head == "gem":
            self.pool = GeM(pool_dim)
        else:
            raise ValueError(f"unknown head {head!r}; choose netvlad or gem")
        self.proj = nn.Linear(self.pool.out_dim, out_dim) if out_dim else None
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1))

    @property
    def out_dim(self) -> int:
        return self.out_dim_arg or self.pool.out_dim

    def local_features(self, image: Tensor) -> Tensor:
        """B×C×H×W [0,1] -> B×reduce_dim×h×w local features (what NetVLAD pools)."""
        if image.ndim != 4 or image.shape[1] not in (1, 3):
            raise ValueError(f"image must be B×1×H×W or B×3×H×W, got {tuple(image.shape)}")
        if self.in_channels == 3:
            x = image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image
            x = (x - self.mean) / self.std
        else:
            x = image.mean(1, keepdim=True) if image.shape[1] == 3 else image
        return self.reduce(self.trunk(x))

    def pooled(self, image: Tensor) -> Tensor:
        """B×pool_dim NetVLAD/GeM descriptors before the projection (what `fit_pca` fits)."""
        return self.pool(self.local_features(image))

    def forward(self, image: Tensor) -> Tensor:
        g = self.pooled(image)
        if self.proj is not None:
            g = F.normalize(self.proj(g), dim=1)
        return g

    def load_trunk(self, path: str | os.PathLike) -> None:
        """Initialise a `keypoint:*` trunk from a trained keypoint checkpoint (ours, not downloaded)."""
        if not isinstance(self.trunk, _KeypointTrunk):
            raise ValueError(
                f"{path}: only keypoint:* trunks load keypoint checkpoints, this is {self.backbone_name}"
            )
        from homeloc.models.keypoints import KeypointNet

        src = KeypointNet.from_checkpoint(path)
        if src.preset != self.trunk.net.preset or src.descriptor_dim != self.trunk.out_channels:
            raise ValueError(
                f"{path}: keypoint model {src.preset!r}/{src.descriptor_dim}-d does not fit the "
                f"trunk {self.trunk.net.preset!r}/{self.trunk.out_channels}-d"
            )
        own = self.trunk.net.state_dict()
        self.trunk.net.load_state_dict({k: v for k, v in src.state_dict().items() if k in own}, strict=True)

    @torch.no_grad()
    def init_clusters(self, images: Tensor, max_features: int = 20000, seed: int = 0) -> None:
        """NetVLAD centres from faiss k-means over local features of `images` (B×C×H×W)."""
        if not isinstance(self.pool, NetVLAD):
            return
        feats = F.normalize(self.local_features(images), dim=1)
        x = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1]).cpu().numpy().astype(np.float32)
        rng = np.random.default_rng(seed)
        if len(x) > max_features:
            x = x[rng.choice(len(x), max_features, replace=False)]
        self.pool.init_from_centroids(torch.from_numpy(kmeans_centroids(x, self.clusters, seed)))

    @torch.no_grad()
    def fit_pca(self, descriptors: Tensor, whiten: bool = True) -> None:
        """Set the projection to PCA(-whitening) of pooled descriptors (N×pool_dim), N >= out_dim."""
        if self.proj is None:
            return
        w, b = pca_projection(descriptors, self.proj.out_features, whiten)
        self.proj.weight.copy_(w)
        self.proj.bias.copy_(b)

    # ------------------------------------------------------------------ checkpoints
    @property
    def hparams(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone_name,
            "head": self.head_name,
            "clusters": self.clusters,
            "reduce_dim": self.reduce_dim,
            "out_dim": self.out_dim_arg,
            "input_size": list(self.input_size),
        }

    def save(self, path: str | os.PathLike) -> None:
        from homeloc.runtime.io import atomic_open

        with atomic_open(path, "wb") as f:
            torch.save(
                {
                    "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
                    "hparams": self.hparams,
                },
                f,
            )

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, map_location: str = "cpu") -> PlaceNet:
        """Load `save` output or a Lightning checkpoint (`model.` prefix, hparams in hyper_parameters)."""
        from homeloc.models.checkpoint_io import load_checkpoint

        ckpt = load_checkpoint(path, map_location)
        if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
            raise ValueError(f"{path}: not a PlaceNet checkpoint (no state_dict)")
        hp = ckpt.get("hparams") or ckpt.get("hyper_parameters") or {}
        keys = ("backbone", "head", "clusters", "reduce_dim", "out_dim", "input_size")
        missing = [k for k in ("backbone", "head") if k not in hp]
        if missing:
            raise ValueError(f"{path}: hyper-parameters lack {missing}")
        net = cls(**{k: hp[k] for k in keys if k in hp})
        state = ckpt["state_dict"]
        if any(k.startswith("model.") for k in state):
            state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"{path}: weights do not fit {hp}: {e}") from None
        return net.eval()


@torch.no_grad()
def pca_projection(x: Tensor, k: int, whiten: bool = True) -> tuple[Tensor, Tensor]:
    """Linear map (k x D weight, k bias) projecting N x D rows onto their top-k principal
    components (whitened: unit variance each); N >= k. Computed in float64 (SVD of centred rows)."""
    x = x.double()
    mu = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mu, full_matrices=False)
    if vt.shape[0] < k:
        raise ValueError(f"PCA to {k} dims needs at least {k} descriptors, got {vt.shape[0]}")
    w = vt[:k]
    if whiten:
        w = w / (s[:k, None] / np.sqrt(max(len(x) - 1, 1)) + 1e-6)
    return w.float(), -(w @ mu).float()


def kmeans_centroids(x: np.ndarray, k: int, seed: int = 0, niter: int = 25) -> np.ndarray:
    """faiss k-means on N×D float32 rows -> k×D centres."""
    import faiss

    if len(x) < k:
        raise ValueError(f"k-means with {k} clusters needs at least {k} features, got {len(x)}")
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, verbose=False)
    km.train(np.ascontiguousarray(x, dtype=np.float32))
    return km.centroids.copy()
