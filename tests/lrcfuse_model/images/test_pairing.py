"""lrcfuse_model.images.pairing: thermal + visible files pair by stem; unpaired files are reported."""

from __future__ import annotations

import pytest

from lrcfuse_model.images.pairing import Pair, dataset_pairs, find_pairs


def touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_pairs_by_stem_with_different_extensions(tmp_path):
    touch(tmp_path / "ir", "b.png", "a.jpg", "c.BMP", "notes.txt")
    touch(tmp_path / "vi", "a.png", "b.png", "c.tiff", "readme.md")
    pairs, problems = find_pairs(tmp_path / "ir", tmp_path / "vi")
    assert problems == []
    assert [p.name for p in pairs] == ["a", "b", "c"]  # sorted, non-images ignored
    assert pairs[0] == Pair("a", tmp_path / "ir" / "a.jpg", tmp_path / "vi" / "a.png")
    assert pairs[2].ir.name == "c.BMP" and pairs[2].vi.name == "c.tiff"


def test_unpaired_files_are_reported_both_ways(tmp_path):
    touch(tmp_path / "ir", "a.png", "only_ir.png")
    touch(tmp_path / "vi", "a.png", "only_vi.jpg")
    pairs, problems = find_pairs(tmp_path / "ir", tmp_path / "vi")
    assert [p.name for p in pairs] == ["a"]
    assert len(problems) == 2
    ir_problem = next(p for p in problems if "only_ir" in p)
    vi_problem = next(p for p in problems if "only_vi" in p)
    assert str(tmp_path / "ir" / "only_ir.png") in ir_problem and "no visible partner" in ir_problem
    assert str(tmp_path / "vi" / "only_vi.jpg") in vi_problem and "no thermal partner" in vi_problem


@pytest.mark.parametrize("missing", ["ir", "vi"])
def test_missing_folder(tmp_path, missing):
    touch(tmp_path / ("vi" if missing == "ir" else "ir"), "a.png")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / missing)):
        find_pairs(tmp_path / "ir", tmp_path / "vi")


def test_duplicate_stem_in_one_folder_is_an_error(tmp_path):
    touch(tmp_path / "ir", "a.png", "a.jpg")
    touch(tmp_path / "vi", "a.png")
    with pytest.raises(ValueError, match="two images share the name 'a'"):
        find_pairs(tmp_path / "ir", tmp_path / "vi")


def test_dataset_pairs_layout(tmp_path):
    touch(tmp_path / "ir", "x.png", "y.png")
    touch(tmp_path / "vi", "x.png", "y.png")
    pairs, problems = dataset_pairs(tmp_path)
    assert [p.name for p in pairs] == ["x", "y"] and problems == []
    with pytest.raises(FileNotFoundError):
        dataset_pairs(tmp_path / "nowhere")


def test_shared_tno42_is_fully_paired(shared_data):
    folder = shared_data / "tno42"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    pairs, problems = dataset_pairs(folder)
    assert len(pairs) == 42 and problems == []
