"""homeloc: lighting-invariant keypoints and place descriptors for home-robot visual SLAM.

The repository keeps its folders at the top level (train/, models/, data_synthesis/, export/,
eval/, configs/, runtime/); pyproject.toml installs them under this one name as homeloc.train,
homeloc.models, ... so no generic top-level package (``models``, ``runtime``) is ever installed.
Layers, bottom to top: runtime (torch-free) -> models -> data_synthesis -> train -> export ->
eval; a module imports only from its own layer or below (tests/test_layers.py enforces it).
"""

__version__ = "0.1.0"
