"""Time bounds written as arithmetic over config values.

A scenario writes a bound such as
``probe_period * 2 * (nodes - 1) + suspect_to_down_after + slack``. The
expression is parsed when the scenario loads, so an unknown name or a syntax
error is reported before any node starts. It is evaluated against the
config in force for the run, in seconds.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from conformance.config import PERIODIC_FIELDS
from conformance.errors import ScenarioError

# Names a bound may use. Durations are in seconds; `nodes` is the scenario's
# node count and `slack` the scenario's allowance for process scheduling.
VARIABLES = (
    "probe_period",
    "probe_rtt",
    "suspect_to_down_after",
    "remove_down_after",
    "num_indirect_probes",
    "max_transmissions",
    *PERIODIC_FIELDS,
    "nodes",
    "slack",
)

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "max": max,
    "min": min,
    "ceil": lambda x: float(math.ceil(x)),
    "log10": math.log10,
}


@dataclass(frozen=True)
class Bound:
    """A parsed bound expression; ``name`` is the scenario's label for it, if any."""

    expression: str
    name: str | None = None

    @classmethod
    def parse(cls, expression: str, name: str | None = None) -> Bound:
        """Parse and validate ``expression``, raising ScenarioError if it is invalid."""
        try:
            tree = ast.parse(expression, mode="eval")
        except SyntaxError as error:
            raise ScenarioError(f"invalid bound {expression!r}: {error.msg}") from None
        _check(tree.body, expression)
        return cls(expression=expression, name=name)

    def seconds(self, variables: Mapping[str, float]) -> float:
        """Evaluate the bound in seconds; raise ScenarioError if it is not positive."""
        try:
            value = _evaluate(ast.parse(self.expression, mode="eval").body, variables)
        except ZeroDivisionError:
            raise ScenarioError(f"bound {self.expression!r} divides by zero") from None
        if not value > 0:
            raise ScenarioError(
                f"bound {self.expression!r} evaluates to {value}, not > 0"
            )
        return value

    def __str__(self) -> str:
        return self.name or self.expression


def _check(node: ast.expr, expression: str) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ScenarioError(
                f"invalid bound {expression!r}: only numbers are allowed"
            )
    elif isinstance(node, ast.Name):
        if node.id not in VARIABLES:
            raise ScenarioError(
                f"invalid bound {expression!r}: unknown name {node.id!r}; "
                f"valid names: {', '.join(VARIABLES)}"
            )
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, expression)
        _check(node.right, expression)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        _check(node.operand, expression)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
        and node.args
    ):
        for argument in node.args:
            _check(argument, expression)
    else:
        raise ScenarioError(
            f"invalid bound {expression!r}: only numbers, names, + - * /, parentheses "
            f"and {', '.join(_FUNCTIONS)} are allowed"
        )


def _evaluate(node: ast.expr, variables: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        value = node.value
        assert isinstance(value, int | float), "checked by _check"
        return float(value)
    if isinstance(node, ast.Name):
        return float(variables[node.id])
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](
            _evaluate(node.left, variables), _evaluate(node.right, variables)
        )
    if isinstance(node, ast.UnaryOp):
        return -_evaluate(node.operand, variables)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return float(
            _FUNCTIONS[node.func.id](*(_evaluate(a, variables) for a in node.args))
        )
    raise AssertionError(f"unchecked node {ast.dump(node)}")
