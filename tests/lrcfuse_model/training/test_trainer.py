"""lrcfuse_model.training.trainer: training that stops anywhere and resumes exactly."""

from __future__ import annotations

import csv
import os
import signal

import pytest
import torch
from PIL import Image

from lrcfuse_model import count_parameters, load_model
from lrcfuse_model.config import resolve
from lrcfuse_model.training.loss_log import CSV_FIELDS
from lrcfuse_model.training.trainer import Trainer

N = 3  # steps before the interruption; the full run has 2N


def make_cfg(data, out, model_cfg, loss=None, **train):
    t = {
        "data": [str(data)],
        "out": str(out),
        "patch_size": 32,
        "batch_size": 2,
        "steps": 2 * N,
        "seed": 7,
        "log_every": 1,
        "save_every": 100,
        "threads": 1,
    }
    t.update(train)
    return resolve(overrides={"model": model_cfg, "loss": loss or {"feature_net": "none"}, "train": t})


def read_rows(path, drop=("elapsed_s",)):
    with open(path, encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def load_ckpt(path):
    # weights_only=True: checkpoints hold plain tensors/containers only (what load_model needs too).
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_training_state(a, b):
    assert a["step"] == b["step"]
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    opt_a, opt_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert opt_a.keys() == opt_b.keys()
    for i in opt_a:
        for name in opt_a[i]:
            assert torch.equal(opt_a[i][name], opt_b[i][name]), (i, name)
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]


def test_resume_gives_exactly_the_uninterrupted_run(tiny_dataset, tiny_model_cfg, tmp_path):
    """N steps + resume + N steps == 2N steps: every weight bit-identical, same loss log."""
    torch.set_num_threads(1)
    dir_a, dir_b = tmp_path / "A", tmp_path / "B"
    summary_a = Trainer(make_cfg(tiny_dataset, dir_a, tiny_model_cfg, steps=2 * N)).run(show_progress=False)
    assert summary_a["step"] == 2 * N and summary_a["stopped_by"] == "steps"

    first = Trainer(make_cfg(tiny_dataset, dir_b, tiny_model_cfg, steps=N)).run(show_progress=False)
    assert first["step"] == N
    assert load_ckpt(dir_b / "last.pt")["step"] == N
    # As if a run killed hard (SIGKILL, power loss) had logged a step after its last checkpoint:
    # resuming must drop that row and write it again.
    with open(dir_b / "loss.csv", "a", encoding="utf-8") as f:
        f.write(f"{N + 1},999,1,0,0,0,1,0.1,0.0\n")
    resumed_trainer = Trainer(make_cfg(tiny_dataset, dir_b, tiny_model_cfg, steps=2 * N, resume="auto"))
    summary_b = resumed_trainer.run(show_progress=False)
    assert summary_b["step"] == 2 * N

    ckpt_a, ckpt_b = load_ckpt(dir_a / "last.pt"), load_ckpt(dir_b / "last.pt")
    assert_same_training_state(ckpt_a, ckpt_b)
    for key, value in Trainer(make_cfg(tiny_dataset, tmp_path / "C", tiny_model_cfg)).model.state_dict().items():
        if value.is_floating_point() and value.numel() > 1:
            assert not torch.equal(value, ckpt_a["model"][key]), f"{key} did not train"

    rows_a, rows_b = read_rows(dir_a / "loss.csv"), read_rows(dir_b / "loss.csv")
    assert [int(r["step"]) for r in rows_a] == list(range(1, 2 * N + 1))
    assert rows_b == rows_a  # no duplicated or missing rows around the resume point

    wa = torch.load(dir_a / "weights.pt", weights_only=True)["state_dict"]
    wb = torch.load(dir_b / "weights.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_after_signal_with_cosine_schedule(tiny_dataset, tiny_model_cfg, tmp_path):
    """An interrupted run (stop signal) resumes onto the same lr schedule and weights."""
    steps = 4
    full = Trainer(make_cfg(tiny_dataset, tmp_path / "A", tiny_model_cfg, steps=steps, lr_schedule="cosine"))
    full.run(show_progress=False)

    stopped = Trainer(make_cfg(tiny_dataset, tmp_path / "B", tiny_model_cfg, steps=steps, lr_schedule="cosine"))
    stopped._stop_signal = signal.SIGINT
    assert stopped.run(show_progress=False)["stopped_by"] == "SIGINT"
    resumed = Trainer(
        make_cfg(tiny_dataset, tmp_path / "B", tiny_model_cfg, steps=steps, lr_schedule="cosine", resume="auto")
    )
    assert resumed.run(show_progress=False)["step"] == steps
    assert_same_training_state(load_ckpt(tmp_path / "A" / "last.pt"), load_ckpt(tmp_path / "B" / "last.pt"))
    assert read_rows(tmp_path / "A" / "loss.csv") == read_rows(tmp_path / "B" / "loss.csv")
    lrs = [float(r["lr"]) for r in read_rows(tmp_path / "A" / "loss.csv")]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == 0.0  # cosine down to 0 at `steps`


def test_stop_signal_writes_a_checkpoint(tiny_dataset, tiny_model_cfg, tmp_path):
    trainer = Trainer(make_cfg(tiny_dataset, tmp_path / "run", tiny_model_cfg, steps=1000))
    trainer._stop_signal = signal.SIGTERM
    summary = trainer.run(show_progress=False)
    assert summary["stopped_by"] == "SIGTERM"
    assert summary["step"] == 1
    assert load_ckpt(tmp_path / "run" / "last.pt")["step"] == 1
    assert (tmp_path / "run" / "weights.pt").is_file()


def test_real_sigterm_is_caught_and_handlers_restored(tiny_dataset, tiny_model_cfg, tmp_path):
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))  # safety net
    try:
        trainer = Trainer(make_cfg(tiny_dataset, tmp_path / "run", tiny_model_cfg, steps=1000))
        original_batch = trainer.sampler.batch

        def batch(step, batch_size, seed=0):
            if step == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return original_batch(step, batch_size, seed)

        trainer.sampler.batch = batch
        summary = trainer.run(show_progress=False)
        assert received == []  # the trainer's handler got it, not ours
        assert summary["stopped_by"] == "SIGTERM"
        assert summary["step"] == 2
        assert load_ckpt(tmp_path / "run" / "last.pt")["step"] == 2
        # The caller's handler is back.
        os.kill(os.getpid(), signal.SIGTERM)
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_time_budget_stops_and_saves(tiny_dataset, tiny_model_cfg, tmp_path):
    summary = Trainer(make_cfg(tiny_dataset, tmp_path / "run", tiny_model_cfg, steps=1000, time_budget=1e-9)).run(
        show_progress=False
    )
    assert summary["stopped_by"] == "time_budget"
    assert summary["step"] == 1
    assert load_ckpt(tmp_path / "run" / "last.pt")["step"] == 1


def test_outputs_of_a_run(tiny_dataset, tiny_model_cfg, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(make_cfg(tiny_dataset, out, tiny_model_cfg, steps=4, log_every=2, save_every=2))
    summary = trainer.run(show_progress=False)
    assert summary["parameters"] == count_parameters(trainer.model)
    assert summary["training_pairs"] == 3
    for name in ("last.pt", "weights.pt", "loss.csv", "loss_curves.png"):
        assert (out / name).is_file(), name
    assert summary["loss_png"] == str(out / "loss_curves.png")
    with Image.open(out / "loss_curves.png") as png:
        assert png.format == "PNG" and png.size[0] > 500
    with open(out / "loss.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == CSV_FIELDS
    assert [r["step"] for r in rows] == ["2", "4"]
    assert all(float(r["shallow"]) == 0.0 for r in rows)  # feature_net none

    # Both the weights file and the checkpoint load as models that equal the trained one: the same
    # tensors, and the same outputs up to the order of summation (training ran NHWC convolutions).
    x = (torch.rand(1, 1, 20, 20), torch.rand(1, 1, 20, 20))
    trainer.model.eval()
    trained = trainer.model.state_dict()
    with torch.no_grad():
        expected = trainer.model(*x)
        for path in (out / "weights.pt", out / "last.pt"):
            model = load_model(path)
            assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items()), path
            torch.testing.assert_close(model(*x), expected, rtol=0, atol=1e-5, msg=str(path))
    meta = torch.load(out / "weights.pt", weights_only=True)["meta"]
    assert meta["steps"] == 4 and meta["patch_size"] == 32


def test_resume_with_a_different_model_config_is_refused(tiny_dataset, tiny_model_cfg, tmp_path):
    out = tmp_path / "run"
    Trainer(make_cfg(tiny_dataset, out, tiny_model_cfg, steps=1)).run(show_progress=False)
    other = {**tiny_model_cfg, "code_channels": 5}
    trainer = Trainer(make_cfg(tiny_dataset, out, other, steps=2, resume="auto"))
    with pytest.raises(ValueError, match="was trained with model config"):
        trainer.run(show_progress=False)


def test_a_checkpoint_is_tensors_and_plain_data_only(tiny_dataset, tiny_model_cfg, tmp_path):
    """What save_checkpoint writes needs no Python class or function to load: weights_only=True reads all of it."""
    Trainer(make_cfg(tiny_dataset, tmp_path / "run", tiny_model_cfg, steps=1)).run(show_progress=False)
    path = tmp_path / "run" / "last.pt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    rng = load_ckpt(path)["rng"]
    assert isinstance(rng["torch"], torch.Tensor) and isinstance(rng["numpy"][1], torch.Tensor)
    assert isinstance(rng["python"], tuple) and all(isinstance(v, int) for v in rng["python"][1])


def test_a_checkpoint_of_lrcfuse_before_0_1_resumes_without_running_code(tiny_dataset, tiny_model_cfg, tmp_path):
    """Checkpoints that pickled numpy's RNG key as an ndarray still resume exactly (numpy's array constructors
    allowed, nothing else), so a run started by an older version is not lost."""
    import numpy as np

    full = Trainer(make_cfg(tiny_dataset, tmp_path / "A", tiny_model_cfg, steps=2 * N))
    full.run(show_progress=False)
    Trainer(make_cfg(tiny_dataset, tmp_path / "B", tiny_model_cfg, steps=N)).run(show_progress=False)
    blob = load_ckpt(tmp_path / "B" / "last.pt")
    kind, key, *rest = blob["rng"]["numpy"]
    blob["rng"]["numpy"] = (kind, key.numpy().astype(np.uint32), *rest)  # the old layout
    torch.save(blob, tmp_path / "B" / "last.pt")
    assert "numpy.ndarray" in torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "B" / "last.pt")
    probe = Trainer(make_cfg(tiny_dataset, tmp_path / "B", tiny_model_cfg, steps=2 * N))
    np.random.seed(12345)
    probe.load_checkpoint(tmp_path / "B" / "last.pt")
    assert probe.step == N and np.array_equal(np.random.get_state()[1], key.numpy().astype(np.uint32))
    resumed = Trainer(make_cfg(tiny_dataset, tmp_path / "B", tiny_model_cfg, steps=2 * N, resume="auto"))
    assert resumed.run(show_progress=False)["step"] == 2 * N
    assert_same_training_state(load_ckpt(tmp_path / "A" / "last.pt"), load_ckpt(tmp_path / "B" / "last.pt"))


def test_resume_missing_checkpoint(tiny_dataset, tiny_model_cfg, tmp_path):
    trainer = Trainer(make_cfg(tiny_dataset, tmp_path / "run", tiny_model_cfg, resume=str(tmp_path / "nope.pt")))
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        trainer.run(show_progress=False)
    # 'auto' without a checkpoint starts from scratch.
    fresh = Trainer(make_cfg(tiny_dataset, tmp_path / "auto", tiny_model_cfg, steps=1, resume="auto"))
    assert fresh.run(show_progress=False)["step"] == 1


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad:UserWarning")
def test_non_finite_loss_stops_with_an_error(tiny_model_cfg, tmp_path):
    class NaNSampler:
        def __len__(self):
            return 1

        def batch(self, step, batch_size, seed=0):
            x = torch.full((batch_size, 1, 32, 32), float("nan"))
            return x, x

    trainer = Trainer(make_cfg("unused", tmp_path / "run", tiny_model_cfg), sampler=NaNSampler())
    with pytest.raises(FloatingPointError, match="at step 0"):
        trainer.run(show_progress=False)
    assert load_ckpt(tmp_path / "run" / "last.pt")["step"] == 0


def test_no_data_is_an_error(tiny_model_cfg, tmp_path):
    cfg = make_cfg("x", tmp_path, tiny_model_cfg)
    cfg["train"]["data"] = []
    with pytest.raises(ValueError, match="no training data"):
        Trainer(cfg)


def test_unknown_lr_schedule(tiny_dataset, tiny_model_cfg, tmp_path):
    with pytest.raises(ValueError, match="lr_schedule"):
        Trainer(make_cfg(tiny_dataset, tmp_path, tiny_model_cfg, lr_schedule="step"))


def test_two_steps_with_the_yolov5n_loss(tiny_dataset, tiny_model_cfg, yolov5n_weights, tmp_path):
    loss = {"feature_net": "yolov5n", "feature_weights": str(yolov5n_weights)}
    summary = Trainer(make_cfg(tiny_dataset, tmp_path / "run", tiny_model_cfg, loss=loss, steps=2)).run(
        show_progress=False
    )
    assert summary["step"] == 2
    rows = read_rows(tmp_path / "run" / "loss.csv")
    assert len(rows) == 2
    for row in rows:
        for term in ("total", "pixel", "shallow", "middle", "deep", "sobel"):
            assert float(row[term]) > 0, term


TINY_RT = {"code_channels": 2, "llrr_blocks": 1, "feature_channels": 4, "cfpm_stages": 1, "head_channels": 4}


def make_rt_cfg(data, out, **train):
    cfg = make_cfg(data, out, {}, loss={"feature_net": "none", "sobel_target": "strongest", "pixel_pool": 4},
                   architecture="lrcfuse-rt", **train)
    cfg["rt_model"].update(TINY_RT, scale=4)
    return cfg


def test_lrcfuse_rt_trains_and_resumes_exactly(tiny_dataset, tmp_path):
    from lrcfuse_model.nn.rt_model import LRCFuseRT

    Trainer(make_rt_cfg(tiny_dataset, tmp_path / "A", steps=2 * N)).run(show_progress=False)
    Trainer(make_rt_cfg(tiny_dataset, tmp_path / "B", steps=N)).run(show_progress=False)
    Trainer(make_rt_cfg(tiny_dataset, tmp_path / "B", steps=2 * N, resume="auto")).run(show_progress=False)
    a, b = load_ckpt(tmp_path / "A" / "last.pt"), load_ckpt(tmp_path / "B" / "last.pt")
    assert a["architecture"] == "lrcfuse-rt"
    assert_same_training_state(a, b)
    model = load_model(tmp_path / "A" / "weights.pt")
    assert isinstance(model, LRCFuseRT) and model.config.scale == 4


def test_resuming_another_architecture_is_refused(tiny_dataset, tiny_model_cfg, tmp_path):
    Trainer(make_cfg(tiny_dataset, tmp_path / "run", tiny_model_cfg, steps=1)).run(show_progress=False)
    with pytest.raises(ValueError, match="trains the architecture 'lrcfuse'.*asks for 'lrcfuse-rt'"):
        Trainer(make_rt_cfg(tiny_dataset, tmp_path / "run", steps=2, resume="auto")).run(show_progress=False)


def test_init_starts_from_given_weights(tiny_dataset, tmp_path):
    first = Trainer(make_rt_cfg(tiny_dataset, tmp_path / "A", steps=2))
    first.run(show_progress=False)
    start = load_model(tmp_path / "A" / "weights.pt")
    second = Trainer(make_rt_cfg(tiny_dataset, tmp_path / "B", steps=0, init=str(tmp_path / "A" / "weights.pt")))
    second.run(show_progress=False)
    for key, value in start.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    wrong = make_rt_cfg(tiny_dataset, tmp_path / "C", steps=1, init=str(tmp_path / "A" / "weights.pt"))
    wrong["rt_model"]["head_channels"] = 6
    with pytest.raises(ValueError, match="train.init"):
        Trainer(wrong).run(show_progress=False)
