"""Training LRCFuse: patch batches from paired folders (``data``), the resumable training loop (``trainer``) and
its loss log and curves (``loss_log``)."""
