"""lrcfuse_model.images.preprocess: the one path from image files / arrays to network inputs and back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrcfuse_model.images.preprocess import (
    InputError,
    finish,
    normalize_thermal,
    prepare_pair,
    read_image,
    rgb_to_ycbcr,
    to_single_channel,
    visible_to_float,
    ycbcr_to_rgb,
)

REPO_SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def thermal16(seed: int = 0, shape=(64, 64)) -> np.ndarray:
    """A 16-bit radiometric frame: values spread over 1000..5000 (a small part of the 16-bit range)."""
    rng = np.random.default_rng(seed)
    return rng.integers(1000, 5001, shape).astype(np.uint16)


# -- thermal -------------------------------------------------------------------------------------


def test_percentile_normalisation_of_16bit():
    raw = thermal16()
    out = normalize_thermal(raw)
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert out.min() == 0.0 and out.max() == 1.0
    assert 0.4 < float(np.median(out)) < 0.6  # stretched over [0, 1], not /65535 (would be ~0.05)
    # Monotone in the raw value.
    order = np.argsort(raw.ravel(), kind="stable")
    assert np.all(np.diff(out.ravel()[order]) >= 0)


def test_percentile_is_robust_to_hot_pixels():
    raw = thermal16()
    clean = normalize_thermal(raw)
    hot = raw.copy()
    hot[3, 5] = 65535
    hot[40, 7] = 0
    out = normalize_thermal(hot)
    assert out[3, 5] == 1.0 and out[40, 7] == 0.0
    mask = np.ones(raw.shape, bool)
    mask[3, 5] = mask[40, 7] = False
    assert np.abs(out[mask] - clean[mask]).max() < 0.01  # the rest of the image is unaffected
    assert out[mask].std() > 0.2
    # minmax, by contrast, is squashed by the single outlier: what percentile mode exists to avoid.
    squashed = normalize_thermal(hot, mode="minmax")
    assert squashed[mask].max() < 0.1


def test_fixed_range():
    raw = np.array([[500, 1000, 3000], [5000, 9000, 65535]], np.uint16)
    out = normalize_thermal(raw, mode="fixed", fixed_range=(1000, 5000))
    np.testing.assert_allclose(out, [[0.0, 0.0, 0.5], [1.0, 1.0, 1.0]])


def test_minmax_and_none():
    raw = np.array([[2000, 3000], [4000, 6000]], np.uint16)
    np.testing.assert_allclose(normalize_thermal(raw, mode="minmax"), [[0.0, 0.25], [0.5, 1.0]])
    np.testing.assert_allclose(normalize_thermal(raw, mode="none"), raw / 65535.0, rtol=1e-6)


def test_8bit_thermal_is_divided_by_255_by_default():
    raw = np.array([[10, 20], [30, 40]], np.uint8)
    for mode in ("percentile", "minmax", "fixed", "none"):
        np.testing.assert_allclose(normalize_thermal(raw, mode=mode), raw / 255.0, rtol=1e-6)
    stretched = normalize_thermal(raw, mode="minmax", normalize_8bit=True)
    np.testing.assert_allclose(stretched, [[0.0, 1 / 3], [2 / 3, 1.0]], rtol=1e-6)


@pytest.mark.parametrize("mode", ["percentile", "minmax"])
def test_flat_frame_is_mid_gray(mode):
    raw = np.full((8, 9), 4242, np.uint16)
    out = normalize_thermal(raw, mode=mode)
    assert out.shape == raw.shape
    assert np.all(out == 0.5)


@pytest.mark.parametrize(
    "percentiles, fixed_range, message",
    [
        ((1, 99), (4242, 4242), r"thermal_range: expected LOW < HIGH .* got \[4242.0, 4242.0\]"),
        ((1, 99), (100, 50), r"thermal_range: expected LOW < HIGH"),
        ((1, 99), (5,), r"thermal_range: expected two numbers LOW HIGH"),
        ((1, 99), (0, float("inf")), r"thermal_range: expected two finite numbers"),
        ((99, 1), (0, 65535), r"thermal_percentiles: expected 0 <= LOW < HIGH <= 100"),
        ((1, 101), (0, 65535), r"thermal_percentiles: expected 0 <= LOW < HIGH <= 100"),
        ((50,), (0, 65535), r"thermal_percentiles: expected two numbers"),
    ],
)
def test_inverted_or_single_value_settings_are_config_errors(percentiles, fixed_range, message):
    from lrcfuse_model.config import ConfigError

    raw = np.full((8, 9), 4242, np.uint16)
    for mode in ("fixed", "percentile"):  # checked whatever the mode: never a silently flat image
        with pytest.raises(ConfigError, match=message):
            normalize_thermal(raw, mode=mode, percentiles=percentiles, fixed_range=fixed_range)
    with pytest.raises(ConfigError, match=message):
        prepare_pair(raw, raw.astype(np.uint8), {"thermal_percentiles": percentiles, "thermal_range": fixed_range})


def test_kelvin_float_thermal_is_normalised_like_16bit():
    rng = np.random.default_rng(3)
    kelvin = (290.0 + 20.0 * rng.random((30, 40))).astype(np.float32)
    kelvin[5:10, 5:10] = 318.0  # a hot target, above the 99th percentile
    for dtype in (np.float32, np.float64):
        k = kelvin.astype(dtype)
        out = normalize_thermal(k, mode="minmax")
        np.testing.assert_allclose(out, (k - k.min()) / (k.max() - k.min()), atol=1e-6)
        fixed = normalize_thermal(k, mode="fixed", fixed_range=(290, 310))
        np.testing.assert_allclose(fixed, np.clip((k - 290) / 20, 0, 1), atol=1e-6)
        pct = normalize_thermal(k)  # the default: 1st..99th percentile
        lo, hi = np.percentile(k, [1, 99])
        np.testing.assert_allclose(pct, np.clip((k - lo) / (hi - lo), 0, 1), atol=1e-6)
        assert 0.2 < pct.mean() < 0.8 and pct[5:10, 5:10].min() == 1.0  # content kept, not all 255
    with pytest.raises(InputError, match=r"290.*not in \[0, 1\].*thermal_norm none"):
        normalize_thermal(kelvin, mode="none")
    unit = rng.random((4, 5))
    np.testing.assert_allclose(normalize_thermal(unit, mode="none"), unit, atol=1e-6)


def test_read_float32_tiff_keeps_the_values(tmp_path):
    kelvin = (290.0 + 20.0 * np.random.default_rng(4).random((12, 13))).astype(np.float32)
    Image.fromarray(kelvin, mode="F").save(tmp_path / "k.tif")
    out = read_image(tmp_path / "k.tif")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, kelvin)


def test_read_float64_tiff_keeps_the_values(tmp_path):
    cv2 = pytest.importorskip("cv2", reason="PIL cannot open float64 TIFFs; OpenCV reads them")
    kelvin = 290.0 + 20.0 * np.random.default_rng(5).random((12, 13))
    assert cv2.imwrite(str(tmp_path / "k64.tiff"), kelvin)
    out = read_image(tmp_path / "k64.tiff")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, kelvin)
    normalised = normalize_thermal(out, mode="fixed", fixed_range=(290, 310))
    np.testing.assert_allclose(normalised, (kelvin - 290) / 20, atol=1e-6)


def test_unknown_thermal_norm():
    with pytest.raises(InputError, match="thermal_norm must be one of"):
        normalize_thermal(thermal16(), mode="log")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_float_input(bad):
    img = np.random.default_rng(0).random((6, 7)).astype(np.float32)
    img[2, 3] = bad
    with pytest.raises(InputError, match=r"ir\.tiff: contains NaN or infinite values \((1 NaN, 0|0 NaN, 1) inf of 42"):
        normalize_thermal(img, name="ir.tiff")
    with pytest.raises(InputError, match=r"vis\.tiff: contains NaN"):
        visible_to_float(img, name="vis.tiff")
    with pytest.raises(InputError, match="NaN"):
        prepare_pair(img, np.zeros((6, 7), np.uint8))


def test_rgb_thermal_with_equal_channels_is_one_channel():
    gray = np.random.default_rng(0).integers(0, 256, (5, 6), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    np.testing.assert_array_equal(normalize_thermal(rgb), gray / np.float32(255.0))


def test_to_single_channel_shapes():
    a = np.zeros((4, 5, 1), np.uint8)
    assert to_single_channel(a).shape == (4, 5)
    colour = np.zeros((4, 5, 3), np.uint8)
    colour[..., 0] = 1
    assert to_single_channel(colour).shape == (4, 5, 3)
    with pytest.raises(InputError, match=r"expected H x W or H x W x 3, got shape \(4, 5, 4\)"):
        to_single_channel(np.zeros((4, 5, 4), np.uint8))


# -- visible and colour ------------------------------------------------------------------------


def test_ycbcr_roundtrip():
    rgb = np.random.default_rng(1).random((17, 23, 3)).astype(np.float32)
    back = ycbcr_to_rgb(rgb_to_ycbcr(rgb))
    np.testing.assert_allclose(back, rgb, atol=1e-5)


def test_ycbcr_known_values():
    white = rgb_to_ycbcr(np.ones((1, 1, 3), np.float32))[0, 0]
    np.testing.assert_allclose(white, [1.0, 0.5, 0.5], atol=1e-6)
    red = rgb_to_ycbcr(np.array([[[1.0, 0.0, 0.0]]], np.float32))[0, 0]
    np.testing.assert_allclose(red, [0.299, 0.5 - 0.168736, 1.0], atol=1e-6)


def test_visible_to_float_dtypes():
    np.testing.assert_allclose(visible_to_float(np.array([[0, 255]], np.uint8)), [[0.0, 1.0]])
    np.testing.assert_allclose(visible_to_float(np.array([[0, 65535]], np.uint16)), [[0.0, 1.0]])
    np.testing.assert_allclose(visible_to_float(np.array([[-0.5, 0.25, 2.0]], np.float32)), [[0.0, 0.25, 1.0]])


def test_equal_channel_rgb_visible_is_gray():
    gray = np.random.default_rng(0).integers(0, 256, (12, 10), dtype=np.uint8)
    pair = prepare_pair(gray, np.repeat(gray[..., None], 3, axis=2))
    assert pair.cbcr is None
    np.testing.assert_allclose(pair.vi_y, gray / 255.0, rtol=1e-6)
    assert finish(pair.vi_y, pair).shape == (12, 10)


def test_colour_visible_keeps_chroma():
    rng = np.random.default_rng(2)
    vi = rng.integers(0, 256, (15, 21, 3), dtype=np.uint8)
    ir = rng.integers(0, 256, (15, 21), dtype=np.uint8)
    pair = prepare_pair(ir, vi)
    assert pair.shape == (15, 21)
    assert pair.cbcr is not None and pair.cbcr.shape == (15, 21, 2)
    out = finish(pair.vi_y, pair)  # fused Y == visible Y: the visible image comes back
    assert out.dtype == np.uint8 and out.shape == (15, 21, 3)
    assert np.abs(out.astype(int) - vi.astype(int)).max() <= 2


def test_finish_gray():
    gray = np.random.default_rng(3).integers(0, 256, (9, 13), dtype=np.uint8)
    pair = prepare_pair(gray, gray)
    out = finish(pair.vi_y, pair)
    assert out.dtype == np.uint8 and out.shape == (9, 13)
    np.testing.assert_array_equal(out, gray)


def test_finish_clamps_and_removes_nan():
    pair = prepare_pair(np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.uint8))
    out = finish(np.array([[-0.5, 0.5, 1.5, np.nan]] * 2, np.float32), pair)
    np.testing.assert_array_equal(out, [[0, 128, 255, 0]] * 2)


def test_one_pixel_high_image_is_rejected_clearly():
    with pytest.raises(InputError, match="too small"):
        prepare_pair(np.zeros((1, 4), np.uint8), np.zeros((1, 4), np.uint8), names=("t.png", "v.png"))


# -- sizes -----------------------------------------------------------------------------------


def test_size_mismatch_names_both_sizes():
    ir = np.zeros((40, 50), np.uint8)
    vi = np.zeros((40, 48), np.uint8)
    with pytest.raises(InputError) as info:
        prepare_pair(ir, vi, names=("a_ir.png", "a_vi.png"))
    msg = str(info.value)
    assert "a_ir.png is 50x40" in msg and "a_vi.png is 48x40" in msg
    assert "resize_ir" in msg


def test_size_mismatch_resize_ir():
    ir = np.tile(np.linspace(0, 255, 25, dtype=np.float32).astype(np.uint8), (20, 1))
    vi = np.zeros((40, 50), np.uint8)
    pair = prepare_pair(ir, vi, {"size_mismatch": "resize_ir"})
    assert pair.ir.shape == pair.vi_y.shape == (40, 50)
    assert pair.ir.dtype == np.float32
    assert pair.ir[:, 0].mean() < 0.1 and pair.ir[:, -1].mean() > 0.9  # the ramp survives the resize


def test_prepare_pair_uses_data_config():
    raw = thermal16()
    default = prepare_pair(raw, np.zeros(raw.shape, np.uint8))
    none = prepare_pair(raw, np.zeros(raw.shape, np.uint8), {"thermal_norm": "none"})
    assert default.ir.max() == 1.0
    assert none.ir.max() < 0.1


# -- files ----------------------------------------------------------------------------------


def test_read_image_corrupt_file_names_it(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG this is not really an image" * 3)
    with pytest.raises(InputError, match=r"x\.png: not a readable image"):
        read_image(path)


def test_read_image_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"gone\.png: no such file"):
        read_image(tmp_path / "gone.png")


def test_read_16bit_png_as_uint16(tmp_path):
    raw = thermal16(shape=(11, 13))
    raw[0, 0] = 65535
    path = tmp_path / "t16.png"
    Image.fromarray(raw).save(path)
    back = read_image(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, raw)


def test_read_8bit_gray_and_colour(tmp_path):
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, (7, 9), dtype=np.uint8)
    colour = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    Image.fromarray(colour).save(tmp_path / "c.png")
    Image.fromarray(colour).convert("RGBA").save(tmp_path / "a.png")
    g, c, a = (read_image(tmp_path / n) for n in ("g.png", "c.png", "a.png"))
    assert g.dtype == np.uint8 and g.shape == (7, 9)
    np.testing.assert_array_equal(g, gray)
    np.testing.assert_array_equal(c, colour)
    np.testing.assert_array_equal(a, colour)  # alpha dropped


def test_tno_pairs_are_gray(shared_data):
    """TNO stores gray images as R = G = B RGB files: they must fuse as gray."""
    folder = shared_data / "tno42"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    ir, vi = read_image(folder / "ir" / "01.png"), read_image(folder / "vi" / "01.png")
    pair = prepare_pair(ir, vi)
    assert pair.cbcr is None
    assert pair.ir.shape == pair.vi_y.shape == ir.shape[:2]
    assert 0.0 <= pair.ir.min() and pair.ir.max() <= 1.0


# -- camera alignment (homography) ----------------------------------------------------------------


def _spot(shape, y, x) -> np.ndarray:
    img = np.zeros(shape, np.uint8)
    img[y, x] = 255
    return img


def _peak(img: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(np.argmax(img), img.shape))  # type: ignore[return-value]


def test_identity_homography_changes_nothing():
    ir, vi = thermal16(1, (20, 30)), np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8)
    plain = prepare_pair(ir, vi)
    warped = prepare_pair(ir, vi, {"homography": [1, 0, 0, 0, 1, 0, 0, 0, 1]})
    np.testing.assert_allclose(warped.ir, plain.ir, atol=1e-6)


def test_homography_warps_thermal_into_the_visible_frame_opencv_convention():
    """A thermal pixel at (x, y) lands at H (x, y) in the visible frame, pixel centres at integers."""
    ir = _spot((16, 20), y=5, x=4)
    vi = np.zeros((40, 50), np.uint8)
    scale_shift = [2, 0, 3, 0, 2, 1, 0, 0, 1]  # x' = 2x + 3, y' = 2y + 1
    pair = prepare_pair(ir, vi, {"homography": scale_shift})
    assert pair.ir.shape == (40, 50)  # the visible size: no size mismatch any more
    assert _peak(pair.ir) == (11, 11)
    assert pair.ir[11, 11] == pytest.approx(1.0)
    # visible pixels outside the thermal footprint (x' > 2 * 19 + 3) get no thermal data: 0
    assert pair.ir[:, 42:].max() == 0.0


def test_homography_perspective_matches_numpy_reference():
    ir = np.random.default_rng(2).random((24, 32)).astype(np.float32)
    h = np.array([[0.9, 0.05, 2.0], [-0.03, 1.1, -1.0], [1e-3, -5e-4, 1.0]])
    from lrcfuse_model.images.preprocess import warp_thermal

    out = warp_thermal(ir, h, (24, 32))
    ys, xs = np.mgrid[0:24, 0:32]
    src = np.linalg.inv(h) @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    sx, sy = src[0] / src[2], src[1] / src[2]
    inside = (sx > 1) & (sx < 30) & (sy > 1) & (sy < 22)
    x0, y0 = np.floor(sx[inside]).astype(int), np.floor(sy[inside]).astype(int)
    fx, fy = sx[inside] - x0, sy[inside] - y0
    ref = (
        ir[y0, x0] * (1 - fx) * (1 - fy)
        + ir[y0, x0 + 1] * fx * (1 - fy)
        + ir[y0 + 1, x0] * (1 - fx) * fy
        + ir[y0 + 1, x0 + 1] * fx * fy
    )
    np.testing.assert_allclose(out.ravel()[inside], ref, atol=2e-3)


@pytest.mark.parametrize(
    "name, text",
    [
        ("h.yaml", "homography:\n  - [2, 0, 3]\n  - [0, 2, 1]\n  - [0, 0, 1]\n"),
        ("h.yml", "rows: 3\ncols: 3\ndata: [2, 0, 3, 0, 2, 1, 0, 0, 1]\n"),
        ("h.json", "[[2, 0, 3], [0, 2, 1], [0, 0, 1]]"),
        ("h.txt", "# thermal -> visible\n2 0 3\n0 2 1\n0 0 1\n"),
        ("h.csv", "2,0,3\n0,2,1\n0,0,1\n"),
    ],
)
def test_homography_file_formats(tmp_path, name, text):
    from lrcfuse_model.images.preprocess import load_homography

    path = tmp_path / name
    path.write_text(text)
    np.testing.assert_array_equal(load_homography({"homography_file": str(path)}), [[2, 0, 3], [0, 2, 1], [0, 0, 1]])
    pair = prepare_pair(_spot((16, 20), 5, 4), np.zeros((40, 50), np.uint8), {"homography_file": str(path)})
    assert _peak(pair.ir) == (11, 11)


def test_homography_file_is_read_once(tmp_path):
    from lrcfuse_model.images.preprocess import load_homography

    path = tmp_path / "h.txt"
    path.write_text("1 0 2 0 1 0 0 0 1")
    first = load_homography({"homography_file": str(path)})
    path.write_text("not a matrix")  # a cached setting does not touch the file again
    assert load_homography({"homography_file": str(path)}) is first


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"homography": [1, 0, 0, 0, 1, 0]}, r"expected 9 numbers .* got 6"),
        ({"homography": [[1, 0], [0, 1]]}, r"expected 9 numbers .* got 4"),
        ({"homography": [1, 2, 3, 2, 4, 6, 0, 0, 1]}, "singular"),
        ({"homography": [1, 0, 0, 0, 1, 0, 0, 0, float("nan")]}, "NaN"),
        ({"homography": ["1", "x", 0, 0, 1, 0, 0, 0, 1]}, "expected 9 numbers"),
        ({"homography_file": "/no/such/h.yaml"}, "does not exist"),
        ({"homography": [1, 0, 0, 0, 1, 0, 0, 0, 1], "homography_file": "h.txt"}, "not both"),
    ],
)
def test_bad_homography_rejected_clearly(setting, message):
    from lrcfuse_model.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        prepare_pair(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), setting)


def test_bad_homography_file_contents(tmp_path):
    from lrcfuse_model.config import ConfigError
    from lrcfuse_model.images.preprocess import load_homography

    (tmp_path / "h.txt").write_text("1 0 0 0 one 0 0 0 1")
    (tmp_path / "h.yaml").write_text("rotation: [1, 0, 0]\n")
    with pytest.raises(ConfigError, match=r"h.txt is not a readable homography"):
        load_homography({"homography_file": str(tmp_path / "h.txt")})
    with pytest.raises(ConfigError, match=r"h.yaml: expected a 3x3 matrix or one of the keys"):
        load_homography({"homography_file": str(tmp_path / "h.yaml")})


def test_homography_mapping_outside_the_frame_is_an_input_error():
    with pytest.raises(InputError, match="entirely outside"):
        shift_far_right = {"homography": [1, 0, 100, 0, 1, 0, 0, 0, 1]}
        prepare_pair(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), shift_far_right)


def test_homography_in_the_defaults_is_empty():
    from lrcfuse_model.images.preprocess import data_settings, load_homography

    assert data_settings()["homography"] == [] and data_settings()["homography_file"] == ""
    assert load_homography() is None


# -- the per-channel conversions against the matrix-product math they replaced ---------------------

# The previous implementation, copied here as the reference: rgb @ matrix over H x W x 3 float32.
_REF_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_REF_YCC2RGB = np.linalg.inv(_REF_RGB2YCC).astype(np.float32)


def _ref_prepare_visible(vi: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(vi_y, cbcr) as prepare_pair computed them before."""
    vi_f = visible_to_float(vi)
    if vi_f.ndim == 2:
        return vi_f, None
    ycc = vi_f @ _REF_RGB2YCC.T
    ycc[..., 1:] += 0.5
    return np.ascontiguousarray(ycc[..., 0]), ycc[..., 1:]


def _ref_finish(fused_y: np.ndarray, cbcr: np.ndarray | None) -> np.ndarray:
    y = np.clip(np.nan_to_num(fused_y, nan=0.0), 0.0, 1.0)
    if cbcr is None:
        out = y
    else:
        x = np.concatenate([y[..., None], cbcr], axis=-1)
        x[..., 1:] -= 0.5
        out = np.clip(x @ _REF_YCC2RGB.T, 0.0, 1.0)
    return (out * 255.0 + 0.5).astype(np.uint8)


# Measured: about 1 value in 10^6 differs (by 1), where x * 255 + 0.5 lands within a float32 rounding of
# an integer; the bound leaves 100x room. Gray output is bit-identical.
MAX_DIFFERING_SHARE = 1e-4


class _Tally:
    """Differences of the new outputs from the reference, over many images."""

    def __init__(self) -> None:
        self.values = self.differing = self.gray_values = 0
        self.largest = 0

    def add(self, ir: np.ndarray, vi: np.ndarray, rng: np.random.Generator) -> None:
        pair = prepare_pair(ir, vi)
        ref_y, ref_cbcr = _ref_prepare_visible(vi)
        np.testing.assert_allclose(pair.vi_y, ref_y, rtol=0, atol=1e-6)  # the network input: float32 rounding
        assert (pair.cbcr is None) == (ref_cbcr is None)
        if ref_cbcr is not None:
            np.testing.assert_allclose(pair.cbcr, ref_cbcr, rtol=0, atol=1e-6)
            assert pair.cbcr.shape == ref_cbcr.shape and pair.vi_y.flags.c_contiguous
        # fused Y: the visible luma itself (the visible image back), and a network-like mix with the
        # thermal image reaching outside [0, 1]
        mixed = 0.6 * ref_y + 0.5 * pair.ir + rng.normal(0.0, 0.05, ref_y.shape) - 0.05
        for fused in (ref_y, mixed.astype(np.float32)):
            new, ref = finish(fused, pair), _ref_finish(fused, ref_cbcr)
            assert new.dtype == np.uint8 and new.shape == ref.shape
            diff = np.abs(new.astype(np.int16) - ref)
            self.largest = max(self.largest, int(diff.max()))
            self.differing += int(np.count_nonzero(diff))
            self.values += diff.size
            if ref_cbcr is None:
                self.gray_values += diff.size

    def check(self) -> None:
        assert self.values > 0
        assert self.largest <= 1
        assert self.differing / self.values <= MAX_DIFFERING_SHARE, (self.differing, self.values)


def test_conversions_match_the_matrix_product_on_random_images():
    rng = np.random.default_rng(11)
    tally = _Tally()
    for shape in ((512, 640), (37, 53), (2, 2), (480, 360)):
        vi = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        ir = rng.integers(0, 256, shape, dtype=np.uint8)
        tally.add(ir, vi, rng)
        tally.add(ir, vi[..., 0], rng)  # gray
    tally.check()
    # float inputs and the public conversions
    rgb = rng.random((64, 48, 3)).astype(np.float32)
    ref = rgb @ _REF_RGB2YCC.T
    ref[..., 1:] += 0.5
    np.testing.assert_allclose(rgb_to_ycbcr(rgb), ref, rtol=0, atol=1e-6)
    back = ref.copy()
    back[..., 1:] -= 0.5
    np.testing.assert_allclose(ycbcr_to_rgb(ref), np.clip(back @ _REF_YCC2RGB.T, 0, 1), rtol=0, atol=1e-6)
    assert rgb_to_ycbcr(rgb.astype(np.float64)).dtype == np.float64


def test_finish_matches_the_reference_with_nan_and_out_of_range_values():
    rng = np.random.default_rng(12)
    vi = rng.integers(0, 256, (24, 31, 3), dtype=np.uint8)
    pair = prepare_pair(vi[..., 1], vi)
    fused = rng.normal(0.5, 0.6, (24, 31)).astype(np.float32)
    fused[3, 4], fused[5, 6], fused[7, 8] = np.nan, np.inf, -np.inf
    kept = fused.copy()
    for p in (pair, prepare_pair(vi[..., 1], vi[..., 2])):
        new, ref = finish(fused, p), _ref_finish(fused, p.cbcr)
        assert np.abs(new.astype(int) - ref).max() <= 1
    np.testing.assert_array_equal(fused, kept)  # the network output is not written to
    np.testing.assert_array_equal(finish(fused, prepare_pair(vi[..., 1], vi[..., 2])), _ref_finish(fused, None))


def test_conversions_match_the_matrix_product_on_real_images(shared_data):
    """Bundled samples (FLIR colour, TNO), RoadScene colour pairs and TNO (gray): max 1 grey level, rarely."""
    from lrcfuse_model.images.pairing import find_pairs

    folders = [REPO_SAMPLES, shared_data / "roadscene221", shared_data / "tno42"]
    rng = np.random.default_rng(13)
    tally = _Tally()
    for folder in folders:
        if not folder.is_dir():
            continue
        pairs, _ = find_pairs(folder / "ir", folder / "vi")
        for p in pairs[:: max(1, len(pairs) // 12)]:  # about a dozen pairs per folder
            ir, vi = read_image(p.ir), read_image(p.vi)
            if ir.shape[:2] == vi.shape[:2]:
                tally.add(ir, vi, rng)
    if tally.values == 0:
        pytest.skip("no image pairs found")
    tally.check()
    assert tally.gray_values > 0 and tally.values > tally.gray_values  # both paths were exercised


# -- 8/16-bit thermal normalisation: histogram + look-up table against the per-pixel float math ---------


def _ref_normalize_thermal(ir, mode="percentile", percentiles=(1.0, 99.0), fixed_range=(0.0, 65535.0), n8=False):
    """normalize_thermal as it was (a 2-D integer frame): np.percentile and float passes over every pixel."""
    if ir.dtype == np.uint8 and not n8:
        return ir.astype(np.float32) / 255.0
    x = ir.astype(np.float32)
    if mode == "none":
        return np.clip(x / (255.0 if ir.dtype == np.uint8 else 65535.0), 0.0, 1.0)
    if mode == "percentile":
        lo, hi = np.percentile(x, [percentiles[0], percentiles[1]])
    elif mode == "fixed":
        lo, hi = float(fixed_range[0]), float(fixed_range[1])
    else:
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.full(x.shape, 0.5, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def test_integer_thermal_normalisation_is_bit_identical_to_the_per_pixel_math():
    from lrcfuse_model.images.preprocess import _integer_percentiles

    rng = np.random.default_rng(14)
    qs = [[1.0, 99.0], [0.0, 100.0], [5, 95.5], [50.0, 50.0], [0.1, 99.9], [100.0, 100.0], [0.0, 0.0]]
    for trial in range(120):
        dtype, top = (np.uint16, 65536) if trial % 2 else (np.uint8, 256)
        shape = tuple(int(v) for v in rng.integers(1, 50, 2))
        kind = trial % 5
        if kind == 0:
            raw = rng.integers(0, top, shape)
        elif kind == 1:
            raw = rng.integers(1000 % top, 1000 % top + 9, shape)  # a narrow band
        elif kind == 2:
            raw = np.full(shape, rng.integers(0, top))  # flat
        elif kind == 3:
            raw = np.clip(rng.normal(top / 2, top / 10, shape), 0, top - 1)
        else:
            raw = rng.choice([0, top - 1], shape)  # two values
        raw = raw.astype(dtype)
        for q in qs:
            ref = np.percentile(raw.astype(np.float32), q)
            got = _integer_percentiles(raw, top, q)
            assert got.dtype == ref.dtype and np.array_equal(got, ref), (raw, q, got, ref)
        valid = [q for q in qs if q[0] < q[1]]  # equal percentiles are a ConfigError (always a flat image)
        q = valid[trial % len(valid)]
        for mode in ("percentile", "fixed", "minmax", "none"):
            for n8 in (False, True):
                new = normalize_thermal(raw, mode, q, (100.0, 40000.0), n8)
                ref = _ref_normalize_thermal(raw, mode, q, (100.0, 40000.0), n8)
                assert new.dtype == ref.dtype == np.float32 and np.array_equal(new, ref), (mode, n8, q)
    # a camera-sized 16-bit frame, strided (one channel of an RGB-stored thermal image)
    raw = rng.integers(1000, 5001, (512, 640)).astype(np.uint16)
    np.testing.assert_array_equal(normalize_thermal(raw), _ref_normalize_thermal(raw))
    stored = np.repeat(raw[..., None], 3, axis=2)
    np.testing.assert_array_equal(normalize_thermal(stored), _ref_normalize_thermal(raw))
