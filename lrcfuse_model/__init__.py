"""lrcfuse_model: LRCFuse infrared + visible image fusion in PyTorch (no ROS imports).

>>> import lrcfuse_model
>>> model = lrcfuse_model.LRCFuse()              # default configuration, ~0.18 M parameters
>>> model = lrcfuse_model.load_pretrained()      # the shipped weights, eval mode
>>> fused = lrcfuse_model.fuse(ir_array, vi_array)  # numpy in, uint8 numpy out
>>> fuser = lrcfuse_model.Fuser(backend=lrcfuse_model.create_backend("auto"))  # ONNX Runtime / TensorRT
"""

__version__ = "0.1.0"

from .backends import BACKEND_NAMES, Backend, create_backend  # noqa: E402
from .fusion import Fuser, fuse, load_model, load_pretrained, save_weights  # noqa: E402
from .model import LRCFuse, LRCFuseConfig, count_parameters  # noqa: E402

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "create_backend",
    "LRCFuse",
    "LRCFuseConfig",
    "Fuser",
    "count_parameters",
    "fuse",
    "load_model",
    "load_pretrained",
    "save_weights",
    "__version__",
]
