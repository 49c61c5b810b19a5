"""Object detection on fused images: detectors behind one interface (``detectors``, with the letterbox and NMS
geometry in ``boxes`` and ``drawing``), and the mAP experiment ``lrcfuse detect-eval`` (``detect_eval``: labelled
datasets in ``labels``, the inputs in ``inputs``, COCO scoring in ``coco``, the written tables and figures in
``report``, the retrain-per-input datasets in ``yolo_export``)."""
