"""lrcfuse_model.nn.feature_nets: the frozen loss networks (VGG-16 and the YOLOv5n backbone)."""

from __future__ import annotations

import pytest
import torch

from lrcfuse_model.nn.feature_nets import (
    YOLOV5N_ENV,
    VGG16Features,
    YOLOv5Features,
    build_feature_net,
    default_yolov5n_path,
    load_vgg16,
)

# torchvision's vgg16().features: conv indices and (in, out) channels up to conv4_3, written out
# here independently of the package's own table.
TORCHVISION_VGG16_CONVS = {
    0: (3, 64),
    2: (64, 64),
    5: (64, 128),
    7: (128, 128),
    10: (128, 256),
    12: (256, 256),
    14: (256, 256),
    17: (256, 512),
    19: (512, 512),
    21: (512, 512),
}


def fake_vgg16_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with torchvision's key names and shapes, random values, plus keys VGG16Features ignores."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, (cin, cout) in TORCHVISION_VGG16_CONVS.items():
        state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
        state[f"features.{i}.bias"] = torch.randn(cout, generator=g) * 0.05
    state["classifier.6.bias"] = torch.zeros(1000)  # later layers of the real checkpoint are ignored
    return state


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16-fake.pth"
    torch.save(fake_vgg16_state(), path)
    return path


def test_vgg16_loads_torchvision_keys(vgg_file):
    net = load_vgg16(vgg_file)
    assert isinstance(net, VGG16Features)
    saved = torch.load(vgg_file, weights_only=True)
    assert torch.equal(net.features[0].weight, saved["features.0.weight"])
    assert torch.equal(net.features[21].bias, saved["features.21.bias"])
    with torch.no_grad():
        feats = net(torch.rand(2, 1, 32, 48))
    assert [tuple(f.shape) for f in feats] == [
        (2, 64, 32, 48),  # stride 1
        (2, 128, 16, 24),  # stride 2
        (2, 256, 8, 12),  # stride 4
        (2, 512, 4, 6),  # stride 8
    ]
    assert all((f >= 0).all() for f in feats)  # each level is taken after a ReLU


def test_vgg16_accepts_a_wrapped_state_dict(tmp_path, vgg_file):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": torch.load(vgg_file, weights_only=True)}, path)
    assert isinstance(load_vgg16(path), VGG16Features)
    assert isinstance(build_feature_net("vgg16", path), VGG16Features)


def test_vgg16_missing_key_is_named(tmp_path):
    state = fake_vgg16_state()
    del state["features.10.weight"]
    path = tmp_path / "missing.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing keys \['features.10.weight'\]"):
        load_vgg16(path)


def test_vgg16_wrong_shape_is_named(tmp_path):
    state = fake_vgg16_state()
    state["features.2.weight"] = torch.zeros(64, 64, 1, 1)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"wrong shapes \['features.2.weight'\]"):
        load_vgg16(path)


def test_vgg16_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does-not-exist.pth"):
        load_vgg16(tmp_path / "does-not-exist.pth")


def test_vgg16_is_frozen_and_stays_in_eval(vgg_file):
    net = load_vgg16(vgg_file)
    assert all(not p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    assert not any(m.training for m in net.modules())


def test_gradient_flows_through_frozen_net_to_the_input(vgg_file):
    net = load_vgg16(vgg_file)
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    sum(f.mean() for f in net(x)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


@pytest.fixture(scope="module")
def yolo_features(yolov5n_weights):
    return build_feature_net("yolov5n", yolov5n_weights)


def test_yolov5n_features_four_levels(yolo_features):
    assert isinstance(yolo_features, YOLOv5Features)
    assert yolo_features.layers == [0, 2, 4, 6]
    with torch.no_grad():
        feats = yolo_features(torch.rand(2, 1, 64, 64))
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128]
    assert [f.shape[2] for f in feats] == [32, 16, 8, 4]  # strides 2, 4, 8, 16
    assert [f.shape[0] for f in feats] == [2, 2, 2, 2]


def test_yolov5n_features_frozen_batchnorm(yolo_features):
    assert all(not p.requires_grad for p in yolo_features.parameters())
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        before = yolo_features(x)
        yolo_features.train()  # must not switch BatchNorm to batch statistics
        after = yolo_features(x)
    assert not any(m.training for m in yolo_features.modules())
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)


def test_yolov5n_custom_layers(yolov5n_weights):
    net = build_feature_net("yolov5n", yolov5n_weights, layers=[1, 2, 3, 4])
    assert len(net.net.model) == 5
    with torch.no_grad():
        feats = net(torch.rand(1, 1, 32, 32))
    assert [f.shape[1] for f in feats] == [32, 32, 64, 64]


def test_yolov5n_needs_four_layers(yolov5n_weights):
    with pytest.raises(ValueError, match="must list 4"):
        YOLOv5Features(yolov5n_weights, layers=[0, 2, 4])


def test_yolov5n_default_path_from_environment(monkeypatch, tmp_path):
    missing = tmp_path / "none.pt"
    monkeypatch.setenv(YOLOV5N_ENV, str(missing))
    assert default_yolov5n_path() == missing
    with pytest.raises(FileNotFoundError) as info:
        build_feature_net("yolov5n")
    assert str(missing) in str(info.value)
    assert YOLOV5N_ENV in str(info.value)


def test_yolov5n_from_environment(monkeypatch, yolov5n_weights):
    monkeypatch.setenv(YOLOV5N_ENV, str(yolov5n_weights))
    assert isinstance(build_feature_net("yolov5n"), YOLOv5Features)


def test_build_none_and_unknown():
    assert build_feature_net("none") is None
    with pytest.raises(ValueError, match="yolov5n, vgg16, none; got 'resnet'"):
        build_feature_net("resnet")
