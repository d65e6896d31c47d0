"""Membership timelines drawn as PNG images, with only the standard library.

The picture has one horizontal strip per observer node, stacked top to
bottom in the order of the ``series`` mapping, and all strips share one time
axis from 0 to the run's duration in seconds. Each pixel column of a strip is
a stacked bar of the members that the observer saw at that time. Alive
members are green at the bottom, suspect members amber above them and down
members red on top. The full strip height is ``total`` members. A column
where the observer gave no data (not started yet, paused or killed) is
hatched grey.

A pixel column spans ``duration / plot_width`` seconds, so several samples
can fall into one column. The column then shows the state with the max
number of suspect plus down members, so a suspicion shorter than a column
stays visible.

Thin vertical lines mark scenario events such as ``kill n1`` across all
strips, with the label at the top. The title is at the top, and the time axis
and a colour legend are at the bottom. Text uses a 5x7 bitmap font (plus one
row for descenders) defined in this module, so the image needs no font files,
matplotlib or Pillow. The PNG is 8-bit RGB, filter type 0 on every row,
compressed with zlib level 6.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Color = tuple[int, int, int]
Counts = tuple[int, int, int]
Sample = tuple[float, Counts | None]

WIDTH = 1000

BACKGROUND: Color = (255, 255, 255)
STRIP_BACKGROUND: Color = (250, 250, 250)
ALIVE: Color = (60, 170, 80)
SUSPECT: Color = (245, 170, 30)
DOWN: Color = (215, 50, 45)
NO_DATA: Color = (208, 208, 208)
NO_DATA_HATCH: Color = (168, 168, 168)
MARKER: Color = (70, 60, 200)
FRAME: Color = (150, 150, 150)
TEXT: Color = (30, 30, 30)

# Sizes in pixels.
GLYPH_WIDTH = 5
GLYPH_HEIGHT = 8  # 7 rows above the baseline and 1 descender row
CHAR_ADVANCE = GLYPH_WIDTH + 1
TITLE_SCALE = 2
PLOT_LEFT = 44  # the node names go in the margin to the left of this column
PLOT_RIGHT = WIDTH - 12
STRIP_HEIGHT = 64
STRIP_GAP = 8
MARKER_ROW_HEIGHT = GLYPH_HEIGHT + 2
MAX_MARKER_ROWS = 3
MAX_MARKER_LABEL_CHARS = 24
TICK_LENGTH = 4
LEGEND_BOX = 9

MAX_TICKS = 12

# Class codes of a strip pixel, turned into colours through the tables below.
_ALIVE, _SUSPECT, _DOWN, _EMPTY, _NO_DATA, _HATCH = range(6)
_CLASS_COLORS = (ALIVE, SUSPECT, DOWN, STRIP_BACKGROUND, NO_DATA, NO_DATA_HATCH)
HATCH_PERIOD = 6  # one dark pixel on each diagonal every this many pixels

# Glyphs for printable ASCII 32..126. Each glyph is 7 or 8 rows of 5 pixels
# separated by spaces, where "#" is ink. Rows 0..6 reach from the cap height
# to the baseline, and the optional row 7 is the descender.
_FONT_ROWS: dict[str, str] = {
    " ": "..... ..... ..... ..... ..... ..... .....",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    '"': ".#.#. .#.#. ..... ..... ..... ..... .....",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "$": "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
    "'": "..#.. ..#.. ..... ..... ..... ..... .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    ",": "..... ..... ..... ..... ..... ..##. ..#.. .#...",
    "-": "..... ..... ..... ##### ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    "/": "....# ....# ...#. ..#.. .#... #.... #....",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    ";": "..... ..##. ..##. ..... ..##. ..#.. .#...",
    "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    "=": "..... ..... ##### ..... ##### ..... .....",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    "@": ".###. #...# #.### #.#.# #.### #.... .####",
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "[": ".###. .#... .#... .#... .#... .#... .###.",
    "\\": "#.... #.... .#... ..#.. ...#. ....# ....#",
    "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
    "^": "..#.. .#.#. #...# ..... ..... ..... .....",
    "_": "..... ..... ..... ..... ..... ..... ..... #####",
    "`": ".#... ..#.. ..... ..... ..... ..... .....",
    "a": "..... ..... .###. ....# .#### #...# .####",
    "b": "#.... #.... ####. #...# #...# #...# ####.",
    "c": "..... ..... .###. #.... #.... #...# .###.",
    "d": "....# ....# .#### #...# #...# #...# .####",
    "e": "..... ..... .###. #...# ##### #.... .###.",
    "f": "..##. .#..# .#... ###.. .#... .#... .#...",
    "g": "..... ..... .#### #...# #...# .#### ....# .###.",
    "h": "#.... #.... #.##. ##..# #...# #...# #...#",
    "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
    "j": "...#. ..... ..##. ...#. ...#. ...#. #..#. .##..",
    "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
    "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "m": "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#",
    "n": "..... ..... #.##. ##..# #...# #...# #...#",
    "o": "..... ..... .###. #...# #...# #...# .###.",
    "p": "..... ..... ####. #...# #...# ####. #.... #....",
    "q": "..... ..... .#### #...# #...# .#### ....# ....#",
    "r": "..... ..... #.##. ##..# #.... #.... #....",
    "s": "..... ..... .#### #.... .###. ....# ####.",
    "t": ".#... .#... ###.. .#... .#... .#..# ..##.",
    "u": "..... ..... #...# #...# #...# #..## .##.#",
    "v": "..... ..... #...# #...# #...# .#.#. ..#..",
    "w": "..... ..... #...# #...# #.#.# #.#.# .#.#.",
    "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
    "y": "..... ..... #...# #...# #...# .#### ....# .###.",
    "z": "..... ..... ##### ...#. ..#.. .#... #####",
    "{": "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
    "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "}": ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
    "~": "..... ..... .#... #.#.# ...#. ..... .....",
}
# Drawn for any character that has no glyph above.
_BOX_ROWS = "##### #...# #...# #...# #...# #...# #####"

# An ink run of a glyph: (row, first column, column after the last).
Run = tuple[int, int, int]


def _parse_glyph(rows: str) -> tuple[Run, ...]:
    runs: list[Run] = []
    for row, pattern in enumerate(rows.split()):
        column = 0
        for ink, group in itertools.groupby(pattern):
            length = len(list(group))
            if ink == "#":
                runs.append((row, column, column + length))
            column += length
    return tuple(runs)


GLYPHS: dict[str, tuple[Run, ...]] = {
    char: _parse_glyph(rows) for char, rows in _FONT_ROWS.items()
}
_BOX_GLYPH = _parse_glyph(_BOX_ROWS)


@dataclass(frozen=True)
class Layout:
    """Pixel positions of the parts of a timeline image with ``strips`` strips.

    All ``*_top`` values are image rows, and a strip covers the rows
    ``strip_top(i)`` to ``strip_top(i) + STRIP_HEIGHT - 1``. The plot covers
    the columns ``PLOT_LEFT`` to ``PLOT_RIGHT - 1``.
    """

    strips: int
    marker_rows: int

    title_top = 8
    marker_band_top = title_top + GLYPH_HEIGHT * TITLE_SCALE + 8

    @classmethod
    def for_image(cls, strips: int, markers: int) -> Layout:
        return cls(strips=strips, marker_rows=min(markers, MAX_MARKER_ROWS))

    @property
    def strips_top(self) -> int:
        return self.marker_band_top + self.marker_rows * MARKER_ROW_HEIGHT + 4

    def strip_top(self, index: int) -> int:
        return self.strips_top + index * (STRIP_HEIGHT + STRIP_GAP)

    @property
    def strips_bottom(self) -> int:
        """The first image row below the last strip."""
        return self.strip_top(self.strips - 1) + STRIP_HEIGHT

    @property
    def axis_top(self) -> int:
        return self.strips_bottom + 1

    @property
    def legend_top(self) -> int:
        return self.axis_top + TICK_LENGTH + 2 + GLYPH_HEIGHT + 8

    @property
    def height(self) -> int:
        return self.legend_top + LEGEND_BOX + 8

    @property
    def plot_width(self) -> int:
        return PLOT_RIGHT - PLOT_LEFT

    def column_x(self, t: float, duration: float) -> int:
        """Return the image column that contains time ``t``, clipped to the plot."""
        offset = int(min(max(t, 0.0), duration) / duration * self.plot_width)
        return PLOT_LEFT + min(offset, self.plot_width - 1)


def render_timeline(
    path: Path,
    *,
    title: str,
    duration: float,
    series: Mapping[str, Sequence[tuple[float, tuple[int, int, int] | None]]],
    markers: Sequence[tuple[float, str]] = (),
    total: int | None = None,
) -> None:
    """Draw a membership timeline and write it to ``path`` as a PNG image.

    ``series`` maps each observer node name to its samples in time order:
    ``(t, (alive, suspect, down))`` or ``(t, None)`` for no data from ``t``
    on. The counts of a sample apply until the next sample, and a node has no
    data before its first sample. ``markers`` are ``(t, label)`` event lines.
    ``total`` is the member count at full strip height, by default the
    largest alive + suspect + down in any sample, and at least 1. Times are
    in seconds and are clipped to 0..duration.

    Raises ValueError for a duration that is not positive and finite, an
    empty ``series``, a sample time that is not finite or goes back in time,
    counts that are negative or not three numbers, a marker time that is not
    finite, or a ``total`` below 1. The image goes to a ``.tmp`` file next to
    ``path`` first, which then replaces ``path``.
    """
    _validate_duration(duration)
    _validate_series(series)
    _validate_markers(markers)
    strip_total = _resolve_total(series, total)

    layout = Layout.for_image(strips=len(series), markers=len(markers))
    canvas = Canvas(WIDTH, layout.height)
    _draw_title(canvas, layout, title)
    for index, (name, samples) in enumerate(series.items()):
        states = column_states(samples, duration, layout.plot_width)
        _draw_strip(canvas, layout, index, name, states, strip_total)
    _draw_markers(canvas, layout, markers, duration)
    _draw_axis(canvas, layout, duration)
    _draw_legend(canvas, layout, strip_total)
    _write_atomically(path, canvas.to_png())


# Input checks.


def _validate_duration(duration: float) -> None:
    if not (math.isfinite(duration) and duration > 0):
        raise ValueError(
            f"invalid duration {duration!r}: pass the run length as a positive, "
            "finite number of seconds"
        )


def _validate_series(
    series: Mapping[str, Sequence[tuple[float, tuple[int, int, int] | None]]],
) -> None:
    if not series:
        raise ValueError(
            "series is empty: pass at least one observer node name mapped to "
            "its samples"
        )
    for name, samples in series.items():
        previous: float | None = None
        for index, (t, counts) in enumerate(samples):
            where = f"series[{name!r}] sample {index}"
            if not math.isfinite(t):
                raise ValueError(
                    f"{where} has invalid time {t!r}: pass a finite number of "
                    "seconds since the start of the run"
                )
            if previous is not None and t < previous:
                raise ValueError(
                    f"{where} at t={t!r} is earlier than the sample before it at "
                    f"t={previous!r}: sort each node's samples by time"
                )
            previous = t
            if counts is not None:
                _validate_counts(where, counts)


def _validate_counts(where: str, counts: Sequence[int]) -> None:
    if len(counts) != 3:
        raise ValueError(
            f"{where} has invalid counts {counts!r}: pass (alive, suspect, down) "
            "or None for no data"
        )
    if min(counts) < 0:
        raise ValueError(
            f"{where} has negative counts {counts!r}: each of alive, suspect and "
            "down is a number of members, 0 or more"
        )


def _validate_markers(markers: Sequence[tuple[float, str]]) -> None:
    for index, (t, label) in enumerate(markers):
        if not math.isfinite(t):
            raise ValueError(
                f"marker {index} ({label!r}) has invalid time {t!r}: pass a finite "
                "number of seconds since the start of the run"
            )


def _resolve_total(
    series: Mapping[str, Sequence[tuple[float, tuple[int, int, int] | None]]],
    total: int | None,
) -> int:
    if total is not None:
        if total < 1:
            raise ValueError(
                f"invalid total {total!r}: pass the member count at full strip "
                "height (1 or more), or None to use the largest count seen"
            )
        return total
    seen = (
        sum(counts)
        for samples in series.values()
        for _, counts in samples
        if counts is not None
    )
    return max(seen, default=1) or 1


# Sampling onto pixel columns.


def column_states(
    samples: Sequence[Sample], duration: float, columns: int
) -> list[Counts | None]:
    """Return the counts to draw in each of ``columns`` equal time slices.

    Each slice gets the state with the max number of suspect plus down
    members among the states in force during it, the latest one on a tie.
    A slice is None when no state with counts is in force during it.
    """
    times = [min(max(t, 0.0), duration) for t, _ in samples]
    states: list[Counts | None] = []
    in_force = 0  # the number of samples at or before the start of the slice
    for column in range(columns):
        start = column * duration / columns
        end = (column + 1) * duration / columns
        while in_force < len(samples) and times[in_force] <= start:
            in_force += 1
        candidates = [samples[in_force - 1][1]] if in_force > 0 else []
        later = in_force
        while later < len(samples) and times[later] < end:
            candidates.append(samples[later][1])
            later += 1
        states.append(_max_severity_state(candidates))
    return states


def _max_severity_state(candidates: Sequence[Counts | None]) -> Counts | None:
    with_data = [counts for counts in reversed(candidates) if counts is not None]
    if not with_data:
        return None
    return max(with_data, key=lambda counts: counts[1] + counts[2])


def stack_tops(counts: Counts, total: int, height: int) -> tuple[int, int, int]:
    """Return the pixel heights where the alive, suspect and down bars end.

    Heights count from the bottom of the strip and are at most ``height``.
    A state with at least one member gets at least 1 pixel, taken from the
    largest bar when the strip is full.
    """
    scale = height / total
    tops = [min(height, round(sum(counts[: i + 1]) * scale)) for i in range(3)]
    sizes = [tops[0], tops[1] - tops[0], tops[2] - tops[1]]
    for state in range(3):
        if counts[state] == 0 or sizes[state] > 0:
            continue
        if sum(sizes) < height:
            sizes[state] = 1
            continue
        largest = max(range(3), key=sizes.__getitem__)
        if sizes[largest] > 1:
            sizes[largest] -= 1
            sizes[state] = 1
    alive_top = sizes[0]
    suspect_top = alive_top + sizes[1]
    return alive_top, suspect_top, suspect_top + sizes[2]


# Drawing.


class Canvas:
    """An RGB image held as one bytearray of 3 bytes per pixel for each row."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        blank = bytes(BACKGROUND) * width
        self.rows = [bytearray(blank) for _ in range(height)]

    def fill(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill the rectangle of columns x0..x1-1 and rows y0..y1-1, clipped."""
        x0, x1 = max(x0, 0), min(x1, self.width)
        y0, y1 = max(y0, 0), min(y1, self.height)
        if x0 >= x1:
            return
        span = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            self.rows[y][x0 * 3 : x1 * 3] = span

    def text(self, x: int, y: int, text: str, color: Color, scale: int = 1) -> int:
        """Draw ``text`` with its top-left corner at (x, y); return the end column."""
        for char in text:
            for row, first, after in GLYPHS.get(char, _BOX_GLYPH):
                self.fill(
                    x + first * scale,
                    y + row * scale,
                    x + after * scale,
                    y + (row + 1) * scale,
                    color,
                )
            x += CHAR_ADVANCE * scale
        return x

    def to_png(self) -> bytes:
        """Encode the image as PNG: 8-bit RGB with filter type 0 on every row."""
        raw = b"".join(b"\x00" + row for row in self.rows)
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"".join(
            (
                b"\x89PNG\r\n\x1a\n",
                _png_chunk(b"IHDR", header),
                _png_chunk(b"IDAT", zlib.compress(raw, 6)),
                _png_chunk(b"IEND", b""),
            )
        )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def text_width(text: str, scale: int = 1) -> int:
    return max(len(text) * CHAR_ADVANCE - 1, 0) * scale


def _fit(text: str, width: int, scale: int = 1) -> str:
    """Truncate ``text`` to the characters that fit in ``width`` pixels."""
    chars = (width + scale) // (CHAR_ADVANCE * scale)
    return text[: max(chars, 0)]


def _draw_title(canvas: Canvas, layout: Layout, title: str) -> None:
    fitted = _fit(title, WIDTH - 2 * 8, TITLE_SCALE)
    canvas.text(8, layout.title_top, fitted, TEXT, TITLE_SCALE)


def _draw_strip(
    canvas: Canvas,
    layout: Layout,
    index: int,
    name: str,
    states: Sequence[Counts | None],
    total: int,
) -> None:
    top = layout.strip_top(index)
    bottom = top + STRIP_HEIGHT
    canvas.fill(PLOT_LEFT - 1, top - 1, PLOT_RIGHT + 1, bottom + 1, FRAME)

    classes, changes = _strip_classes(states, total)
    hatch_columns = _hatch_columns(states)
    channel_tables = [
        bytes(color[channel] for color in _CLASS_COLORS).ljust(256, b"\x00")
        for channel in range(3)
    ]
    # Walk up from the bottom row, so each column's class changes only at the
    # heights where one bar ends and the next begins.
    for level in range(STRIP_HEIGHT):
        for column, code in changes.get(level, ()):
            classes[column] = code
        y = bottom - 1 - level
        row_classes = bytearray(classes)
        phase = (-y - PLOT_LEFT) % HATCH_PERIOD
        for column in hatch_columns[phase]:
            row_classes[column] = _HATCH
        row = canvas.rows[y]
        for channel, table in enumerate(channel_tables):
            start = PLOT_LEFT * 3 + channel
            row[start : PLOT_RIGHT * 3 : 3] = row_classes.translate(table)

    label = _fit(name, PLOT_LEFT - 6)
    canvas.text(2, top + (STRIP_HEIGHT - GLYPH_HEIGHT) // 2, label, TEXT)


def _strip_classes(
    states: Sequence[Counts | None], total: int
) -> tuple[bytearray, dict[int, list[tuple[int, int]]]]:
    """Return the bottom row's class codes and the class changes going up.

    The changes map a height above the strip bottom to (column, class) pairs
    that apply from that height up.
    """
    classes = bytearray(len(states))
    changes: dict[int, list[tuple[int, int]]] = {}
    tops_cache: dict[Counts, tuple[int, int, int]] = {}
    for column, counts in enumerate(states):
        if counts is None:
            classes[column] = _NO_DATA
            continue
        tops = tops_cache.get(counts)
        if tops is None:
            tops = tops_cache[counts] = stack_tops(counts, total, STRIP_HEIGHT)
        classes[column] = _class_at(0, tops)
        for height in tops:
            if 0 < height < STRIP_HEIGHT:
                changes.setdefault(height, []).append((column, _class_at(height, tops)))
    return classes, changes


def _class_at(height: int, tops: tuple[int, int, int]) -> int:
    alive_top, suspect_top, down_top = tops
    if height < alive_top:
        return _ALIVE
    if height < suspect_top:
        return _SUSPECT
    if height < down_top:
        return _DOWN
    return _EMPTY


def _hatch_columns(states: Sequence[Counts | None]) -> list[list[int]]:
    """Group the no-data columns by their hatch phase, the column modulo the period."""
    groups: list[list[int]] = [[] for _ in range(HATCH_PERIOD)]
    for column, counts in enumerate(states):
        if counts is None:
            groups[column % HATCH_PERIOD].append(column)
    return groups


@dataclass(frozen=True)
class _MarkerLabel:
    x: int
    row: int
    text: str


def _draw_markers(
    canvas: Canvas,
    layout: Layout,
    markers: Sequence[tuple[float, str]],
    duration: float,
) -> None:
    labels = _place_marker_labels(layout, markers, duration)
    for label in labels:
        top = layout.marker_band_top + label.row * MARKER_ROW_HEIGHT
        canvas.fill(label.x, top, label.x + 1, layout.strips_bottom, MARKER)
    # Labels go on top of the lines, so a line never crosses a label's text.
    for label in labels:
        top = layout.marker_band_top + label.row * MARKER_ROW_HEIGHT
        canvas.fill(
            label.x + 1,
            top,
            label.x + 3 + text_width(label.text),
            top + GLYPH_HEIGHT,
            BACKGROUND,
        )
        canvas.text(label.x + 2, top, label.text, MARKER)


def _place_marker_labels(
    layout: Layout, markers: Sequence[tuple[float, str]], duration: float
) -> list[_MarkerLabel]:
    """Assign each marker a label row and cut labels that would overlap.

    Markers are taken in time order. Each label goes in the first row where
    it clears the label before it, or else in the row whose last label ends
    furthest left. A label is cut short where the next label in its row starts.
    """
    if not markers:
        return []
    ordered = sorted(markers, key=lambda marker: marker[0])
    row_ends = [-1] * layout.marker_rows
    placed: list[tuple[int, int, str]] = []
    for t, label in ordered:
        x = layout.column_x(t, duration)
        text = label[:MAX_MARKER_LABEL_CHARS]
        free = [row for row, end in enumerate(row_ends) if end + 4 <= x]
        row = free[0] if free else min(range(len(row_ends)), key=row_ends.__getitem__)
        row_ends[row] = x + 2 + text_width(text)
        placed.append((x, row, text))

    labels: list[_MarkerLabel] = []
    for index, (x, row, text) in enumerate(placed):
        next_x = next(
            (later[0] for later in placed[index + 1 :] if later[1] == row), WIDTH
        )
        room = min(next_x - 3, WIDTH - 1) - (x + 2)
        labels.append(_MarkerLabel(x=x, row=row, text=_fit(text, room)))
    return labels


def tick_step(duration: float) -> float:
    """Return the step in seconds between x-axis ticks, for 12 ticks or fewer.

    Steps are 1, 2 or 5 times a power of ten below 10 s, then 10, 20, 30 s,
    1, 2, 5, 10, 20, 30 min, then hours. Because one step is at most 2.5 times
    the step before it, durations of 5 microseconds or more get 5 to 12 ticks.
    """
    for step in _tick_steps():
        if math.floor(duration / step + 1e-9) + 1 <= MAX_TICKS:
            return step
    raise AssertionError("unreachable: the steps grow without bound")


def _tick_steps() -> Iterator[float]:
    for exponent in range(-6, 1):
        for mantissa in (1, 2, 5):
            yield mantissa * 10.0**exponent
    yield from (10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)
    for exponent in itertools.count():
        for mantissa in (1, 2, 5):
            yield 3600.0 * mantissa * 10.0**exponent


def _tick_label(value: float, step: float) -> str:
    if step >= 1:
        return f"{value:.0f}s"
    decimals = math.ceil(-math.log10(step) - 1e-9)
    return f"{value:.{decimals}f}s"


def _draw_axis(canvas: Canvas, layout: Layout, duration: float) -> None:
    step = tick_step(duration)
    ticks = math.floor(duration / step + 1e-9) + 1
    label_top = layout.axis_top + TICK_LENGTH + 2
    for index in range(ticks):
        value = index * step
        x = layout.column_x(value, duration)
        canvas.fill(x, layout.axis_top, x + 1, layout.axis_top + TICK_LENGTH, FRAME)
        label = _tick_label(value, step)
        width = text_width(label)
        left = min(max(x - width // 2, 0), WIDTH - width)
        canvas.text(left, label_top, label, TEXT)


def _draw_legend(canvas: Canvas, layout: Layout, total: int) -> None:
    top = layout.legend_top
    text_top = top + (LEGEND_BOX - 7) // 2
    x = PLOT_LEFT
    for name, color in (("alive", ALIVE), ("suspect", SUSPECT), ("down", DOWN)):
        canvas.fill(x, top, x + LEGEND_BOX, top + LEGEND_BOX, color)
        x = canvas.text(x + LEGEND_BOX + 4, text_top, name, TEXT) + 12
    _fill_hatched(canvas, x, top, x + LEGEND_BOX, top + LEGEND_BOX)
    x = canvas.text(x + LEGEND_BOX + 4, text_top, "no data", TEXT) + 12
    canvas.fill(
        x + LEGEND_BOX // 2, top, x + LEGEND_BOX // 2 + 1, top + LEGEND_BOX, MARKER
    )
    canvas.text(x + LEGEND_BOX + 4, text_top, "event", TEXT)

    scale_note = f"full strip height = {total} members"
    canvas.text(PLOT_RIGHT - text_width(scale_note), text_top, scale_note, TEXT)


def _fill_hatched(canvas: Canvas, x0: int, y0: int, x1: int, y1: int) -> None:
    canvas.fill(x0, y0, x1, y1, NO_DATA)
    for y in range(y0, y1):
        for x in range(x0, x1):
            if (x + y) % HATCH_PERIOD == 0:
                canvas.fill(x, y, x + 1, y + 1, NO_DATA_HATCH)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
