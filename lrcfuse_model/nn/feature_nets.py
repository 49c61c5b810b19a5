"""Pretrained feature networks behind the perceptual terms of the fusion loss.

The loss needs four feature levels Phi^1..Phi^4 of a frozen, pretrained network. One small
interface (:class:`FeatureNetwork`: grayscale N x 1 x H x W in [0, 1] in, four maps out) and two
implementations:

* ``vgg16``: the paper's loss network, VGG-16 trained on ImageNet, cut after relu1_2, relu2_2,
  relu3_3 and relu4_3. Weights are torchvision's standard checkpoint (``vgg16-397923af.pth``)
  looked up in the torch hub cache (``torch.hub.get_dir()/checkpoints``) and downloaded there
  when missing and online, or any local file with torchvision's ``features.N.weight`` keys.
* ``yolov5n``: the backbone of the COCO-pretrained YOLOv5n (the same
  :class:`~lrcfuse_model.nn.yolov5.YOLOv5` code as the detector). Levels are the outputs of layers
  0, 2, 4 and 6 (strides 2, 4, 8, 16: a Conv and three C3 stages), chosen to sit at the same
  depths of the pyramid as VGG's four blocks.

A missing or mismatched weight file is an error naming the file and the keys expected; there is
no fallback to random weights (a random loss network silently trains a different method).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .yolov5 import load_yolov5

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
VGG16_FILE = "vgg16-397923af.pth"
YOLOV5N_FILE = "yolov5n_coco_state_dict.pt"
YOLOV5N_ENV = "LRCFUSE_YOLOV5N_WEIGHTS"

# torchvision's vgg16 `features` indices of the 10 convolutions up to conv4_3, and the ReLU
# after which each level is taken (relu1_2, relu2_2, relu3_3, relu4_3).
_VGG_CONVS = [
    (0, 3, 64),
    (2, 64, 64),
    (5, 64, 128),
    (7, 128, 128),
    (10, 128, 256),
    (12, 256, 256),
    (14, 256, 256),
    (17, 256, 512),
    (19, 512, 512),
    (21, 512, 512),
]
_VGG_LEVEL_AFTER = {3: 0, 8: 1, 15: 2, 22: 3}  # index of the ReLU module -> level
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureNetwork(nn.Module):
    """A frozen network mapping N x 1 x H x W images in [0, 1] to four feature maps."""

    name: str = ""

    def freeze(self) -> FeatureNetwork:
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> FeatureNetwork:
        # Frozen BatchNorm statistics whatever the caller does with .train().
        return super().train(False)


def vgg16_expected_keys() -> list[str]:
    return [f"features.{i}.{p}" for i, _, _ in _VGG_CONVS for p in ("weight", "bias")]


def default_vgg16_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


class VGG16Features(FeatureNetwork):
    """VGG-16 conv blocks 1-4 with torchvision's layer numbering."""

    name = "vgg16"

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        convs = {i: (cin, cout) for i, cin, cout in _VGG_CONVS}
        for i in range(23):
            if i in convs:
                layers.append(nn.Conv2d(*convs[i], kernel_size=3, padding=1))
            elif i in (4, 9, 16):
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.ReLU(inplace=False))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x.expand(-1, 3, -1, -1) - self.mean) / self.std
        out: list[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _VGG_LEVEL_AFTER:
                out.append(h)
        return out


def load_vgg16(path: str | Path | None = None) -> VGG16Features:
    """VGG-16 features with ImageNet weights from ``path`` or the torch hub cache."""
    if path:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG-16 weight file {path} does not exist. Expected torchvision's ImageNet checkpoint "
                f"({VGG16_FILE}) or any state dict with keys {vgg16_expected_keys()[:2]}..."
            )
    else:
        path = default_vgg16_path()
        if not path.is_file():
            try:  # what torchvision users expect: fetch once into the hub cache
                torch.hub.load_state_dict_from_url(VGG16_URL, progress=True, map_location="cpu")
            except Exception as exc:
                raise FileNotFoundError(
                    f"VGG-16 ImageNet weights not found at {path} and could not be downloaded from "
                    f"{VGG16_URL} ({exc.__class__.__name__}). Copy {VGG16_FILE} there or pass "
                    "--feature-weights PATH (loss.feature_weights)."
                ) from exc
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    net = VGG16Features()
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or wrong:
        raise ValueError(
            f"{path} is not a VGG-16 state dict: missing keys {missing[:6]}{'...' if len(missing) > 6 else ''}, "
            f"wrong shapes {wrong[:6]}. Expected torchvision's keys: {vgg16_expected_keys()}"
        )
    net.load_state_dict({k: state[k].float() for k in expected}, strict=True)
    return net.freeze()


class YOLOv5Features(FeatureNetwork):
    """The first stages of a pretrained YOLOv5 as a four-level feature network."""

    name = "yolov5n"
    default_layers = (0, 2, 4, 6)

    def __init__(self, weights: str | Path, layers: Sequence[int] = default_layers) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"loss.feature_layers must list 4 YOLOv5 layer indices, got {list(layers)}")
        self.layers = [int(i) for i in layers]
        self.net = load_yolov5(weights, upto=max(self.layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.forward_features(x.expand(-1, 3, -1, -1), self.layers)


def default_yolov5n_path() -> Path:
    env = os.environ.get(YOLOV5N_ENV)
    if env:
        return Path(env)
    return Path(torch.hub.get_dir()) / "checkpoints" / YOLOV5N_FILE


def build_feature_net(name: str, weights: str | Path = "", layers: Sequence[int] = ()) -> FeatureNetwork | None:
    """The loss network named by ``loss.feature_net`` (``None`` for ``'none'``)."""
    if name == "none":
        return None
    if name == "vgg16":
        return load_vgg16(weights or None)
    if name == "yolov5n":
        path = Path(weights) if weights else default_yolov5n_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"YOLOv5n weight file {path} does not exist. Pass --feature-weights PATH "
                f"(loss.feature_weights) or set {YOLOV5N_ENV}; the file holds "
                "{'state_dict': ..., 'meta': {'yaml': ...}} as plain tensors."
            )
        return YOLOv5Features(path, layers or YOLOv5Features.default_layers).freeze()
    raise ValueError(f"loss.feature_net must be one of yolov5n, vgg16, none; got {name!r}")
