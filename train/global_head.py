"""LightningModule training the global head over a frozen keypoint network (one forward pass).

Only ``models.global_head.GlobalHead`` trains; the keypoint network is loaded from a checkpoint
(default: the shipped ``runtime/assets/keypoints.pt``), kept in eval mode and never updated, so
matching is unchanged by construction and its descriptor maps are computed once
(``train.global_data``). The head starts at the untrained floor: NetVLAD centres from k-means over
the training descriptors (what ``vlad_ours`` does with its codebook) and the projection from PCA of
the NetVLAD vectors; training then moves it by the triplet loss with mined hard negatives.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch

from homeloc.models.global_head import GlobalHead
from homeloc.models.keypoints import KeypointNet
from homeloc.models.places import kmeans_centroids
from homeloc.runtime.hashing import file_sha256
from homeloc.train.place_losses import LOSSES, pair_masks
from homeloc.train.places import log_recall_sets, warmup_cosine

log = logging.getLogger(__name__)


class GlobalHeadSystem(L.LightningModule):
    """Owns the head's loss, optimiser, initialisation and recall validation.

    Args:
        keypoints: keypoint checkpoint (``KeypointNet.from_checkpoint``), frozen.
        clusters, out_dim, attention: the head (``GlobalHead``).
        loss: a key of ``train.place_losses.LOSSES``; tolerance: neighbouring route positions that
            are neither positives nor negatives (Nordland).
        pca_init: "pca", "whiten" or None (random projection).
        init_features: descriptor cells sampled for the k-means centres.
        crop: augmentation on the cached maps (images cannot be jittered any more): each training
            view is a random crop keeping 1 - crop .. 1 of each side (a viewpoint shift); 0: none.
    """

    def __init__(self, keypoints: str = "runtime/assets/keypoints.pt", clusters: int = 64, out_dim: int | None = 256,
                 loss: str = "triplet", tolerance: int = 2, lr: float = 1e-3, weight_decay: float = 1e-4,
                 warmup_steps: int = 50, pca_init: str | None = "whiten", init_features: int = 100_000,
                 eval_batch: int = 128, attention: bool = False, crop: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose {sorted(LOSSES)}")
        if not 0.0 <= crop < 1.0:
            raise ValueError(f"crop must be in [0, 1), got {crop}")
        if pca_init not in (None, "pca", "whiten"):
            raise ValueError(f"pca_init must be None, 'pca' or 'whiten', got {pca_init!r}")
        self.save_hyperparameters()
        net = KeypointNet.from_checkpoint(keypoints)
        for p in net.parameters():
            p.requires_grad_(False)
        self.keypoints = net.eval()
        self.keypoint_weights = file_sha256(keypoints)
        self.head = GlobalHead(net.descriptor_dim, clusters, out_dim, attention)
        self.register_buffer("views_seen", torch.zeros((), dtype=torch.long))  # saved: survives a resume
        self._initialised = False

    def train(self, mode: bool = True):
        super().train(mode)
        self.keypoints.eval()  # frozen: BatchNorm keeps the statistics it was trained with
        return self

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.head(maps)

    @torch.no_grad()
    def describe(self, maps: list[torch.Tensor] | torch.Tensor, pooled: bool = False) -> torch.Tensor:
        """N x G head outputs (``pooled``: the NetVLAD vectors) of N maps (D x h x w each; sizes may differ)."""
        was = self.head.training
        self.head.eval()
        fn = self.head.pooled if pooled else self.head
        out: list[torch.Tensor | None] = [None] * len(maps)
        by_shape: dict[tuple, list[int]] = {}
        for i, m in enumerate(maps):
            by_shape.setdefault(tuple(m.shape), []).append(i)
        b = self.hparams.eval_batch
        for idx in by_shape.values():
            for s in range(0, len(idx), b):
                chunk = idx[s : s + b]
                res = fn(torch.stack([maps[i] for i in chunk]).float().to(self.device)).cpu()
                for i, r in zip(chunk, res, strict=True):
                    out[i] = r
        self.head.train(was)
        return torch.stack(out)

    def on_fit_start(self) -> None:
        if self._initialised or self.trainer.ckpt_path:
            return
        dm = self.trainer.datamodule
        refs, others, _ = dm.mining_views()
        self.init_from_maps(refs, others)
        # the untrained floor, kept beside the run (export it to compare with the trained head)
        self.head.save(Path(self.trainer.default_root_dir) / "head_init.pt")
        for name, r1 in self.recall_at_1(dm.val_sets).items():
            log.info("initialised head: %s R@1 %.3f", name, r1)

    def recall_at_1(self, sets) -> dict[str, float]:
        from homeloc.train.metrics import recall_at_k

        out = {}
        for rs in sets:
            db, q = self.describe(rs.database), self.describe(rs.queries)
            ranked = np.argsort(-(q @ db.t()).numpy(), axis=1)[:, :10]
            out[rs.name] = float(recall_at_k(ranked, rs.positives, (1,))[1])
        return out

    @torch.no_grad()
    def init_from_maps(self, refs: list[torch.Tensor], others: list[torch.Tensor]) -> None:
        """k-means centres over cells of the reference views, PCA of all views' NetVLAD vectors."""
        cells = torch.cat([m.flatten(1).t() for m in refs]).float().numpy()
        rng = np.random.default_rng(0)
        if len(cells) > self.hparams.init_features:
            cells = cells[rng.choice(len(cells), self.hparams.init_features, replace=False)]
        self.head.init_centroids(torch.from_numpy(kmeans_centroids(cells, self.head.clusters)))
        if self.hparams.pca_init and self.head.proj is not None:
            self.head.fit_pca(self.describe(list(refs) + list(others), pooled=True),
                              whiten=self.hparams.pca_init == "whiten")  # fmt: skip
        self._initialised = True
        log.info("head initialised: k-means over %d cells, %s projection", len(cells), self.hparams.pca_init)

    def random_crop(self, maps: torch.Tensor) -> torch.Tensor:
        """One crop size per group (they batch), a random offset per view."""
        h, w = maps.shape[-2:]
        s = 1.0 - self.hparams.crop * float(torch.rand(()))
        ch, cw = max(1, round(h * s)), max(1, round(w * s))
        ys = torch.randint(0, h - ch + 1, (len(maps),)).tolist()
        xs = torch.randint(0, w - cw + 1, (len(maps),)).tolist()
        return torch.stack([m[:, y : y + ch, x : x + cw] for m, y, x in zip(maps, ys, xs, strict=True)])

    def training_step(self, batch, batch_idx):
        groups = batch["groups"]
        if self.hparams.crop > 0:
            groups = [self.random_crop(g) for g in groups]
        emb = torch.cat([self.head(g) for g in groups])
        dm = self.trainer.datamodule
        pos, neg = pair_masks(
            batch["labels"], batch["domains"], self.hparams.tolerance, dm.overlap_mask(batch["labels"])
        )
        loss = LOSSES[self.hparams.loss](emb, pos, neg)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(emb))
        self.views_seen += len(emb)
        self.log("train/views_seen", float(self.views_seen), batch_size=len(emb))
        return loss

    def validation_step(self, batch, batch_idx):
        log_recall_sets(self)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.head.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        return warmup_cosine(opt, int(self.trainer.estimated_stepping_batches), self.hparams.warmup_steps)
