"""ROS 2 side of lrcfuse: the thermal + RGB fusion node and its helpers.

Modules: ``fusion_node`` (the node, console script ``fusion_node``), ``sample_publisher`` and
``fused_recorder`` (a stand-in camera rig and an output recorder), ``params`` (the parameter table),
``node_params`` (declaring it, read-only), ``qos``, ``diagnostics`` and ``diagnostics_publisher``
(/diagnostics), ``shutdown`` (signals), ``detection_output``, ``stats``, ``latest_slot``, ``throttle``, ``ros_env``.
Importing this package does not import rclpy (the ROS-free modules are usable without ROS).
"""
