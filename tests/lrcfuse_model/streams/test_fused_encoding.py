"""One encoding per stream for the fused image (issue 13 item 3)."""

from __future__ import annotations

import numpy as np

from lrcfuse_model.images.preprocess import finish, prepare_pair
from lrcfuse_model.streams.fused_encoding import fused_encoding
from lrcfuse_model.streams.image_msg import array_to_image_fields, image_msg_to_array


class _Msg:
    def __init__(self, **fields) -> None:
        self.__dict__.update(fields)


def test_the_encoding_follows_the_stream_not_the_pixels() -> None:
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    gray_in_colour = np.repeat(colour[:, :, :1], 3, axis=2)  # R = G = B in a bgr8 message
    for frame in (colour, gray_in_colour):
        visible = image_msg_to_array(_Msg(**array_to_image_fields(frame, "bgr8")))
        assert fused_encoding(visible) == "bgr8"
        assert fused_encoding(visible, colour=False) == "mono8"
    mono = image_msg_to_array(_Msg(**array_to_image_fields(colour[:, :, 0], "mono8")))
    assert fused_encoding(mono) == "mono8"


def test_a_gray_frame_of_a_colour_stream_goes_out_as_bgr8_with_its_gray_values() -> None:
    """The preprocessing fuses an R = G = B frame as gray; as bgr8 it is three copies of that gray."""
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    visible = np.repeat(gray[:, :, None], 3, axis=2)
    ir = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    pair = prepare_pair(ir, visible, {})
    fused = finish(pair.vi_y, pair)  # a stand-in network output: the visible luma itself
    assert fused.ndim == 2  # what made the old per-frame choice publish mono8
    fields = array_to_image_fields(fused, fused_encoding(visible))
    out = image_msg_to_array(_Msg(**fields))
    assert fields["encoding"] == "bgr8" and out.shape == (6, 8, 3)
    assert all(np.array_equal(out[:, :, c], fused) for c in range(3))
