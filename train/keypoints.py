"""LightningModule training the keypoint network: detector pretraining on synthetic shapes, then
joint detector + descriptor training on synthesized day/night pairs."""

from __future__ import annotations

import logging
import math

import lightning as L
import numpy as np
import torch

from homeloc.models import postprocess as pp
from homeloc.models.keypoints import KeypointNet
from homeloc.models.widen import widen_into
from homeloc.train import losses
from homeloc.train.teachers import build_teacher

log = logging.getLogger(__name__)


class KeypointSystem(L.LightningModule):
    """Owns the losses, optimiser and validation of a `models.keypoints.KeypointNet`.

    stage: "shapes" (detector only, exact labels from synthetic shapes) or "pairs" (detector
    distilled from `teacher` on both views + dual-softmax descriptor loss on GT correspondences,
    ignoring invalid, occluded and scene-changed pixels). Correspondences are dense warps: a 3-D
    pair's `warp_0to1`/`warp_1to0` (depth + pose), or H_0to1 written as a warp for homography pairs.
    teacher: "xfeat" | "aliked-n16" (in the loop: slow) | "cached" (heatmaps and descriptors from
    PairsData(teacher_cache=...), see train.teacher_cache) | "checkpoint:PATH[#N]" | "none".
    distill_weight: weight of the teacher descriptor-similarity KL (needs cached teacher descriptors).
    init_checkpoint: start from these weights (e.g. the shapes stage); a narrower network of the
    same layout (e.g. an `edge` run for `edge_wide`) is widened into this one (models.widen).
    target_power: each teacher target cell's keypoint mass m becomes m**target_power
    (losses.lift_cell_mass; < 1 lifts the weak cells of a sparse teacher such as ALIKED).
    anchor_weight: weight of losses.descriptor_anchor_loss between the student's dense descriptors
    and those of a frozen copy of init_checkpoint (keeps what reads the map, e.g. the one-pass
    frontend's global head, valid); 0 = off, no copy made.
    anchor_checkpoint: the frozen reference of anchor_weight and detector_mix when it is not
    init_checkpoint (a run continued from another keeps the shipped model as its reference).
    target_sharpen: each teacher target cell's in-cell distribution raised to this power and
    renormalised (losses.sharpen_cells; > 1 sharpens where in the cell the point is, 1 = off).
    detector_mix: share of that frozen copy's own detector distribution (softmax of its logits) in
    the detector targets, the teacher's fused targets taking the rest: a sparse teacher's (ALIKED's)
    choice of points with the starting model's calibration (points above the runtime's threshold
    in dark, low-contrast rooms). 0 = off.
    near_negative_px: extra descriptor negatives around each correspondence's true position, up to
    this many pixels away (losses.descriptor_loss near_px); 0 = off.
    """

    def __init__(
        self,
        preset: str = "edge",
        descriptor_dim: int | None = None,
        stage: str = "pairs",
        teacher: str = "xfeat",
        init_checkpoint: str | None = None,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        warmup_steps: int = 200,
        detector_weight: float = 1.0,
        descriptor_weight: float = 1.0,
        distill_weight: float = 0.0,
        temperature: float = 0.05,
        max_points: int = 512,
        val_max_keypoints: int = 512,
        nms_radius: int = 4,
        target_power: float = 1.0,
        anchor_weight: float = 0.0,
        detector_mix: float = 0.0,
        target_sharpen: float = 1.0,
        near_negative_px: float = 0.0,
        anchor_checkpoint: str | None = None,
    ):
        super().__init__()
        if stage not in ("shapes", "pairs"):
            raise ValueError(f"stage must be 'shapes' or 'pairs', got {stage!r}")
        if not 0 < target_power <= 1:
            raise ValueError(f"target_power must be in (0, 1], got {target_power}")
        if not 1 <= target_sharpen <= 20:
            raise ValueError(f"target_sharpen must be in [1, 20], got {target_sharpen}")
        if not 0 <= near_negative_px <= 64:
            raise ValueError(f"near_negative_px must be in [0, 64], got {near_negative_px}")
        if not 0 <= detector_mix <= 1:
            raise ValueError(f"detector_mix must be in [0, 1], got {detector_mix}")
        if (anchor_weight > 0 or detector_mix > 0) and not (anchor_checkpoint or init_checkpoint):
            raise ValueError("anchor_weight or detector_mix > 0 needs init_checkpoint (the frozen reference)")
        self.save_hyperparameters()
        self.model = KeypointNet(preset, descriptor_dim)
        if init_checkpoint:
            start = KeypointNet.from_checkpoint(init_checkpoint)
            if start.config == self.model.config:
                self.model.load_state_dict(start.state_dict())
            else:  # a wider preset starts from a narrower run, computing its function (models.widen)
                widen_into(start, self.model)
        # The teacher is not a submodule: it never trains and never lands in our checkpoints.
        self._teacher = [build_teacher(teacher)] if stage == "pairs" else [None]
        # Like the teacher, the anchor is frozen and kept out of the checkpoints (a list hides it).
        frozen = anchor_weight > 0 or detector_mix > 0
        reference = anchor_checkpoint or init_checkpoint
        self._anchor = [KeypointNet.from_checkpoint(reference).eval()] if frozen else []
        for q in self._anchor[0].parameters() if self._anchor else ():
            q.requires_grad_(False)
        if stage == "pairs" and self._teacher[0] is None and teacher != "cached":
            log.warning("no detector teacher: training descriptors only (detector loss off)")
        self._val: dict[str, list] = {}

    @property
    def teacher(self):
        return self._teacher[0]

    def forward(self, image):
        return self.model(image)

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx):
        if self.hparams.stage == "shapes":
            logits, _ = self.model(batch["image"])
            labels = losses.cells_from_keypoint_map(batch["keypoint_map"])
            loss = losses.detector_loss_hard(logits, labels)
            self.log("train/detector", loss, prog_bar=True)
            self.log("train/loss", loss)
            return loss
        i0, i1 = batch["image0"], batch["image1"]
        B = i0.shape[0]
        warp01, warp10 = self._warps(batch)
        logits, desc = self.model(torch.cat([i0, i1]))
        teacher_desc, heats = None, None
        if self.hparams.distill_weight > 0:
            if "teacher_desc0" in batch:
                teacher_desc = (batch["teacher_desc0"], batch["teacher_desc1"])
            elif hasattr(self.teacher, "dense"):  # a teacher network in the loop (e.g. on a GPU)
                heats, teacher_desc = self._teacher_dense(batch)
            else:  # else the KL would silently be off for the whole run
                raise ValueError(
                    "--model.distill_weight > 0 needs the teacher's descriptors in the data "
                    "(homeloc-train pack-pairs --descriptors, or PairsData teacher_descriptors: true) "
                    "or a dense teacher in the loop (--model.teacher aliked-n16 / xfeat)"
                )
        d_loss, acc, distill = losses.descriptor_loss(
            desc[:B],
            desc[B:],
            warp01,
            batch["valid1"],
            batch["change1"],
            self.hparams.temperature,
            self.hparams.max_points,
            teacher_desc,
            self.hparams.near_negative_px,
        )
        loss = self.hparams.descriptor_weight * d_loss + self.hparams.distill_weight * distill
        self.log("train/descriptor", d_loss, prog_bar=True)
        self.log("train/desc_acc", acc, prog_bar=True)
        if teacher_desc is not None:
            self.log("train/distill", distill)
        ref_logits = None
        if self._anchor:
            with torch.no_grad():
                ref_logits, ref = self._anchor[0].to(i0.device)(torch.cat([i0, i1]))
            anchor = losses.descriptor_anchor_loss(desc, ref)
            loss = loss + self.hparams.anchor_weight * anchor
            self.log("train/anchor", anchor)
        det = self._detector_loss(batch, logits, warp01, warp10, ref_logits, heats)
        if det is not None:
            loss = loss + self.hparams.detector_weight * det
            self.log("train/detector", det, prog_bar=True)
        self.log("train/loss", loss)
        return loss

    def _detector_loss(self, batch, logits, warp01, warp10, ref_logits=None, heats=None):
        """Soft cross-entropy of both views' logits against the teacher's fused targets, mixed
        with the frozen reference's softmax (`detector_mix`; ref_logits 2B×65×h×w); None without
        a teacher. heats: the teacher's (heat0, heat1) when this step computed them already."""
        heats = heats if heats is not None else self._teacher_heatmaps(batch)
        if heats is None:
            return None
        B = len(batch["image0"])
        targets = losses.fused_targets(
            *heats, warp01, warp10, batch["valid0"], batch["valid1"], batch["change1"]
        )
        t0, t1 = (
            losses.sharpen_cells(
                losses.lift_cell_mass(t, self.hparams.target_power), self.hparams.target_sharpen
            )
            for t in targets
        )
        mix = self.hparams.detector_mix
        if mix > 0 and ref_logits is not None:
            ref = torch.softmax(ref_logits, 1)
            t0, t1 = (1 - mix) * t0 + mix * ref[:B], (1 - mix) * t1 + mix * ref[B:]
        return 0.5 * (losses.detector_loss_soft(logits[:B], t0) + losses.detector_loss_soft(logits[B:], t1))

    @staticmethod
    def _warps(batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense correspondences both ways: the batch's (3-D pairs, precomputed shards), else from
        H_0to1 (pairs made on the fly)."""
        if "warp_0to1" in batch:
            return batch["warp_0to1"], batch["warp_1to0"]
        H = batch["H_0to1"]
        return (
            losses.warp_from_homography(H, batch["valid0"]),
            losses.warp_from_homography(torch.linalg.inv(H), batch["valid1"]),
        )

    @torch.no_grad()
    def _teacher_heatmaps(self, batch):
        """(heat0, heat1) B×1×H×W from the cache in the batch (teacher 'cached') or the teacher network."""
        if self.hparams.teacher == "cached":
            if "teacher_heat0" not in batch:
                raise ValueError(
                    "teacher 'cached' needs PairsData(teacher_cache=...): the batch has no teacher_heat0"
                )
            return batch["teacher_heat0"], batch["teacher_heat1"]
        if self.teacher is None:
            return None
        i0 = batch["image0"]
        heat = self.teacher.to(i0.device)(torch.cat([i0, batch["image1"]]))
        return heat[: len(i0)], heat[len(i0) :]

    @torch.no_grad()
    def _teacher_dense(self, batch):
        """((heat0, heat1), (desc0, desc1)) from the teacher network, in float32 whatever the
        trainer's precision (a bf16 teacher would give the student coarser targets)."""
        i0 = batch["image0"]
        teacher = self.teacher.to(i0.device)
        with torch.autocast(i0.device.type, enabled=False):
            heat, desc = teacher.dense(torch.cat([i0, batch["image1"]]).float())
        B = len(i0)
        return (heat[:B], heat[B:]), (desc[:B], desc[B:])

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.model.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warm = min(self.hparams.warmup_steps, total // 10 + 1)

        def schedule(step):  # linear warm-up, then cosine to 5% of the peak
            if step < warm:
                return (step + 1) / warm
            t = min((step - warm) / max(total - warm, 1), 1.0)
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self):
        self._val = {}

    def validation_step(self, batch, batch_idx):
        from homeloc.runtime.geometry import find_homography
        from homeloc.runtime.matching import mutual_nearest_neighbours
        from homeloc.train.metrics import corner_error, matching_accuracy, reprojection_errors

        H = batch["H_0to1"][0].double().cpu().numpy()
        feats = []
        for key in ("image0", "image1"):
            logits, desc = self.model(batch[key])
            f = pp.postprocess(
                logits, desc, max_keypoints=self.hparams.val_max_keypoints, nms_radius=self.hparams.nms_radius
            )
            feats.append((f.keypoints.cpu().numpy().astype(np.float64), f.descriptors.float().cpu().numpy()))
        (k0, d0), (k1, d1) = feats
        kept = 0.5 * (len(k0) + len(k1))
        m = mutual_nearest_neighbours(d0, d1, "l2") if len(k0) and len(k1) else np.zeros((0, 2), int)
        p0, p1 = k0[m[:, 0]], k1[m[:, 1]]
        mma3 = float(matching_accuracy(reprojection_errors(p0, p1, H), [3.0])[0]) if len(m) else 0.0
        h, w = batch["image0"].shape[-2:]
        err = corner_error(find_homography(p0, p1)[0], H, w, h)
        for bucket in ("all", batch["bucket"][0]):
            v = self._val.setdefault(bucket, [])
            v.append((mma3, float(err <= 3.0), len(m), kept))

    def on_validation_epoch_end(self):
        for bucket, vals in sorted(self._val.items()):
            a = np.asarray(vals, np.float64)
            prefix = "val" if bucket == "all" else f"val_{bucket}"
            self.log(f"{prefix}/MMA@3", float(a[:, 0].mean()), prog_bar=bucket == "all", sync_dist=True)
            self.log(f"{prefix}/HA@3", float(a[:, 1].mean()), prog_bar=bucket == "all", sync_dist=True)
            if bucket == "all":
                self.log("val/matches", float(a[:, 2].mean()), sync_dist=True)
                self.log("val/keypoints", float(a[:, 3].mean()), sync_dist=True)

    test_step = validation_step
    on_test_epoch_start = on_validation_epoch_start
    on_test_epoch_end = on_validation_epoch_end

    def on_save_checkpoint(self, checkpoint):
        # Plain network hyper-parameters next to Lightning's, for KeypointNet.from_checkpoint.
        checkpoint["network_hparams"] = self.model.hparams
