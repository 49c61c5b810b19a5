"""Evaluating fusion methods on paired datasets: the ten metrics (``metrics``) and ``lrcfuse eval`` (``evaluate``)."""
