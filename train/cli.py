"""`homeloc-train`: fit | validate | test (LightningCLI, YAML configs in configs/train/) and label.

    homeloc-train fit --config configs/train/keypoints_cpu.yaml [--ckpt_path last]
    homeloc-train label --checkpoint CKPT --images DIR --out DIR
"""

from __future__ import annotations

import os
import sys


def _label(argv: list[str]) -> int:
    from jsonargparse import CLI

    from homeloc.train.label import label_images

    out = CLI(label_images, args=argv, as_positional=False)
    print(f"labels written: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("WANDB_MODE", "offline")  # no network on robots or here
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "label":
        return _label(argv[1:])
    from lightning.pytorch.cli import LightningCLI

    LightningCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=argv,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "homeloc-train", "description": __doc__},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
