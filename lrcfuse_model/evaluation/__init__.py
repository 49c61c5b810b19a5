"""Evaluating fusion methods on paired datasets (``lrcfuse eval``, in ``evaluate``): the ten metrics (``metrics``),
what is evaluated (``methods``), per-image scores (``scoring``), their summary and ranks (``summary``) and the
written tables and figures (``report``)."""
