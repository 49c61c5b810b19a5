"""lrcfuse_model.inference.tiling: receptive field from the architecture, tiles that reproduce the whole frame."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lrcfuse_model import LRCFuse
from lrcfuse_model.cli import main as cli_main
from lrcfuse_model.inference.backends import Backend, TorchBackend, create_backend
from lrcfuse_model.inference.fuser import Fuser
from lrcfuse_model.inference.tiling import (
    MIN_CORE,
    TiledBackend,
    TileGeometry,
    parse_memory,
    parse_tile,
    plan_tiles,
    release_freed_memory,
    tile_geometry,
)
from lrcfuse_model.nn.checkpoint import load_pretrained

RNG = np.random.default_rng(0)


def frames(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return RNG.random((h, w), dtype=np.float32), RNG.random((h, w), dtype=np.float32)


def test_rt_tiles_off_its_grid_stay_within_the_stated_bound(shared_data):
    """LRCFuse-RT at a size that is not a multiple of 8: its whole-frame resize stretches the coefficient
    maps by up to 7/8 of a cell, which tiles do not reproduce; docs/deployment.md states the bound."""
    pair = sorted((shared_data / "msrs_test" / "ir").glob("*.png"))[0]
    ir, vi = (
        np.asarray(Image.open(p).convert("L"), np.float32)[:473, :617] / 255
        for p in (pair, pair.parents[1] / "vi" / pair.name)
    )
    backend = TorchBackend(load_pretrained("rt"))
    whole = np.clip(backend.fuse(ir, vi), 0, 1)
    tiles = np.clip(TiledBackend(backend, tile_geometry(backend.model), tile=96).fuse(ir, vi), 0, 1)
    levels = np.abs(tiles - whole) * 255
    assert levels.max() <= 16 and levels.mean() <= 1  # measured: 11.8 levels at most, 0.35 on average
    assert levels.max() > 1  # the stretch is real: were this exact, the bound would be stale


# -- tiles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "h, w, core, align", [(100, 130, 40, 1), (517, 643, 96, 8), (33, 2000, 500, 1), (64, 64, 64, 8)]
)
def test_tiles_partition_the_frame(h, w, core, align):
    g = TileGeometry(radius=13, align=align)
    tiles = plan_tiles(h, w, (core, core), g)
    cover = np.zeros((h, w), int)
    for t in tiles:
        cover[t.core] += 1
        (ry, rx), (cy, cx) = t.read, t.core
        assert cy.stop - cy.start <= max(core, align) and cx.stop - cx.start <= max(core, align)
        assert ry.start % align == 0 and rx.start % align == 0  # on the pooling grid
        assert ry.start <= max(cy.start - g.margin, 0) and ry.stop >= min(cy.stop + g.margin, h)
        assert rx.start <= max(cx.start - g.margin, 0) and rx.stop >= min(cx.stop + g.margin, w)
        assert 0 <= ry.start and ry.stop <= h and 0 <= rx.start and rx.stop <= w
    assert (cover == 1).all()
    if align == 1:  # every tile reads a region of the same size (the allocator reuses its buffers)
        assert len({(t.read[0].stop - t.read[0].start, t.read[1].stop - t.read[1].start) for t in tiles}) == 1


def test_tile_size_follows_the_memory_budget(tiny_model):
    backend = TiledBackend(TorchBackend(tiny_model), tile_geometry(tiny_model), "auto", parse_memory("2MB"))
    bpp = backend.bytes_per_pixel
    assert bpp > 0
    assert backend.plan(20, 30)[0].read == (slice(0, 20), slice(0, 30))  # fits: one whole frame
    tiles = backend.plan(400, 700)
    assert len(tiles) > 1
    for t in tiles:
        area = (t.read[0].stop - t.read[0].start) * (t.read[1].stop - t.read[1].start)
        assert area * bpp <= 2e6
    with pytest.raises(ValueError, match=r"max_memory 10\.0 KB is too small .* needs about"):
        TiledBackend(TorchBackend(tiny_model), tile_geometry(tiny_model), "auto", 10_000).plan(400, 700)


def test_options():
    assert parse_memory("2GB") == 2 * 10**9 and parse_memory("1.5GiB") == int(1.5 * 2**30)
    assert parse_memory("512mb") == 512 * 10**6 and parse_memory(0) == 0 and parse_memory("off") == 0
    assert parse_tile("auto") == "auto" and parse_tile("OFF") == "off" and parse_tile("256") == 256
    for bad in ("2 parsecs", "-1GB", "GB"):
        with pytest.raises(ValueError, match="max_memory: expected a size like 2GB"):
            parse_memory(bad)
    for bad in ("3", "big", str(MIN_CORE - 1)):
        with pytest.raises(ValueError, match="tile: expected auto, off or a tile size"):
            parse_tile(bad)


# -- same result as the whole frame, on every backend ----------------------------------------------


@pytest.mark.parametrize("backend_name", ["torch", "onnxruntime", "openvino"])
def test_tiled_equals_whole_frame(backend_name, shipped_default):
    pytest.importorskip(backend_name) if backend_name != "torch" else None
    tiles = create_backend(backend_name, "default", threads=1, tile=40, max_memory="2GB")
    assert isinstance(tiles, Backend) and tiles.name == backend_name
    ir, vi = frames(101, 157)
    assert len(tiles.plan(101, 157)) == 12
    whole = tiles.inner.fuse(ir, vi)
    diff = np.abs(tiles.fuse(ir, vi) - whole).max()
    assert diff <= 1e-4  # float rounding only; the goal was <= 1/255
    rgb = RNG.integers(0, 256, (101, 157, 3), dtype=np.uint8)
    thermal = RNG.integers(0, 256, (101, 157), dtype=np.uint8)
    images = Fuser(backend=tiles)(thermal, rgb), Fuser(backend=tiles.inner)(thermal, rgb)
    assert np.abs(images[0].astype(int) - images[1]).max() <= 1


_GIVE_BACK_SCRIPT = """
import json, sys, tempfile, numpy as np, torch
from pathlib import Path
from lrcfuse_model import LRCFuse
from lrcfuse_model.inference.backends import OnnxRuntimeBackend, TorchBackend
from lrcfuse_model.inference.tiling import TiledBackend, tile_geometry
torch.set_num_threads(1)
rss = lambda: int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) // 1024
torch.manual_seed(0)
model = LRCFuse(code_channels=32, feature_channels=16, decoder_channels=[16, 16], llrr_blocks=2, cfpm_stages=2).eval()
if sys.argv[1] == "torch":
    plain = TorchBackend(model)
else:
    import lrcfuse_model.inference.backends as backends
    from lrcfuse_model.inference.export import export_onnx
    backends.ORT_CPU_ARENA = sys.argv[1] == "onnxruntime-arena"  # with its arena: shrunk, then trimmed
    kind = backends.OpenVinoBackend if sys.argv[1] == "openvino" else OnnxRuntimeBackend
    plain = kind(export_onnx(model, Path(tempfile.mkdtemp()) / "m.onnx"), threads=1)
tiles = TiledBackend(plain, tile_geometry(model), tile="off")
small, big = (np.random.default_rng(0).random((n, n), dtype=np.float32) for n in (48, 400))
plain.fuse(small, small)
base = rss()
plain.fuse(big, big)
kept = rss()  # the tuned allocator (and ONNX Runtime's arena) keep what the big frame used
tiles.fuse(small, small)
tiles.fuse(big, big)  # larger than the frame before: given back afterwards
print(json.dumps({"base": base, "kept": kept, "after": rss()}))
"""


@pytest.mark.parametrize("backend_name", ["torch", "onnxruntime", "onnxruntime-arena", "openvino"])
def test_memory_is_given_back_after_a_larger_frame(backend_name):
    import json
    import subprocess
    import sys

    from lrcfuse_model.malloc_tuning import allocator_env

    if backend_name != "torch":
        pytest.importorskip(backend_name.split("-")[0])
    if not release_freed_memory():
        pytest.skip("no glibc malloc_trim here (other C libraries keep their memory)")
    out = subprocess.run(
        [sys.executable, "-c", _GIVE_BACK_SCRIPT, backend_name],
        env=allocator_env(tuned=True),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    mib = json.loads(out.stdout.strip().splitlines()[-1])
    assert mib["kept"] - mib["base"] > 100, mib  # without giving back, the big frame's memory stays
    assert mib["after"] - mib["base"] < 0.25 * (mib["kept"] - mib["base"]), mib


def test_cli_tile_option(tmp_path, tiny_weights):
    ir = Image.fromarray(RNG.integers(0, 256, (70, 90), dtype=np.uint8))
    vi = Image.fromarray(RNG.integers(0, 256, (70, 90), dtype=np.uint8))
    ir.save(tmp_path / "ir.png")
    vi.save(tmp_path / "vi.png")
    common = ["fuse", "--backend", "torch", "--model", str(tiny_weights), "--ir", str(tmp_path / "ir.png")]
    common += ["--vi", str(tmp_path / "vi.png")]
    assert cli_main([*common, "--out", str(tmp_path / "whole.png"), "--tile", "off"]) == 0
    assert cli_main([*common, "--out", str(tmp_path / "tiled.png"), "--tile", "24", "--max-memory", "1GB"]) == 0
    whole, tiles = (np.asarray(Image.open(tmp_path / f"{n}.png"), int) for n in ("whole", "tiled"))
    assert np.abs(whole - tiles).max() <= 1
    assert cli_main([*common, "--out", str(tmp_path / "x.png"), "--tile", "7"]) == 2
    assert cli_main([*common, "--out", str(tmp_path / "x.png"), "--max-memory", "lots"]) == 2
    assert not (tmp_path / "x.png").exists()


def test_a_frame_too_large_for_the_machine_is_one_clear_error():
    huge = LRCFuse(code_channels=1024).eval()  # 2048-channel codes: 73 GB for the first layer of 3000x3000
    tiles = TiledBackend(TorchBackend(huge), tile_geometry(huge), tile="off")
    ir, vi = frames(3000, 3000)
    with pytest.raises(MemoryError, match=r"a 3000x3000 frame ran out of memory on torch .* use tile auto"):
        tiles.fuse(ir, vi)
