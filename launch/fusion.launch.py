"""Launch the LRCFuse thermal + RGB fusion node.

    ros2 launch lrcfuse_ros fusion.launch.py
    ros2 launch lrcfuse_ros fusion.launch.py namespace:=front thermal_topic:=/flir/image_raw \
        rgb_topic:=/camera/color/image_raw backend:=onnxruntime detector:=true \
        detector_weights:=/path/yolov5n_coco_state_dict.pt
    ros2 launch lrcfuse_ros fusion.launch.py model:=default device:=cuda

Parameters come from ``params_file`` (default: the installed config/fusion.yaml); the launch
arguments mapped to node parameters below override it only when given a non-empty value, so an
edited params file is not silently overridden by launch defaults. The node runs with the glibc
allocator settings that make CPU inference ~3x faster (``fast_malloc``) and with the Fast DDS
profile whose shared-memory segment holds full camera frames (``fastdds_profile``; a
FASTDDS_DEFAULT_PROFILES_FILE already set in the environment is kept unless ``fastdds_profile`` is given).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch_ros.actions import Node

from lrcfuse_model.malloc_tuning import FAST_MALLOC_ENV, NO_MALLOC_TUNING_ENV  # torch-free

PACKAGE = "lrcfuse_ros"

# launch argument -> node parameter it sets (when not empty)
LAUNCH_ARG_TO_PARAMETER = {
    "model": "model",
    "backend": "backend",
    "weights": "weights",
    "device": "device",
    "reliability": "reliability",
    "min_interval": "min_interval",
    "detector": "detector.enabled",
    "detector_weights": "detector.weights",
}
BOOLEAN_ARGS = {"detector"}
FLOAT_ARGS = {"min_interval"}  # typed ROS parameters: "0" must still reach the node as a double

# launch argument -> node topic it remaps
LAUNCH_ARG_TO_TOPIC = {
    "thermal_topic": "thermal/image_raw",
    "rgb_topic": "rgb/image_raw",
    "fused_topic": "fused/image",
    "diagnostics_topic": "/diagnostics",
}


def _fastdds_profile(given, environment):
    """The Fast DDS profile for the node: ``given``, else the user's own, else the shipped one.

    A FASTDDS_DEFAULT_PROFILES_FILE already in the environment is the user's choice for every process of
    the robot (transports, interfaces, discovery server): it is kept unless ``fastdds_profile`` is given.
    Returns '' when nothing needs setting.
    """
    if given:
        return given
    if environment.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        return ""
    return os.path.join(get_package_share_directory(PACKAGE), "config", "fastdds_large_shm.xml")


def _checked_params_file(path):
    """``path`` if it is a file; otherwise a clear error (launch prints it and exits 1) instead of a node
    silently running on its built-in defaults."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"params_file: {path!r} does not exist or is not a file; give a ROS parameter YAML file "
            "(see the installed config/fusion.yaml), or params_file:='' for the node's built-in defaults"
        )
    return path


def _node(context):
    value = context.launch_configurations
    overrides = {}
    for arg, parameter in LAUNCH_ARG_TO_PARAMETER.items():
        if value[arg] == "":
            continue
        if arg in BOOLEAN_ARGS:
            overrides[parameter] = value[arg].lower() in ("true", "1", "yes")
        elif arg in FLOAT_ARGS:
            overrides[parameter] = float(value[arg])
        else:
            overrides[parameter] = value[arg]
    parameters = [_checked_params_file(value["params_file"])] if value["params_file"] else []
    if overrides:
        parameters.append(overrides)
    env = {}
    profile = _fastdds_profile(value["fastdds_profile"], context.environment)
    if profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = profile
    if value["fast_malloc"].lower() in ("true", "1", "yes"):
        env.update(FAST_MALLOC_ENV)
    env[NO_MALLOC_TUNING_ENV] = "1"  # the environment is set here: the node need not restart itself
    remaps = [(topic, value[arg]) for arg, topic in LAUNCH_ARG_TO_TOPIC.items() if value[arg] and value[arg] != topic]
    return [
        Node(
            package=PACKAGE,
            executable="fusion_node",
            name=value["node_name"],
            namespace=value["namespace"],
            parameters=parameters,
            remappings=remaps,
            additional_env=env,
            arguments=["--ros-args", "--log-level", value["log_level"]],
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "fusion.yaml"),
                description="node parameter file (YAML); '' = the node's built-in defaults",
            ),
            DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
            DeclareLaunchArgument("node_name", default_value="lrcfuse_fusion", description="name of the fusion node"),
            DeclareLaunchArgument(
                "thermal_topic",
                default_value="thermal/image_raw",
                description="thermal image topic (remaps thermal/image_raw)",
            ),
            DeclareLaunchArgument(
                "rgb_topic", default_value="rgb/image_raw", description="RGB image topic (remaps rgb/image_raw)"
            ),
            DeclareLaunchArgument(
                "fused_topic", default_value="fused/image", description="fused image topic (remaps fused/image)"
            ),
            DeclareLaunchArgument(
                "diagnostics_topic",
                default_value="/diagnostics",
                description="DiagnosticArray topic (remaps /diagnostics, where diagnostic aggregators listen)",
            ),
            DeclareLaunchArgument(
                "model",
                default_value="",
                description="auto | default | rt | a weights file (auto: rt when inference runs on the CPU, "
                "default on CUDA / TensorRT); '' = the params_file value",
            ),
            DeclareLaunchArgument(
                "backend",
                default_value="",
                description="inference backend: auto | torch | onnxruntime | openvino | tensorrt; '' = the params_file value",
            ),
            DeclareLaunchArgument(
                "weights",
                default_value="",
                description="weights (.pt, .onnx or TensorRT engine) run instead of model; '' = the params_file value",
            ),
            DeclareLaunchArgument(
                "device", default_value="", description="cpu | cuda | cuda:N; '' = the params_file value"
            ),
            DeclareLaunchArgument(
                "reliability",
                default_value="",
                description="input QoS reliability: auto | best_effort | reliable; '' = the params_file value",
            ),
            DeclareLaunchArgument(
                "min_interval",
                default_value="",
                description="seconds: smallest stamp gap between two frames of one camera (1/rate - jitter of the "
                "faster camera; a pair goes out as soon as no later frame could pair better); 0 = wait for the next "
                "frame; '' = the params_file value",
            ),
            DeclareLaunchArgument(
                "detector",
                default_value="",
                description="detector on the fused image on/off: true | false; '' = the params_file value",
            ),
            DeclareLaunchArgument(
                "detector_weights",
                default_value="",
                description="detector weights (plain-tensor YOLOv5 .pt, or what ultralytics loads); '' = params_file",
            ),
            DeclareLaunchArgument(
                "fastdds_profile",
                default_value="",
                description="Fast DDS XML profile of the node; '' = the environment's FASTDDS_DEFAULT_PROFILES_FILE "
                "when set, else the shipped config/fastdds_large_shm.xml (large shared-memory segment for images)",
            ),
            DeclareLaunchArgument(
                "fast_malloc",
                default_value="true",
                description="run the node with the glibc allocator settings that make CPU inference ~3x faster",
            ),
            DeclareLaunchArgument(
                "log_level", default_value="info", description="node log level: debug | info | warn | error"
            ),
            OpaqueFunction(function=_node),
        ]
    )
