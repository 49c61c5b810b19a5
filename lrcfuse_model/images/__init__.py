"""Image files and arrays -> network inputs -> output image: the one preprocessing path (``preprocess``) and the
one pairing policy for image folders (``pairing``), used by the CLI, training, evaluation and the ROS node."""
