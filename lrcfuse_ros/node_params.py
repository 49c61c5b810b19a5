"""Declaring the parameter table (:data:`lrcfuse_ros.params.PARAMETERS`) on a node: read-only, described.

The node reads its parameters once at start-up, so each is declared read-only: ``ros2 param set`` is
refused by rclpy itself ("read-only parameter") instead of being accepted and ignored, while the
parameters rclpy declares on every node (``use_sim_time``) stay settable. Each descriptor carries the
table's description and, in ``additional_constraints``, the values it accepts (``ros2 param describe``).
"""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node
from rclpy.parameter import Parameter

from .params import PARAMETERS, ParameterError, constraints

_EMPTY_LIST_TYPES = {"string": Parameter.Type.STRING_ARRAY, "double": Parameter.Type.DOUBLE_ARRAY}


def declare_parameters(node: Node) -> dict[str, Any]:
    """Declare every table parameter on ``node`` (read-only) and return ``name -> value``.

    A value of the wrong type (``slop:=1`` for a double) is a :class:`ParameterError` naming the parameter.
    """
    values: dict[str, Any] = {}
    for name, spec in PARAMETERS.items():
        descriptor = ParameterDescriptor(
            description=spec.description, additional_constraints=constraints(name), read_only=True
        )
        try:
            if isinstance(spec.default, list) and not spec.default:
                # An empty list has no element type (and a parameter file cannot hold one): declare the
                # type; an unset or empty value reads as the empty default.
                node.declare_parameter(name, _EMPTY_LIST_TYPES[spec.element_type], descriptor)
                values[name] = list(node.get_parameter_or(name, Parameter(name, value=[])).value or [])
            else:
                node.declare_parameter(name, spec.default, descriptor)
                values[name] = node.get_parameter(name).value
        except InvalidParameterTypeException as exc:
            expected = type(spec.default).__name__
            raise ParameterError(
                f"parameter {name}: expected a {expected} like {spec.default!r} (write floats as 1.0, not 1): {exc}"
            ) from exc
    return values
