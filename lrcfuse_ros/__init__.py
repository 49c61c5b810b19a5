"""ROS 2 side of lrcfuse (the fusion node arrives with its own issue)."""
