"""Export wrapper modules: the exact ONNX interface, around unchanged networks (no monkeypatching).

The wrapped network is the attribute ``net``, so TorchScript export names every node
``/net/<module path>/<Op>``; ``export.quantize`` uses those scopes to keep chosen modules float.
"""

from __future__ import annotations

from torch import Tensor, nn


class KeypointsExport(nn.Module):
    """``image`` N x 1 x H x W float32 in [0, 1] (H, W multiples of 8) -> (``logits``, ``descriptors``).

    logits: N x 65 x H/8 x W/8 raw detector logits (softmax and NMS are the runtime's, in numpy).
    descriptors: N x D x H/8 x W/8, L2-normalised over D (in float).
    Any dense core with that signature works (``KeypointNet``); input normalisation is in-graph.
    """

    input_names = ("image",)
    output_names = ("logits", "descriptors")

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        logits, descriptors = self.net(image)
        return logits, descriptors


class PlacesExport(nn.Module):
    """``image`` N x 3 x H x W float32 RGB in [0, 1] at the fixed size -> ``descriptor`` N x D.

    The descriptor is L2-normalised (in float). A ``PlaceNet`` normalises its input in-graph (mean/std
    for torchvision trunks; channel mean then the keypoint normalisation for ``keypoint:*`` trunks).
    """

    input_names = ("image",)
    output_names = ("descriptor",)

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)


class FrontendExport(nn.Module):
    """``image`` N x 1 x H x W float32 in [0, 1] -> (``logits``, ``descriptors``, ``global``).

    The keypoint outputs are ``KeypointsExport``'s; ``global`` is N x G, L2-normalised, aggregated
    from the same descriptor map (``models.global_head.FrontendNet``): one graph, one forward pass.
    """

    input_names = ("image",)
    output_names = ("logits", "descriptors", "global")

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, descriptors, global_ = self.net(image)
        return logits, descriptors, global_
