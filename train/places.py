"""LightningModule training the global place descriptor (metric learning, faiss hard negatives)."""

from __future__ import annotations

import logging
import math

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from homeloc.models.places import PlaceNet
from homeloc.train.place_losses import LOSSES, pair_masks

log = logging.getLogger(__name__)


class PlaceSystem(L.LightningModule):
    """Owns loss, optimiser and recall validation of a `models.places.PlaceNet`.

    loss: triplet (measured best, docs/training.md) | multi_similarity | contrastive. tolerance: neighbouring route positions of
    the same domain that are neither positives nor negatives (Nordland frames are 10 apart).
    trunk_checkpoint: a trained keypoint model (`keypoint:*` trunks) the trunk starts from;
    trunk_lr_scale: the trunk's learning rate relative to `lr` (0 freezes it). pca_init: "pca" or
    "whiten" starts the projection as PCA(-whitening) of the training places' pooled descriptors
    (None: random). augment: per-image random small affine + brightness/contrast/gamma on the
    fly, so fixed training views are not memorised."""

    def __init__(
        self,
        backbone: str = "mobilenetv3_small",
        head: str = "netvlad",
        clusters: int = 32,
        reduce_dim: int | None = 64,
        out_dim: int | None = 256,
        loss: str = "triplet",
        tolerance: int = 2,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_steps: int = 100,
        init_checkpoint: str | None = None,
        init_cluster_images: int = 256,
        eval_batch: int = 128,
        input_size: tuple[int, int] = (128, 160),
        trunk_checkpoint: str | None = None,
        trunk_lr_scale: float = 1.0,
        pca_init: str | None = None,
        augment: bool = False,
    ):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose {sorted(LOSSES)}")
        if pca_init not in (None, "pca", "whiten"):
            raise ValueError(f"pca_init must be None, 'pca' or 'whiten', got {pca_init!r}")
        self.save_hyperparameters()
        self.model = PlaceNet(backbone, head, clusters, reduce_dim, out_dim, input_size)
        self.augmentation = _augmentation() if augment else None
        self._initialised = False
        if trunk_checkpoint:
            self.model.load_trunk(trunk_checkpoint)
        if init_checkpoint:
            self.model.load_state_dict(PlaceNet.from_checkpoint(init_checkpoint).state_dict())
            self._initialised = True

    def forward(self, images):
        return self.model(images)

    @torch.no_grad()
    def describe(self, images: torch.Tensor) -> torch.Tensor:
        was = self.model.training
        self.model.eval()
        out = torch.cat(
            [
                self.model(images[i : i + self.hparams.eval_batch].to(self.device))
                for i in range(0, len(images), self.hparams.eval_batch)
            ]
        )
        self.model.train(was)
        return out.cpu()

    def on_fit_start(self):
        if self._initialised or self.trainer.ckpt_path:
            return
        self.init_from_data(*self.trainer.datamodule.mining_views()[:2])

    def init_from_data(self, refs: torch.Tensor, others: torch.Tensor) -> None:
        """NetVLAD centres from k-means over local features of `init_cluster_images` reference
        views, and (pca_init) the projection from PCA of all views' NetVLAD vectors."""
        idx = torch.randperm(len(refs), generator=torch.Generator().manual_seed(0))[
            : self.hparams.init_cluster_images
        ]
        was = self.model.training
        self.model.eval()
        self.model.init_clusters(refs[idx].to(self.device))
        if self.hparams.pca_init and self.model.proj is not None:
            self.model.fit_pca(
                self.pooled(torch.cat([refs, others])), whiten=self.hparams.pca_init == "whiten"
            )
        self.model.train(was)
        self._initialised = True

    @torch.no_grad()
    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        b = self.hparams.eval_batch
        return torch.cat(
            [self.model.pooled(images[i : i + b].to(self.device)) for i in range(0, len(images), b)]
        ).cpu()

    def training_step(self, batch, batch_idx):
        if self.hparams.trunk_lr_scale == 0:
            self.model.trunk.eval()  # frozen: its BatchNorm statistics stay those it was trained with
        images = batch["images"]
        if self.augmentation is not None:
            images = self.augmentation(images)
        emb = self.model(images)
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        overlap = dm.overlap_mask(batch["labels"]) if hasattr(dm, "overlap_mask") else None
        pos, neg = pair_masks(batch["labels"], batch["domains"], self.hparams.tolerance, overlap)
        loss = LOSSES[self.hparams.loss](emb, pos, neg)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(emb))
        return loss

    def validation_step(self, batch, batch_idx):
        log_recall_sets(self)

    test_step = validation_step

    def configure_optimizers(self):
        trunk = list(self.model.trunk.parameters())
        ids = {id(p) for p in trunk}
        groups = [{"params": [p for p in self.model.parameters() if id(p) not in ids]}]
        if self.hparams.trunk_lr_scale > 0:
            groups.append({"params": trunk, "lr": self.hparams.lr * self.hparams.trunk_lr_scale})
        else:
            for p in trunk:
                p.requires_grad_(False)
        opt = torch.optim.AdamW(groups, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        return warmup_cosine(opt, int(self.trainer.estimated_stepping_batches), self.hparams.warmup_steps)


def warmup_cosine(opt: torch.optim.Optimizer, total_steps: int, warmup_steps: int) -> dict:
    """Lightning optimiser config: linear warm-up, then cosine decay to 5% of the rate, per step."""
    total = max(total_steps, 1)
    warm = min(warmup_steps, total // 10 + 1)

    def schedule(step):
        if step < warm:
            return (step + 1) / warm
        t = min((step - warm) / max(total - warm, 1), 1.0)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    return {
        "optimizer": opt,
        "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule), "interval": "step"},
    }


def _augmentation():
    """Mild on-the-fly jitter of each view (the views already carry the large lighting changes)."""
    import kornia.augmentation as K

    return torch.nn.Sequential(
        K.RandomAffine(
            degrees=5.0, translate=(0.05, 0.05), scale=(0.9, 1.1), padding_mode="reflection", p=0.8
        ),
        K.ColorJitter(brightness=0.2, contrast=0.3, p=0.8),
        K.RandomGamma(gamma=(0.7, 1.4), p=0.5),
    )


class HardNegativeMiner(Callback):
    """Every `every_n_epochs`, describe all training places and give the batch sampler, for each
    place, the `k` nearest other places (faiss, other-condition view vs reference view) that are
    true negatives: the confusions the model currently makes (perceptual aliasing)."""

    def __init__(self, every_n_epochs: int = 1, k: int = 10):
        self.every, self.k = every_n_epochs, k

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch % self.every:
            return
        import faiss

        dm = trainer.datamodule
        refs, others, labels = dm.mining_views()
        db = pl_module.describe(refs).numpy().astype(np.float32)
        q = pl_module.describe(others).numpy().astype(np.float32)
        index = faiss.IndexFlatIP(db.shape[1])
        index.add(db)
        _, nn = index.search(q, self.k + 2 * pl_module.hparams.tolerance + 1)
        hard = {}
        tol = pl_module.hparams.tolerance
        overlaps = getattr(dm, "overlaps", {})
        for i, row in enumerate(nn):
            same = overlaps.get(int(labels[i]), ())
            cands = [
                int(j)
                for j in row
                if abs(int(labels[j]) - int(labels[i])) > tol and int(labels[j]) not in same
            ][: self.k]
            if cands:
                hard[i] = cands
        dm.sampler.hard = hard
        pl_module.log("train/mined_places", float(len(hard)))


def log_recall_sets(module: L.LightningModule) -> None:
    """Log R@1/R@5 of every datamodule validation set (whole sets: database vs queries, cosine),
    with `module.describe(images_or_maps) -> N x D` L2-normalised embeddings."""
    from homeloc.train.metrics import recall_at_k

    for rs in module.trainer.datamodule.val_sets:
        db, q = module.describe(rs.database), module.describe(rs.queries)
        ranked = np.argsort(-(q @ db.t()).numpy(), axis=1)[:, :10]
        r = recall_at_k(ranked, rs.positives, (1, 5))
        module.log(f"val_{rs.name}/R@1", float(r[1]), prog_bar=True, batch_size=1)
        module.log(f"val_{rs.name}/R@5", float(r[5]), batch_size=1)
