"""Torch-free edge runtime: what a SLAM system imports on the robot.

Depends only on numpy, OpenCV, onnxruntime and faiss; importing it must never import torch
(a test checks this in a subprocess). Heavy modules are imported lazily by their users.
"""

__version__ = "0.1.0"
