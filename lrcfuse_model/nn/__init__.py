"""The network and what trains it: LRCFuse (``model``), the fusion loss (``loss``) with its frozen feature
networks (``feature_nets``, built with the YOLOv5 builder ``yolov5``), and weights files (``checkpoint``)."""
