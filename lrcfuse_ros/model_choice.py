"""Which network the fusion node runs: the ``model`` parameter (``auto | default | rt | <file>``) and ``weights``.

ROS-free and torch-free (unit-tested without either):

* ``weights`` not empty: that file runs, whatever ``model`` says. It is the parameter of earlier
  versions, kept working; the start-up log says that it took precedence.
* ``model: default`` / ``rt`` (the shipped LRCFuse and LRCFuse-RT) or a weights file: that one.
* ``model: auto``: LRCFuse-RT when inference runs on the CPU (ONNX Runtime or PyTorch on
  ``device: cpu``), where the default model takes seconds per 640x512 frame; the default model when it
  runs on CUDA or TensorRT. Where it runs is known before the backend is built, from ``backend`` and
  ``device`` (for ``backend: auto``, from the first backend ``auto`` tries: TensorRT runs on the GPU
  whatever ``device`` says). Should the backend that started run elsewhere (``auto`` passed over a
  TensorRT that failed to start), :func:`needs_rebuild` says so and the node builds it again with the
  model that fits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelChoice:
    """What the node runs: ``weights`` goes to ``create_backend``; ``label`` is the diagnostics value."""

    weights: str  # a shipped model's name ("default", "rt") or a file
    label: str
    auto: bool  # chosen by model: auto (so it depends on where inference runs)


def runs_on_gpu(backend: str, device: str) -> bool:
    """True when ``backend`` (a concrete name: torch, onnxruntime, openvino, tensorrt) runs the network on a GPU."""
    return backend == "tensorrt" or device.startswith("cuda")


def planned_on_gpu(backend: str, device: str, first_auto_backend: str) -> bool:
    """Where inference will run, before building the backend (``backend: auto`` starts with ``first_auto_backend``)."""
    return runs_on_gpu(first_auto_backend if backend == "auto" else backend, device)


def choose_model(model: str, weights: str, on_gpu: bool) -> ModelChoice:
    """The network to run for the ``model`` and ``weights`` parameters when inference runs on a GPU or not."""
    if weights:
        return ModelChoice(weights, weights, auto=False)
    if model == "auto":
        name = "default" if on_gpu else "rt"
        return ModelChoice(name, name, auto=True)
    return ModelChoice(model, model, auto=False)


def needs_rebuild(choice: ModelChoice, backend: str, device: str) -> bool:
    """True when ``model: auto`` chose for one place and the backend that started runs in the other."""
    return choice.auto and (choice.label == "default") != runs_on_gpu(backend, device)


def explain(choice: ModelChoice, model: str, backend: str, device: str) -> str:
    """The one start-up line: which network and why (``backend`` / ``device``: the backend that started)."""
    where = f"{device} with {backend}" if runs_on_gpu(backend, device) else f"the CPU with {backend}"
    if not choice.auto and choice.label != model:  # weights took precedence
        ignored = "" if model == "auto" else f"; model:={model} is not used"
        return f"model: weights:={choice.weights} (inference on {where}; a non-empty weights wins over model{ignored})"
    if not choice.auto:
        return f"model {choice.label} (inference on {where})"
    if choice.label == "rt":
        return (
            f"model auto: rt (inference on {where}; the default model takes seconds per 640x512 frame there, "
            "model:=default to run it anyway)"
        )
    return f"model auto: default (inference on {where}, fast enough for the full model; model:=rt for the RT one)"
