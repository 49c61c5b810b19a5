"""Frames the stand-in camera rig publishes."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from lrcfuse_ros.sample_publisher import parse_size, rgb_frame, thermal_frame


def test_parse_size() -> None:
    assert parse_size("640x512") == (640, 512)
    with pytest.raises(argparse.ArgumentTypeError, match="WIDTHxHEIGHT"):
        parse_size("640")


def test_thermal_frames_in_every_encoding() -> None:
    ir = (np.arange(20 * 30) % 256).astype(np.uint8).reshape(20, 30)
    assert thermal_frame(ir, "mono8", None).dtype == np.uint8
    wide = thermal_frame(ir, "mono16", None)
    assert wide.dtype == np.uint16 and int(wide.max()) == int(ir.max()) * 257
    assert thermal_frame(np.stack([ir] * 3, axis=2), "16UC1", (15, 10)).shape == (10, 15)
    assert thermal_frame(ir, "bgr8", None).shape == (20, 30, 3)  # a wrong encoding on purpose (fault option)


def test_rgb_frames() -> None:
    rng = np.random.default_rng(0)
    vi = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert rgb_frame(vi, "bgr8", (64, 40)).shape == (40, 64, 3)
    assert rgb_frame(vi[:, :, 0], "rgb8", None).shape == (20, 30, 3)
    assert rgb_frame(vi, "mono8", None).shape == (20, 30)
