"""Running a trained LRCFuse: the ``Fuser`` (``fuser``), backends behind one interface (``backends``: PyTorch,
ONNX Runtime, TensorRT; ``runtimes`` probes their libraries and devices), ONNX / TensorRT export (``export``), the
parity check of ``lrcfuse export`` (``export_check``) and ``lrcfuse bench`` (``bench``)."""
