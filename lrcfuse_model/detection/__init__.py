"""Object detection on fused images: detectors behind one interface (``detectors``) and the mAP experiment
``lrcfuse detect-eval`` (``detect_eval``)."""
