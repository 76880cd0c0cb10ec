"""Which products a plan can build, decided at plan time, before any coloring is chosen.

A mode is buildable when every node between ``wrt`` and the expression has a route for its
products: forward mode (JVPs) needs a forward rule, the Op's own ``pushforward`` or a
differentiable pullback (see :mod:`sparsediff.compression.forward_rules`); reverse mode
(VJPs) needs a pullback; bidirectional mode needs both. ``mode="auto"`` chooses only among
buildable modes and says in the plan's ``repr`` why a mode was excluded; a mode the user asks
for that cannot be built raises :class:`ModeNotBuildable`, naming the Op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytensor.graph.basic import Variable
from pytensor.graph.op import Op

from sparsediff.compression import forward_rules

__all__ = ["Buildability", "ModeNotBuildable", "probe"]


class ModeNotBuildable(NotImplementedError):
    """A requested mode needs a product (JVP or VJP) that some Op of the graph cannot give."""


@dataclass(frozen=True)
class Buildability:
    """The first Op that stops each direction, with the reason (``None``: it builds)."""

    forward: tuple[Op, str] | None
    reverse: tuple[Op, str] | None

    def allows(self, mode: str) -> bool:
        if mode == "forward":
            return self.forward is None
        if mode == "reverse":
            return self.reverse is None
        if mode == "bidirectional":
            return self.forward is None and self.reverse is None
        return True

    def why_not(self, mode: str) -> str | None:
        """Why ``mode`` cannot be built, in one phrase, or ``None``."""
        parts = []
        if mode in ("forward", "bidirectional") and self.forward is not None:
            op, reason = self.forward
            parts.append(f"no JVP through {op}: {reason}")
        if mode in ("reverse", "bidirectional") and self.reverse is not None:
            op, reason = self.reverse
            parts.append(f"no VJP through {op}: {reason}")
        return "; ".join(parts) or None

    def excluded(self) -> dict[str, str]:
        """Every mode that cannot be built, with the reason."""
        out = {}
        for mode in ("forward", "reverse", "bidirectional"):
            reason = self.why_not(mode)
            if reason is not None:
                out[mode] = reason
        return out

    def require(self, mode: str) -> None:
        """Raise :class:`ModeNotBuildable` if ``mode`` cannot be built."""
        reason = self.why_not(mode)
        if reason is None:
            return
        alternatives = [
            m for m in ("forward", "reverse", "bidirectional") if m != mode and self.allows(m)
        ]
        hint = f"; use mode={alternatives[0]!r}" if alternatives else ""
        raise ModeNotBuildable(f"mode={mode!r} cannot be built for this graph ({reason}){hint}")


def probe(
    expression: Variable,
    wrt: Sequence[Variable],
    directions: Sequence[str] = ("forward", "reverse"),
) -> Buildability:
    """Check, node by node and without building the compressed graph, which directions build.

    A direction not in ``directions`` is assumed buildable (not probed).
    """
    fwd = rev = None
    if "forward" in directions:
        fwd = forward_rules.forward_obstacle([expression], list(wrt))
    if "reverse" in directions:
        rev = forward_rules.reverse_obstacle([expression], list(wrt))
    return Buildability(forward=fwd, reverse=rev)
