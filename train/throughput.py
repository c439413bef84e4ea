"""Training throughput as a real run sees it (data loading included, validation excluded), next to
the model-only rate that `python -m homeloc.train.bench` measures."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import lightning as L

from homeloc.runtime.io import atomic_write

log = logging.getLogger(__name__)


class ImagesPerSecond(L.Callback):
    """Logs `train/images_per_s` (images of the steps since the last log / their wall time, the
    wait for the DataLoader included) and, at the end of fit, writes `throughput.json` (steps,
    images, training seconds without validation, wall seconds) into the logger's folder.
    `data_wait_s` / `data_wait_share`: the time between one step's end and the next one's start
    (the trainer waiting for the next batch), of the training time: near 0 when the network is
    kept busy, near 1 when the DataLoader workers cannot keep up.

    images_per_item: images per batch item (2 for pairs)."""

    def __init__(self, images_per_item: int = 2):
        self.images_per_item = images_per_item
        self._t_last: float | None = None
        self._window = [0, 0.0]  # images, seconds since the last log
        self.total = {"steps": 0, "images": 0, "train_s": 0.0, "data_wait_s": 0.0}
        self._t_start = 0.0
        self._t_end: float | None = None  # end of the last step, None after a validation

    def on_train_start(self, trainer, pl_module):
        self._t_start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        if self._t_last is None:  # first step, or first after a validation: time from here
            self._t_last = now
        elif self._t_end is not None:
            self.total["data_wait_s"] += now - self._t_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        self._t_end = now
        images = self.images_per_item * len(batch["image0"])
        dt = now - self._t_last
        self._t_last = now
        self._window[0] += images
        self._window[1] += dt
        self.total["steps"] += 1
        self.total["images"] += images
        self.total["train_s"] += dt
        if trainer.global_step % max(trainer.log_every_n_steps, 1) == 0 and self._window[1] > 0:
            pl_module.log("train/images_per_s", self._window[0] / self._window[1])
            self._window = [0, 0.0]

    def on_validation_start(self, trainer, pl_module):
        self._t_last = self._t_end = None  # validation time is not training time

    def on_train_end(self, trainer, pl_module):
        wall = time.perf_counter() - self._t_start
        out = {**self.total, "wall_s": wall, "global_step": trainer.global_step,
               "train_images_per_s": self.total["images"] / max(self.total["train_s"], 1e-9),
               "wall_images_per_s": self.total["images"] / max(wall, 1e-9),
               "data_wait_share": self.total["data_wait_s"] / max(self.total["train_s"], 1e-9)}  # fmt: skip
        atomic_write(
            Path(trainer.log_dir or trainer.default_root_dir) / "throughput.json", json.dumps(out, indent=1)
        )
        log.info("throughput (this process): %s", out)
