"""Timeline PNG rendering, checked by decoding the written file."""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.timeline_png import (
    ALIVE,
    BACKGROUND,
    DOWN,
    GLYPH_HEIGHT,
    GLYPH_WIDTH,
    GLYPHS,
    MARKER,
    NO_DATA,
    NO_DATA_HATCH,
    PLOT_LEFT,
    PLOT_RIGHT,
    STRIP_BACKGROUND,
    STRIP_HEIGHT,
    SUSPECT,
    TEXT,
    TITLE_SCALE,
    WIDTH,
    Canvas,
    Layout,
    render_timeline,
    tick_step,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Pixel = tuple[int, int, int]


@dataclass
class Png:
    width: int
    height: int
    bit_depth: int
    color_type: int
    compression: int
    filter_method: int
    interlace: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> Pixel:
        row = self.rows[y]
        return row[x * 3], row[x * 3 + 1], row[x * 3 + 2]

    def pixels(self, x0: int, y0: int, x1: int, y1: int) -> set[Pixel]:
        return {self.pixel(x, y) for y in range(y0, y1) for x in range(x0, x1)}


def read_png(data: bytes) -> Png:
    """Decode an 8-bit RGB PNG that uses filter type 0 on every row."""
    assert data[:8] == PNG_SIGNATURE
    chunks: list[tuple[bytes, bytes]] = []
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in chunk {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert offset == len(data)
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1] == (b"IEND", b"")

    header = struct.unpack(">IIBBBBB", chunks[0][1])
    width, height = header[0], header[1]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + width * 3
    assert len(raw) == stride * height
    rows = []
    for y in range(height):
        line = raw[y * stride : (y + 1) * stride]
        assert line[0] == 0, f"row {y} uses filter type {line[0]}, expected 0"
        rows.append(line[1:])
    return Png(
        width=width,
        height=height,
        bit_depth=header[2],
        color_type=header[3],
        compression=header[4],
        filter_method=header[5],
        interlace=header[6],
        rows=rows,
    )


def is_green(pixel: Pixel) -> bool:
    red, green, blue = pixel
    return green > red + 50 and green > blue + 50


def is_amber(pixel: Pixel) -> bool:
    red, green, blue = pixel
    return red > 200 and 110 < green < 210 and blue < 100


def is_red(pixel: Pixel) -> bool:
    red, green, blue = pixel
    return red > 180 and green < 90 and blue < 90


def is_grey(pixel: Pixel) -> bool:
    return max(pixel) - min(pixel) <= 6 and 140 <= pixel[0] <= 220


def render(tmp_path: Path, **overrides: Any) -> Png:
    arguments: dict[str, Any] = {
        "title": "kill one node",
        "duration": 10.0,
        "series": {"n0": [(0.0, (4, 0, 0))]},
        "markers": (),
        "total": None,
    }
    arguments.update(overrides)
    path = tmp_path / "timeline.png"
    render_timeline(path, **arguments)
    return read_png(path.read_bytes())


def strip_y(layout: Layout, index: int, level: int) -> int:
    """Return the image row ``level`` pixels above the bottom of strip ``index``."""
    return layout.strip_top(index) + STRIP_HEIGHT - 1 - level


def test_png_signature_and_header(tmp_path: Path) -> None:
    path = tmp_path / "timeline.png"
    render_timeline(
        path,
        title="header",
        duration=5.0,
        series={"n0": [(0.0, (3, 0, 0))], "n1": [(0.0, (3, 0, 0))]},
    )
    data = path.read_bytes()
    image = read_png(data)

    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    assert image.width == WIDTH
    assert image.height == Layout.for_image(strips=2, markers=0).height
    assert image.bit_depth == 8
    assert image.color_type == 2
    assert image.compression == 0
    assert image.filter_method == 0
    assert image.interlace == 0


def test_height_grows_with_strips(tmp_path: Path) -> None:
    single = render(tmp_path, series={"n0": [(0.0, (1, 0, 0))]})
    three = render(
        tmp_path, series={name: [(0.0, (1, 0, 0))] for name in ("a", "b", "c")}
    )

    assert three.height > single.height
    assert three.height == Layout.for_image(strips=3, markers=0).height


def test_all_alive_column_is_green(tmp_path: Path) -> None:
    image = render(tmp_path, series={"n0": [(0.0, (4, 0, 0))]}, total=4)
    layout = Layout.for_image(strips=1, markers=0)
    x = layout.column_x(5.0, 10.0)

    assert is_green(image.pixel(x, strip_y(layout, 0, 0)))
    assert is_green(image.pixel(x, strip_y(layout, 0, 32)))
    assert is_green(image.pixel(x, strip_y(layout, 0, STRIP_HEIGHT - 1)))


def test_suspect_bar_sits_above_alive(tmp_path: Path) -> None:
    image = render(tmp_path, series={"n0": [(0.0, (3, 1, 0))]}, total=4)
    layout = Layout.for_image(strips=1, markers=0)
    x = layout.column_x(5.0, 10.0)
    alive_height = STRIP_HEIGHT * 3 // 4

    assert is_green(image.pixel(x, strip_y(layout, 0, 0)))
    assert is_green(image.pixel(x, strip_y(layout, 0, alive_height - 1)))
    assert is_amber(image.pixel(x, strip_y(layout, 0, alive_height)))
    assert is_amber(image.pixel(x, strip_y(layout, 0, STRIP_HEIGHT - 1)))


def test_down_bar_sits_above_suspect(tmp_path: Path) -> None:
    image = render(tmp_path, series={"n0": [(0.0, (2, 1, 1))]}, total=4)
    layout = Layout.for_image(strips=1, markers=0)
    x = layout.column_x(5.0, 10.0)

    assert is_green(image.pixel(x, strip_y(layout, 0, 31)))
    assert is_amber(image.pixel(x, strip_y(layout, 0, 32)))
    assert is_amber(image.pixel(x, strip_y(layout, 0, 47)))
    assert is_red(image.pixel(x, strip_y(layout, 0, 48)))
    assert is_red(image.pixel(x, strip_y(layout, 0, 63)))


def test_space_above_bars_is_strip_background(tmp_path: Path) -> None:
    image = render(tmp_path, series={"n0": [(0.0, (2, 0, 0))]}, total=4)
    layout = Layout.for_image(strips=1, markers=0)
    x = layout.column_x(5.0, 10.0)

    assert is_green(image.pixel(x, strip_y(layout, 0, 31)))
    assert image.pixel(x, strip_y(layout, 0, 32)) == STRIP_BACKGROUND


def test_single_suspect_in_large_cluster_is_visible(tmp_path: Path) -> None:
    image = render(tmp_path, series={"n0": [(0.0, (499, 1, 0))]}, total=500)
    layout = Layout.for_image(strips=1, markers=0)
    x = layout.column_x(5.0, 10.0)

    assert is_amber(image.pixel(x, strip_y(layout, 0, STRIP_HEIGHT - 1)))
    assert is_green(image.pixel(x, strip_y(layout, 0, STRIP_HEIGHT - 2)))


def test_default_total_is_max_count_seen(tmp_path: Path) -> None:
    series = {
        "n0": [(0.0, (1, 0, 0)), (5.0, (2, 1, 0))],
        "n1": [(0.0, (1, 0, 0))],
    }
    image = render(tmp_path, series=series)
    layout = Layout.for_image(strips=2, markers=0)
    x = layout.column_x(7.0, 10.0)

    assert is_amber(image.pixel(x, strip_y(layout, 0, STRIP_HEIGHT - 1)))
    assert is_green(image.pixel(x, strip_y(layout, 1, 20)))
    assert image.pixel(x, strip_y(layout, 1, 22)) == STRIP_BACKGROUND


def test_no_data_before_first_sample_is_grey(tmp_path: Path) -> None:
    image = render(tmp_path, series={"n0": [(5.0, (4, 0, 0))]})
    layout = Layout.for_image(strips=1, markers=0)
    x = layout.column_x(2.0, 10.0)
    top = layout.strip_top(0)
    region = image.pixels(x, top, x + 12, top + STRIP_HEIGHT)

    assert all(is_grey(pixel) for pixel in region)
    assert region == {NO_DATA, NO_DATA_HATCH}
    assert is_green(image.pixel(layout.column_x(7.0, 10.0), strip_y(layout, 0, 10)))


def test_no_data_after_none_sample_is_grey(tmp_path: Path) -> None:
    series = {"n0": [(0.0, (4, 0, 0)), (5.0, None)]}
    image = render(tmp_path, series=series)
    layout = Layout.for_image(strips=1, markers=0)

    assert is_green(image.pixel(layout.column_x(2.0, 10.0), strip_y(layout, 0, 10)))
    for level in (0, 10, 40, STRIP_HEIGHT - 1):
        pixel = image.pixel(layout.column_x(7.0, 10.0), strip_y(layout, 0, level))
        assert is_grey(pixel), f"level {level} is {pixel}"


def test_node_without_samples_is_all_no_data(tmp_path: Path) -> None:
    image = render(tmp_path, series={"n0": []})
    layout = Layout.for_image(strips=1, markers=0)
    top = layout.strip_top(0)

    assert image.pixels(PLOT_LEFT, top, PLOT_RIGHT, top + STRIP_HEIGHT) == {
        NO_DATA,
        NO_DATA_HATCH,
    }


def test_strips_follow_mapping_order(tmp_path: Path) -> None:
    series = {"n1": [(0.0, (0, 0, 4))], "n0": [(0.0, (4, 0, 0))]}
    image = render(tmp_path, series=series)
    layout = Layout.for_image(strips=2, markers=0)
    x = layout.column_x(5.0, 10.0)

    assert is_red(image.pixel(x, strip_y(layout, 0, 10)))
    assert is_green(image.pixel(x, strip_y(layout, 1, 10)))


def test_brief_suspicion_shows_in_its_column(tmp_path: Path) -> None:
    samples = [(0.0, (4, 0, 0)), (30.0, (3, 1, 0)), (30.001, (4, 0, 0))]
    image = render(tmp_path, duration=60.0, series={"n0": samples}, total=4)
    layout = Layout.for_image(strips=1, markers=0)
    x = layout.column_x(30.0, 60.0)

    assert is_amber(image.pixel(x, strip_y(layout, 0, STRIP_HEIGHT - 1)))
    assert is_green(image.pixel(x + 2, strip_y(layout, 0, STRIP_HEIGHT - 1)))
    assert is_green(image.pixel(x - 2, strip_y(layout, 0, STRIP_HEIGHT - 1)))


def test_times_outside_duration_are_clipped(tmp_path: Path) -> None:
    samples = [(-5.0, (4, 0, 0)), (25.0, (0, 0, 4))]
    image = render(tmp_path, series={"n0": samples}, markers=[(99.0, "late")])
    layout = Layout.for_image(strips=1, markers=1)
    first = layout.column_x(0.0, 10.0)
    last = PLOT_RIGHT - 1

    assert layout.column_x(99.0, 10.0) == last
    assert is_green(image.pixel(first, strip_y(layout, 0, 10)))
    assert is_green(image.pixel(last - 1, strip_y(layout, 0, 10)))
    assert image.pixel(last, strip_y(layout, 0, 10)) == MARKER


def test_marker_column_has_marker_color(tmp_path: Path) -> None:
    series = {"n0": [(0.0, (4, 0, 0))], "n1": [(0.0, (4, 0, 0))]}
    image = render(tmp_path, series=series, markers=[(4.0, "kill n1")])
    layout = Layout.for_image(strips=2, markers=1)
    x = layout.column_x(4.0, 10.0)

    for index in (0, 1):
        assert image.pixel(x, strip_y(layout, index, 30)) == MARKER
        assert is_green(image.pixel(x - 1, strip_y(layout, index, 30)))
        assert is_green(image.pixel(x + 1, strip_y(layout, index, 30)))
    band = layout.marker_band_top
    label = image.pixels(x + 2, band, x + 2 + 7 * 6, band + GLYPH_HEIGHT)
    assert MARKER in label


def test_close_marker_labels_go_in_separate_rows(tmp_path: Path) -> None:
    markers = [(4.0, "kill n1"), (4.1, "heal"), (4.2, "pause n2")]
    image = render(tmp_path, markers=markers)
    layout = Layout.for_image(strips=1, markers=3)

    assert layout.marker_rows == 3
    for row, (t, _) in enumerate(markers):
        x = layout.column_x(t, 10.0)
        top = layout.marker_band_top + row * (GLYPH_HEIGHT + 2)
        label = image.pixels(x + 2, top, x + 2 + 4 * 6, top + GLYPH_HEIGHT)
        assert MARKER in label, f"no label text in row {row}"


def test_empty_markers_render(tmp_path: Path) -> None:
    image = render(tmp_path, markers=[])
    layout = Layout.for_image(strips=1, markers=0)

    assert image.height == layout.height
    above_legend = image.pixels(0, 0, WIDTH, layout.legend_top)
    assert MARKER not in above_legend


def test_title_area_has_ink(tmp_path: Path) -> None:
    image = render(tmp_path, title="partition heal")
    layout = Layout.for_image(strips=1, markers=0)
    title_bottom = layout.title_top + GLYPH_HEIGHT * TITLE_SCALE

    title_area = image.pixels(0, layout.title_top, WIDTH, title_bottom)
    assert TEXT in title_area
    assert image.pixels(0, 0, WIDTH, layout.title_top) == {BACKGROUND}


def test_legend_shows_every_state(tmp_path: Path) -> None:
    image = render(tmp_path)
    layout = Layout.for_image(strips=1, markers=0)
    legend = image.pixels(0, layout.legend_top, WIDTH, image.height)

    for color in (ALIVE, SUSPECT, DOWN, NO_DATA, NO_DATA_HATCH, MARKER, TEXT):
        assert color in legend, f"legend lacks {color}"


def test_axis_has_tick_labels(tmp_path: Path) -> None:
    image = render(tmp_path)
    layout = Layout.for_image(strips=1, markers=0)
    axis = image.pixels(0, layout.axis_top, WIDTH, layout.legend_top)

    assert TEXT in axis


def test_writes_into_new_directory_without_temporary(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "kill" / "timeline.png"
    render_timeline(path, title="t", duration=1.0, series={"n0": []})
    first = path.read_bytes()
    render_timeline(path, title="t", duration=2.0, series={"n0": []})

    assert read_png(first).width == WIDTH
    assert read_png(path.read_bytes()).width == WIDTH
    assert path.read_bytes() != first
    assert sorted(p.name for p in path.parent.iterdir()) == ["timeline.png"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"duration": 0.0}, "0.0"),
        ({"duration": -1.5}, "-1.5"),
        ({"duration": math.nan}, "nan"),
        ({"duration": math.inf}, "inf"),
        ({"series": {}}, "series is empty"),
        ({"series": {"n0": [(0.0, (3, -1, 0))]}}, "(3, -1, 0)"),
        ({"series": {"n0": [(2.0, (1, 0, 0)), (1.0, None)]}}, "t=1.0"),
        ({"series": {"n0": [(math.nan, (1, 0, 0))]}}, "nan"),
        ({"series": {"n0": [(0.0, (1, 0))]}}, "(1, 0)"),
        ({"markers": [(math.inf, "heal")]}, "inf"),
        ({"total": 0}, "invalid total 0"),
    ],
)
def test_invalid_input_raises_value_error(
    tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValueError) as raised:
        render(tmp_path, **overrides)

    assert expected in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_out_of_order_error_names_node(tmp_path: Path) -> None:
    series = {"n0": [(0.0, None)], "n7": [(3.0, (1, 0, 0)), (2.5, (1, 0, 0))]}
    with pytest.raises(ValueError) as raised:
        render(tmp_path, series=series)

    message = str(raised.value)
    assert "series['n7'] sample 1" in message
    assert "t=2.5" in message
    assert "t=3.0" in message


@pytest.mark.parametrize(
    "duration",
    [0.3, 1.0, 4.9, 5.0, 10.0, 12.0, 13.0, 25.0, 60.0, 61.0, 130.0]
    + [250.0, 400.0, 700.0, 1300.0, 3600.0, 86400.0, 1e6],
)
def test_tick_step_gives_5_to_12_ticks(duration: float) -> None:
    ticks = math.floor(duration / tick_step(duration) + 1e-9) + 1

    assert 5 <= ticks <= 12


def test_tick_step_picks_round_steps() -> None:
    assert tick_step(10.0) == 1.0
    assert tick_step(60.0) == 10.0
    assert tick_step(300.0) == 30.0
    assert tick_step(1.0) == 0.1


def test_font_covers_printable_ascii() -> None:
    for code in range(32, 127):
        char = chr(code)
        assert char in GLYPHS, f"no glyph for {char!r}"
        for row, first, after in GLYPHS[char]:
            assert 0 <= row < GLYPH_HEIGHT, f"{char!r} row {row}"
            assert 0 <= first < after <= GLYPH_WIDTH, f"{char!r} run {first}..{after}"
        if char != " ":
            assert GLYPHS[char], f"glyph for {char!r} has no ink"


def test_font_glyphs_are_distinct() -> None:
    printable = [chr(code) for code in range(32, 127)]
    shapes = {GLYPHS[char] for char in printable}

    assert len(shapes) == len(printable)


def test_unknown_character_draws_box() -> None:
    canvas = Canvas(8, GLYPH_HEIGHT)
    end = canvas.text(0, 0, "\u00e9", TEXT)

    def pixel(x: int, y: int) -> Pixel:
        row = canvas.rows[y]
        return row[x * 3], row[x * 3 + 1], row[x * 3 + 2]

    assert end == GLYPH_WIDTH + 1
    assert pixel(0, 0) == TEXT
    assert pixel(4, 0) == TEXT
    assert pixel(0, 6) == TEXT
    assert pixel(4, 6) == TEXT
    assert pixel(2, 3) == BACKGROUND
