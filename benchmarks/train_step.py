"""Seconds per training step of the default model, and where a step's time goes.

    .venv/bin/python benchmarks/train_step.py --profile            # top ops of one step (torch.profiler)
    .venv/bin/python benchmarks/train_step.py --rounds 4           # variants, interleaved, median ratios

Each variant runs in its own worker process (the allocator settings are read by glibc only at
process start), and the workers run one after another in rounds with the order rotated each round,
so load drift on a shared machine hits every variant alike. A worker builds the trainer from the
config (``--config``, default ``lrcfuse_model/cfg/salient.yaml``: the default model's fine-tune),
takes one warm-up step, then times ``--steps`` steps of real training patches. Reported: the median
seconds per step of each variant and the median over rounds of its ratio to the first variant.

Variants: ``threads`` 1 or 2, ``train.channels_last`` (NHWC convolutions and batches; off in the
baseline), ``torch.compile`` of the model (its compile time is in the warm-up step, not timed), and
glibc's default allocator against the tuned settings that ``lrcfuse`` applies
(:mod:`lrcfuse_model.malloc_tuning`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = [str(REPO.parent / "shared/data/roadscene221"), str(REPO.parent / "shared/data/msrs_train")]
VARIANTS = {
    "2 threads, tuned malloc": {"threads": 2, "channels_last": False, "tuned": True},
    "1 thread, tuned malloc": {"threads": 1, "channels_last": False, "tuned": True},
    "2 threads, glibc default malloc": {"threads": 2, "channels_last": False, "tuned": False},
    "2 threads, tuned, channels_last": {"threads": 2, "channels_last": True, "tuned": True},
    "2 threads, tuned, torch.compile": {"threads": 2, "channels_last": False, "tuned": True, "compile": True},
}


def build_trainer(config: str, threads: int, out: str, channels_last: bool = False):
    from lrcfuse_model.config import resolve
    from lrcfuse_model.training.trainer import Trainer

    train = {"data": DATA, "threads": threads, "out": out, "channels_last": channels_last}
    return Trainer(resolve(config, {"train": train}))


def worker(config: str, threads: int, channels_last: bool, steps: int, compiled: bool = False) -> None:
    """Time ``steps`` training steps after one warm-up; print one JSON line."""
    import tempfile

    import torch

    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(config, threads, out, channels_last)
        if compiled:
            trainer.model = torch.compile(trainer.model)
        t0 = time.perf_counter()
        trainer.train_step()
        warmup = time.perf_counter() - t0
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            trainer.train_step()
            times.append(time.perf_counter() - t0)
    print(json.dumps({"s_per_step": statistics.median(times), "times": times, "warmup_s": warmup}))


def profile(config: str, threads: int) -> None:
    import tempfile

    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(config, threads, out)
        trainer.train_step()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.train_step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)
    print(table)
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6
    print(f"one step, {threads} thread(s), batch {trainer.cfg['train']['batch_size']}: {total:.2f} s of op time")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "lrcfuse_model/cfg/salient.yaml"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per worker (after one warm-up)")
    ap.add_argument("--profile", action="store_true", help="print the top ops of one step instead")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", help="comma-separated indices into the variant list (0 = the baseline), default all")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        v = json.loads(args.worker)
        worker(args.config, v["threads"], v["channels_last"], args.steps, v.get("compile", False))
        return 0
    if args.profile:
        profile(args.config, args.threads)
        return 0

    from lrcfuse_model.malloc_tuning import allocator_env

    names = list(VARIANTS)
    if args.variants:
        names = [names[int(i)] for i in args.variants.split(",")]
    per_variant: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            v = VARIANTS[name]
            cmd = [sys.executable, __file__, "--config", args.config, "--steps", str(args.steps)]
            cmd += ["--worker", json.dumps(v)]
            res = subprocess.run(cmd, env=allocator_env(v["tuned"]), capture_output=True, text=True, cwd=REPO)
            if res.returncode:
                print(res.stderr[-2000:], file=sys.stderr)
                return 1
            per_variant[name].append(json.loads(res.stdout.strip().splitlines()[-1])["s_per_step"])
            print(f"round {r + 1}: {name}: {per_variant[name][-1]:.2f} s/step", flush=True)
    base = names[0]
    print(f"\n{'variant':<36} {'s/step':>7} {'steps/s':>8} {'ratio to ' + base:>10}")
    for name in names:
        ratios = [b / x for b, x in zip(per_variant[base], per_variant[name], strict=True)]
        med = statistics.median(per_variant[name])
        print(f"{name:<36} {med:7.2f} {1 / med:8.3f} {statistics.median(ratios):10.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
