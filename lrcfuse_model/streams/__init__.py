"""Camera streams without ROS: ``sensor_msgs/Image`` <-> numpy (``image_msg``), approximate-time pairing of the
thermal and RGB streams (``stamp_sync``) and ``lrcfuse fuse-bag`` over recorded bags (``bag``)."""
