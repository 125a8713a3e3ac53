"""The simulator's renderer: a real, labelled H.264 MP4 showing the prompt over moving graphics.

Test-mode jobs never reach an upstream; the ``simulator`` provider calls
``render_simulation`` instead, so integrators get a genuine video file of the duration
and size they asked for, with a clear "SIMULATION" label, never passed off as AI output.

The work is kept lean. Everything costly is drawn once with Pillow (the background
gradient, the label banner and the wrapped prompt) and converted once to the encoder's
own pixel layout: three planes, Y at full size and Cb/Cr at half size (yuv420p, BT.601,
limited range). Each frame is then a wrap-around shift of the background planes, a few
shapes, one masked paste of the text layer, a progress bar and a clock, written straight
into a ``VideoFrame`` (no RGB frame, no per-frame colour conversion) and handed to
libx264 one at a time, so memory does not grow with duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageChops, ImageDraw, ImageFont

__all__ = ["DEFAULT_LABEL", "render_simulation"]

DEFAULT_LABEL = "SIMULATION · vidgate test mode"

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
_Planes = tuple[Image.Image, Image.Image, Image.Image]  # Y (full size), Cb, Cr (half size)
_YUV = tuple[int, int, int]
_MAX_SIDE = 8192
_WHITE: _YUV = (235, 128, 128)
_BLACK: _YUV = (16, 128, 128)
_SHAPE_COLOURS = ((242, 153, 74), (86, 204, 242), (187, 107, 217))
_BAR_COLOUR = (255, 214, 10)
_ENCODER_OPTIONS = {
    "preset": "ultrafast",
    "crf": "26",
    # What the planes hold: BT.601 in limited range; tag it so players agree.
    "x264-params": "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m:range=tv",
}


def render_simulation(
    path: Path,
    *,
    prompt: str,
    duration_s: int,
    width: int,
    height: int,
    fps: int = 24,
    label: str = DEFAULT_LABEL,
) -> None:
    """Write an H.264 MP4 of exactly ``duration_s * fps`` frames at ``width`` x ``height``.

    Odd sides are rounded down to even numbers (yuv420p needs them). The file is written
    in place at ``path`` and removed again if rendering fails; a caller that needs
    atomicity renders to a temporary name.
    """
    if duration_s <= 0:
        raise ValueError("duration_s must be positive")
    if fps <= 0:
        raise ValueError("fps must be positive")
    w, h = _even(width), _even(height)
    scene = _Scene.build(w, h, prompt=prompt, label=label)
    total = duration_s * fps
    try:
        _encode(path, scene, total=total, fps=fps)
    except BaseException:
        path.unlink(missing_ok=True)  # never leave half a video behind
        raise


def _encode(path: Path, scene: _Scene, *, total: int, fps: int) -> None:
    """Stream ``total`` frames of ``scene`` through libx264 into an MP4 at ``path``."""
    time_base = Fraction(1, fps)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = scene.width, scene.height, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.options = {**_ENCODER_OPTIONS, "g": str(fps * 2)}
        for index in range(total):
            frame = _to_frame(scene.frame(index, total, fps), scene.width, scene.height)
            frame.pts = index
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _even(value: int) -> int:
    if value <= 0 or value > _MAX_SIDE:
        raise ValueError(f"frame side must be between 1 and {_MAX_SIDE}, got {value}")
    return max(2, value - value % 2)


def _to_frame(planes: _Planes, width: int, height: int) -> av.VideoFrame:
    """Copy the three planes into a fresh yuv420p frame (padding rows where FFmpeg aligns)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for target, image in zip(frame.planes, planes, strict=True):
        if target.line_size != image.width:
            padded = Image.new("L", (target.line_size, image.height))
            padded.paste(image, (0, 0))
            image = padded
        target.update(image.tobytes())
    return frame


def _yuv(rgb: tuple[int, int, int]) -> _YUV:
    """BT.601 limited-range Y, Cb, Cr of an RGB colour."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(cb), round(cr)


def _planes(image: Image.Image) -> _Planes:
    """Split an RGB image (even size) into limited-range Y and half-size Cb, Cr planes."""
    y, cb, cr = image.convert("YCbCr").split()
    luma = [16 + round(v * 219 / 255) for v in range(256)]
    chroma = [128 + round((v - 128) * 224 / 255) for v in range(256)]
    return y.point(luma), cb.reduce(2).point(chroma), cr.reduce(2).point(chroma)


@dataclass
class _Scene:
    """Everything drawn once, and the cheap per-frame composition."""

    width: int
    height: int
    background: _Planes  # horizontally periodic, so a wrap-around shift is seamless
    overlay: _Planes  # the text layer, cropped to its (even) bounding box
    masks: tuple[Image.Image, Image.Image]  # its alpha at full and half size
    overlay_at: tuple[int, int]  # even top-left corner of the text layer
    clock_font: _Font

    @classmethod
    def build(cls, width: int, height: int, *, prompt: str, label: str) -> _Scene:
        layer = _text_layer(width, height, prompt=prompt, label=label)
        left, top, right, bottom = layer.getbbox() or (0, 0, width, height)
        left, top = left - left % 2, top - top % 2
        right, bottom = min(width, right + right % 2), min(height, bottom + bottom % 2)
        cropped = layer.crop((left, top, right, bottom))
        alpha = cropped.getchannel("A")
        return cls(
            width=width,
            height=height,
            background=_planes(_background(width, height)),
            overlay=_planes(cropped.convert("RGB")),
            masks=(alpha, alpha.reduce(2)),
            overlay_at=(left, top),
            clock_font=_font(max(8, min(width, height) // 30)),
        )

    def frame(self, index: int, total: int, fps: int) -> _Planes:
        w, h = self.width, self.height
        shift = (index * max(1, w // 320)) % (w // 2) if w >= 4 else 0
        y, cb, cr = (
            ImageChops.offset(plane, shift * (2 if k == 0 else 1), 0)
            for k, plane in enumerate(self.background)
        )
        t = index / fps
        radius = max(1, min(w, h) // 9)
        for k, colour in enumerate(_SHAPE_COLOURS):
            phase = t * (0.9 + 0.35 * k) + k * 2.1
            cx = w / 2 + math.cos(phase) * (w / 2 - radius)
            cy = h / 2 + math.sin(phase * 1.3) * (h / 2 - radius)
            _paint(
                (y, cb, cr),
                (cx - radius, cy - radius, cx + radius, cy + radius),
                colour,
                ellipse=True,
            )
        x0, y0 = self.overlay_at
        y.paste(self.overlay[0], (x0, y0), self.masks[0])
        cb.paste(self.overlay[1], (x0 // 2, y0 // 2), self.masks[1])
        cr.paste(self.overlay[2], (x0 // 2, y0 // 2), self.masks[1])
        self._progress((y, cb, cr), index, total, fps)
        return y, cb, cr

    def _progress(self, planes: _Planes, index: int, total: int, fps: int) -> None:
        """A bar along the bottom edge and a running clock just above it."""
        w, h = self.width, self.height
        bar_h = max(2, (h // 90) & ~1)
        done = round(w * (index + 1) / total)
        _paint(planes, (0, h - bar_h, w, h), (20, 20, 28))
        _paint(planes, (0, h - bar_h, done, h), _BAR_COLOUR)
        t, seconds = index / fps, total // fps
        clock = f"{int(t) // 60:02d}:{t % 60:05.2f} / {seconds // 60:02d}:{seconds % 60:02d}"
        draw = ImageDraw.Draw(planes[0])
        x, y = w - max(4, w // 80), h - bar_h - max(2, h // 120)
        draw.text(
            (x, y),
            clock,
            font=self.clock_font,
            fill=_WHITE[0],
            anchor="rd",
            stroke_width=1,
            stroke_fill=_BLACK[0],
        )


def _paint(
    planes: _Planes,
    box: tuple[float, float, float, float],
    rgb: tuple[int, int, int],
    *,
    ellipse: bool = False,
) -> None:
    """Fill a rectangle or an ellipse of one colour on all three planes (chroma at half size)."""
    colour = _yuv(rgb)
    for k, plane in enumerate(planes):
        scale = 1 if k == 0 else 2
        x0, y0, x1, y1 = (v / scale for v in box)
        draw = ImageDraw.Draw(plane)
        if ellipse:
            draw.ellipse((x0, y0, x1, y1), fill=colour[k])
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour[k])


def _font(size: int) -> _Font:
    return ImageFont.load_default(size=size)


def _background(width: int, height: int) -> Image.Image:
    """A dim, colourful gradient whose left and right edges match (mirrored halves)."""
    half = max(1, width // 2)
    ramp = Image.linear_gradient("L").rotate(90, expand=True).resize((half, height))
    red = Image.new("L", (width, height))
    red.paste(ramp, (0, 0))
    red.paste(ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (width - half, 0))
    green = Image.linear_gradient("L").resize((width, height))
    blue = Image.radial_gradient("L").resize((width, height))
    # Kept dim so that white text on top stays readable.
    return Image.merge("RGB", (red, green, blue)).point(lambda v: 30 + v * 110 // 255)


def _text_layer(width: int, height: int, *, prompt: str, label: str) -> Image.Image:
    """The label banner and the wrapped prompt panel, as one transparent RGBA layer."""
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    side = min(width, height)
    margin = max(2, side // 24)

    label_font = _font(max(8, side // 18))
    label_h = _line_height(label_font)
    banner_h = label_h + 2 * max(2, label_h // 3)
    draw.rectangle((0, 0, width, banner_h), fill=(0, 0, 0, 215))
    draw.text(
        (width / 2, banner_h / 2),
        _fit(label, label_font, width - 2 * margin),
        font=label_font,
        fill=(*_BAR_COLOUR, 255),
        anchor="mm",
        stroke_width=max(1, label_h // 24),
        stroke_fill=(*_BAR_COLOUR, 255),
    )

    prompt_font = _font(max(8, side // 22))
    line_h = round(_line_height(prompt_font) * 1.25)
    footer = max(2, height // 90) + _line_height(_font(max(8, side // 30))) + margin
    room = height - banner_h - footer - 4 * margin
    lines = _wrap(prompt.strip() or "(no prompt)", prompt_font, width - 4 * margin, room // line_h)
    block_h = line_h * len(lines)
    top = banner_h + max(2 * margin, (height - banner_h - block_h) // 2)
    top = max(banner_h + margin, min(top, height - footer - block_h - margin))
    panel = (margin, top - margin, max(margin, width - margin), top + block_h + margin)
    radius = min(margin, (panel[2] - panel[0]) // 2, (panel[3] - panel[1]) // 2)
    draw.rounded_rectangle(panel, radius=radius, fill=(0, 0, 0, 150))
    for row, line in enumerate(lines):
        y = top + row * line_h + line_h / 2
        draw.text((width / 2, y), line, font=prompt_font, fill=(255, 255, 255, 255), anchor="mm")
    return layer


def _line_height(font: _Font) -> int:
    _, top, _, bottom = font.getbbox("Hgjy")
    return max(1, round(bottom - top))


def _width(text: str, font: _Font) -> float:
    return float(font.getlength(text))


def _fit(text: str, font: _Font, max_width: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits on one line."""
    if _width(text, font) <= max_width:
        return text
    while text and _width(text + "…", font) > max_width:
        text = text[:-1]
    return text + "…"


def _wrap(text: str, font: _Font, max_width: int, max_lines: int) -> list[str]:
    """Greedy word wrap; words wider than a line are split; overflow ends in an ellipsis."""
    max_lines = max(1, max_lines)
    max_width = max(1, max_width)
    lines: list[str] = []
    for paragraph in text.splitlines():
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if _width(candidate, font) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = word
            while len(current) > 1 and _width(current, font) > max_width:
                cut = _longest_prefix(current, font, max_width)
                lines.append(current[:cut])
                current = current[cut:]
        if current:
            lines.append(current)
        if len(lines) > max_lines:
            break
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _fit(lines[-1] + "…", font, max_width)
    return lines or [""]


def _longest_prefix(word: str, font: _Font, max_width: int) -> int:
    low, high = 1, len(word)
    while low < high:
        mid = (low + high + 1) // 2
        if _width(word[:mid], font) <= max_width:
            low = mid
        else:
            high = mid - 1
    return low
