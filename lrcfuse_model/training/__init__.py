"""Training LRCFuse: patch batches from paired folders (``data``) and the resumable training loop (``trainer``)."""
