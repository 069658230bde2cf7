"""A case's timeline as inline SVG: one lane per connection over time (x = ``t_ms``), the
frames as ticks coloured by opcode (the server's in the lane's upper half, the client's in
its lower half), faults as red triangles, the client's reactions as blue dots, closes as a
bar with the close code. No script: each mark's ``<title>`` is its tooltip. Every string
is escaped; numbers have one decimal, so the same timeline gives the same bytes.
"""

from __future__ import annotations

import math
from html import escape

from replayer.conform.reports.schema import Connection, Frame, Mark, Timeline
from replayer.conform.reports.text import xml_safe
from replayer.gateway.close_codes import close_code_name
from replayer.gateway.opcodes import opcode_name

WIDTH = 1000
LEFT = 150  # the lane labels
RIGHT = 24
AXIS_H = 26
LANE_H = 44
LANE_GAP = 10
BOTTOM = 8
CHAR_W = 6.2  # about how wide a character of the 11 px labels is

# One colour per opcode the gateway uses (Topics > Opcodes and Status Codes > Gateway
# Opcodes); any other opcode is black.
OPCODE_COLOURS: dict[int, str] = {
    0: "#78909c",  # DISPATCH
    1: "#d81b60",  # HEARTBEAT
    2: "#3949ab",  # IDENTIFY
    3: "#00897b",  # PRESENCE_UPDATE
    4: "#6d4c41",  # VOICE_STATE_UPDATE
    6: "#fb8c00",  # RESUME
    7: "#e53935",  # RECONNECT
    8: "#7cb342",  # REQUEST_GUILD_MEMBERS
    9: "#8e24aa",  # INVALID_SESSION
    10: "#00acc1",  # HELLO
    11: "#c0ca33",  # HEARTBEAT_ACK
}
OTHER_COLOUR = "#000000"
FAULT_COLOUR = "#c62828"
REACTION_COLOUR = "#1565c0"
CLOSE_COLOUR = "#263238"


def opcode_colour(op: int | None) -> str:
    return OTHER_COLOUR if op is None else OPCODE_COLOURS.get(op, OTHER_COLOUR)


def _e(text: object) -> str:
    """``text`` as HTML text or attribute value: escaped, control characters shown as
    ``\\xNN`` (a client's log has ANSI colours; HTML holds no NUL)."""
    return escape(xml_safe(str(text)), quote=True)


def _n(value: float) -> str:
    """A coordinate: one decimal, no ``-0.0``."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def format_ms(t_ms: float) -> str:
    """``812.4 ms`` below a second, ``2.35 s`` from there."""
    if abs(t_ms) < 1000:
        return f"{t_ms:.1f} ms"
    return f"{t_ms / 1000:.2f} s"


class _Scale:
    def __init__(self, timeline: Timeline) -> None:
        times = [timeline.duration_ms, 0.0]
        for conn in timeline.connections:
            times.append(conn.opened_ms)
            if conn.closed_ms is not None:
                times.append(conn.closed_ms)
            times.extend(f.t_ms for f in conn.frames)
        times.extend(m.t_ms for m in (*timeline.faults, *timeline.reactions))
        self.t0 = min(times)
        self.t1 = max(times)
        if self.t1 - self.t0 < 1.0:
            self.t1 = self.t0 + 1.0
        self.px_per_ms = (WIDTH - LEFT - RIGHT) / (self.t1 - self.t0)

    def x(self, t_ms: float) -> float:
        return LEFT + (t_ms - self.t0) * self.px_per_ms

    def ticks(self) -> list[float]:
        """Round times for the axis, about eight of them."""
        span = self.t1 - self.t0
        raw = span / 8
        power = 10 ** math.floor(math.log10(raw))
        step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
        first = math.ceil(self.t0 / step) * step
        count = int((self.t1 - first) // step) + 1
        return [first + i * step for i in range(count)]


def _axis_label(t_ms: float) -> str:
    """``0``, ``500 ms``, ``1.5 s``: round axis times, without trailing zeros."""
    if t_ms == 0:
        return "0"
    if abs(t_ms) < 1000:
        return f"{round(t_ms, 3):g} ms"
    return f"{round(t_ms / 1000, 3):g} s"


def lane_top(index: int) -> float:
    return AXIS_H + index * (LANE_H + LANE_GAP)


def timeline_svg(timeline: Timeline) -> str:
    """The ``<svg>`` element (no XML declaration: it goes inline into the case page)."""
    scale = _Scale(timeline)
    lanes = timeline.connections
    height = lane_top(len(lanes)) + BOTTOM
    lane_of = {conn.id: i for i, conn in enumerate(lanes)}
    out = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {_n(height)}" width="100%" role="img" '
        f'aria-label="timeline: {len(lanes)} connection(s) over {_e(format_ms(scale.t1))}">'
    ]
    out.extend(_axis(scale, height))
    for i, conn in enumerate(lanes):
        out.extend(_lane(scale, i, conn, timeline.duration_ms))
    for fault in timeline.faults:
        out.append(_fault(scale, fault, lane_of, len(lanes)))
    # A reaction's label is left out (its dot and tooltip stay) where it would run into
    # the label before it in the same lane: the case page lists them all under the drawing.
    label_end: dict[int | None, float] = {}
    for reaction in sorted(timeline.reactions, key=lambda m: m.t_ms):
        lane = reaction.conn if reaction.conn in lane_of else None
        drawn, end = _reaction(scale, reaction, lane_of, len(lanes), label_end.get(lane))
        if end is not None:
            label_end[lane] = end
        out.append(drawn)
    out.append("</svg>")
    return "\n".join(out)


def _axis(scale: _Scale, height: float) -> list[str]:
    parts = ['<g class="axis">']
    for t in scale.ticks():
        x = _n(scale.x(t))
        parts.append(
            f'<line x1="{x}" y1="{AXIS_H - 6}" x2="{x}" y2="{_n(height - BOTTOM)}" '
            f'stroke="#e0e0e0" stroke-width="1"/>'
            f'<text x="{x}" y="{AXIS_H - 10}" text-anchor="middle">{_e(_axis_label(t))}</text>'
        )
    parts.append("</g>")
    return parts


def _lane(scale: _Scale, index: int, conn: Connection, duration_ms: float) -> list[str]:
    top = lane_top(index)
    end_ms = conn.closed_ms if conn.closed_ms is not None else max(duration_ms, conn.opened_ms)
    x0, x1 = scale.x(conn.opened_ms), scale.x(end_ms)
    mid = top + LANE_H / 2
    parts = [
        f'<g class="lane" data-conn="{conn.id}" data-kind="{_e(conn.kind)}">',
        f'<text class="lane-label" x="6" y="{_n(mid + 4)}">conn {conn.id} · {_e(conn.kind)}</text>',
        f'<rect x="{_n(x0)}" y="{_n(top)}" width="{_n(max(x1 - x0, 1.0))}" '
        f'height="{LANE_H}" fill="#f1f5f8" stroke="#b0bec5"/>',
        f'<line x1="{_n(x0)}" y1="{_n(mid)}" x2="{_n(x1)}" y2="{_n(mid)}" '
        f'stroke="#cfd8dc" stroke-dasharray="2 3"/>',
    ]
    parts.extend(_frame_ticks(scale, top, conn.frames))
    if conn.closed_ms is not None or conn.close is not None:
        parts.append(_close(scale, top, conn, end_ms))
    parts.append("</g>")
    return parts


def _frame_ticks(scale: _Scale, top: float, frames: tuple[Frame, ...]) -> list[str]:
    """A tick per frame, but one per pixel column, direction and opcode: the frames that
    would be drawn on top of each other are one tick whose tooltip counts them (a lane
    holds at most a few thousand ticks, however many frames the case had)."""
    buckets: dict[tuple[int, str, int | None], list[Frame]] = {}
    for frame in frames:
        key = (math.floor(scale.x(frame.t_ms)), frame.dir, frame.op)
        buckets.setdefault(key, []).append(frame)
    return [_tick(scale, top, group) for group in buckets.values()]


def _tick(scale: _Scale, top: float, frames: list[Frame]) -> str:
    first = frames[0]
    x = _n(scale.x(first.t_ms))
    if first.dir == "server":
        y1, y2 = top + 3, top + LANE_H / 2 - 2
    else:
        y1, y2 = top + LANE_H / 2 + 2, top + LANE_H - 3
    what = f"op {first.op} {opcode_name(first.op)}" if first.op is not None else "no opcode"
    if len(frames) == 1:
        tip = f"{format_ms(first.t_ms)} · {first.dir} · {what}" + (f" {first.t}" if first.t else "")
    else:
        names = sorted({f.t for f in frames if f.t})
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        tip = (
            f"{format_ms(first.t_ms)} to {format_ms(frames[-1].t_ms)} · {first.dir} · "
            f"{len(frames)} frames, {what}" + (f" ({shown})" if shown else "")
        )
    return (
        f'<line class="frame" data-op="{"" if first.op is None else first.op}" '
        f'data-frames="{len(frames)}" x1="{x}" y1="{_n(y1)}" x2="{x}" y2="{_n(y2)}" '
        f'stroke="{opcode_colour(first.op)}" stroke-width="2"><title>{_e(tip)}</title></line>'
    )


def _close(scale: _Scale, top: float, conn: Connection, end_ms: float) -> str:
    x = scale.x(end_ms)
    close = conn.close
    if close is None:
        label = "closed"
        tip = f"{format_ms(end_ms)} · closed (no close frame recorded)"
        code = ""
    else:
        code = "" if close.code is None else str(close.code)
        label = (code or "no close code") + (f" by {close.by}" if close.by else "")
        tip = f"{format_ms(end_ms)} · close {code or '(no code)'} {close_code_name(close.code)}"
        if close.by:
            tip += f" by the {close.by}"
        if close.reason:
            tip += f": {close.reason}"
    # The label sits right of the bar, or left of it near the right edge.
    right = x < WIDTH - RIGHT - 110
    tx, anchor = (x + 4, "start") if right else (x - 4, "end")
    return (
        f'<g class="close" data-code="{_e(code)}"><title>{_e(tip)}</title>'
        f'<line x1="{_n(x)}" y1="{_n(top - 2)}" x2="{_n(x)}" y2="{_n(top + LANE_H + 2)}" '
        f'stroke="{CLOSE_COLOUR}" stroke-width="3"/>'
        f'<text class="close-label" x="{_n(tx)}" y="{_n(top + 12)}" '
        f'text-anchor="{anchor}">{_e(label)}</text></g>'
    )


def _mark_span(mark: Mark, lane_of: dict[int, int], n_lanes: int) -> tuple[float, float]:
    """The top and bottom of the lanes a mark concerns: its connection's, else all."""
    if mark.conn in lane_of:
        top = lane_top(lane_of[mark.conn])
        return top, top + LANE_H
    return AXIS_H, lane_top(max(n_lanes, 1)) - LANE_GAP


def _fault(scale: _Scale, fault: Mark, lane_of: dict[int, int], n_lanes: int) -> str:
    x = scale.x(fault.t_ms)
    top, bottom = _mark_span(fault, lane_of, n_lanes)
    on = f" on conn {fault.conn}" if fault.conn is not None else ""
    tip = f"{format_ms(fault.t_ms)} · fault{on}: {fault.what}"
    return (
        f'<g class="fault"><title>{_e(tip)}</title>'
        f'<line x1="{_n(x)}" y1="{_n(top)}" x2="{_n(x)}" y2="{_n(bottom)}" '
        f'stroke="{FAULT_COLOUR}" stroke-width="1.5" stroke-dasharray="4 2"/>'
        f'<path d="M{_n(x - 6)} {_n(top - 7)} L{_n(x + 6)} {_n(top - 7)} L{_n(x)} {_n(top + 3)} Z" '
        f'fill="{FAULT_COLOUR}"/></g>'
    )


def _reaction(
    scale: _Scale,
    reaction: Mark,
    lane_of: dict[int, int],
    n_lanes: int,
    free_from: float | None,
) -> tuple[str, float | None]:
    """The reaction's dot, and its label unless it would start before ``free_from``; with
    where the label ends (None: no label)."""
    x = scale.x(reaction.t_ms)
    _top, bottom = _mark_span(reaction, lane_of, n_lanes)
    on = f" on conn {reaction.conn}" if reaction.conn is not None else ""
    tip = f"{format_ms(reaction.t_ms)} · the client{on}: {reaction.what}"
    label = _short(reaction.what)
    width = CHAR_W * len(label)
    # Right of the dot, or left of it near the right edge.
    x0 = x + 7 if x + 7 + width <= WIDTH - 2 else x - 7 - width
    text, end = "", None
    if free_from is None or x0 >= free_from:
        text = (
            f'<text x="{_n(x0)}" y="{_n(bottom - 1)}" fill="{REACTION_COLOUR}">{_e(label)}</text>'
        )
        end = x0 + width + 4
    return (
        f'<g class="reaction"><title>{_e(tip)}</title>'
        f'<circle cx="{_n(x)}" cy="{_n(bottom - 5)}" r="5" fill="{REACTION_COLOUR}" '
        f'stroke="#fff" stroke-width="1"/>{text}</g>'
    ), end


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def legend_opcodes(timeline: Timeline) -> list[tuple[int | None, str, str]]:
    """The opcodes of the timeline's frames: (op, name, colour), in opcode order."""
    ops = {f.op for conn in timeline.connections for f in conn.frames}
    ordered = sorted(ops, key=lambda op: (op is None, op or 0))
    return [(op, opcode_name(op), opcode_colour(op)) for op in ordered]
