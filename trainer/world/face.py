"""Draw one face frame from an identity, a style, a head pose and a vector of AU intensities.

Geometry lives in face units: the origin is the centre of the face, y points down, and 1 is half
the face's height. `_Pen` maps face units to pixels through the head pose (centre, size, roll), so
every feature moves with the head. Expressions change only shapes (brows, lids, nose lines, lips,
jaw); nothing about colour, brightness or placement depends on the expression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from trainer.world.aus import AU_INDEX, N_AUS

SS = 2  # supersampling factor of the drawing canvas

SKIN_TONES = {  # name -> RGB; drawn independently of the class
    "pale": (236, 214, 200), "light": (222, 184, 160), "tan": (196, 150, 110),
    "olive": (170, 140, 95), "brown": (140, 96, 66), "dark": (92, 62, 44),
}
BACKGROUNDS = {
    "grey": (128, 128, 128), "white": (235, 235, 235), "black": (30, 30, 30), "blue": (70, 100, 170),
    "green": (80, 140, 90), "red": (160, 70, 60), "yellow": (210, 190, 90), "purple": (120, 80, 150),
    "teal": (60, 140, 140), "orange": (215, 130, 60),
}
FACE_SHAPES = {"oval": (0.74, 1.0), "round": (0.88, 1.05), "long": (0.64, 0.95), "square": (0.82, 1.22)}
EYE_STYLES = ("iris", "dot", "almond")
MOUTH_STYLES = ("lips", "line")


@dataclass(frozen=True)
class Identity:
    """Who is drawn and how: everything about a face that is not its expression or pose."""

    skin: str
    skin_rgb: tuple[float, float, float]
    shape: str
    aspect: float  # face width / height
    jaw: float  # width of the lower face relative to the upper
    eye_gap: float
    eye_y: float
    eye_w: float
    eye_h: float
    brow_gap: float
    brow_len: float
    mouth_y: float
    mouth_w: float
    lip_h: float
    background: str
    bg_rgb: tuple[float, float, float]
    bg_rgb2: tuple[float, float, float]
    ink: tuple[int, int, int]
    line: float  # line width factor
    fill: bool  # skin-filled face (False: outline only)
    eye_style: str
    mouth_style: str
    hair: bool
    hair_rgb: tuple[int, int, int]
    sketch: int = 0  # non-zero: the sketch style, drawn with strokes jittered from this seed


def sample_identity(rng: np.random.Generator, style: str = "cartoon") -> Identity:
    """A random identity drawn in `style`: `cartoon` (the world's), or one of the held-out styles
    pretraining never sees: `chalk` (light lines on a dark board, no fill) or `sketch` (graphite
    strokes drawn two or three times with a wobble, hatched shading, cream paper, no fill)."""
    chalk, sketch = style == "chalk", style == "sketch"
    skin = str(rng.choice(list(SKIN_TONES)))
    shape = str(rng.choice(list(FACE_SHAPES)))
    aspect, jaw = FACE_SHAPES[shape]
    bg = str(rng.choice(list(BACKGROUNDS)))
    base = np.asarray(BACKGROUNDS[bg], dtype=float)
    bg1 = np.clip(base + rng.normal(0, 12, 3), 0, 255)
    bg2 = np.clip(bg1 + rng.normal(0, 25, 3), 0, 255)
    skin_rgb = np.clip(np.asarray(SKIN_TONES[skin], dtype=float) + rng.normal(0, 8, 3), 0, 255)
    ink = tuple(int(c) for c in np.clip(rng.normal(45, 15, 3), 0, 110))
    fill, eye_style, mouth_style = bool(rng.random() < 0.8), str(rng.choice(EYE_STYLES)), str(rng.choice(MOUTH_STYLES))
    if chalk:
        bg, bg1 = "board", np.clip(rng.normal([35, 55, 45], 8), 0, 255)
        bg2 = np.clip(bg1 + rng.normal(0, 6, 3), 0, 255)
        ink = tuple(int(c) for c in np.clip(rng.normal([230, 230, 215], 12), 150, 255))
        fill, eye_style, mouth_style, shape, aspect, jaw = False, "almond", "line", "square", 0.9, 1.3
    if sketch:
        bg, bg1 = "paper", np.clip(rng.normal([238, 230, 208], 6), 0, 255)
        bg2 = np.clip(bg1 + rng.normal(0, 5, 3), 0, 255)
        ink = tuple(int(c) for c in np.clip(rng.normal(95, 12) + rng.normal(0, 4, 3), 50, 140))
        fill, eye_style, mouth_style = False, "iris", "lips"
    return Identity(
        skin=skin, skin_rgb=tuple(skin_rgb), shape=shape, aspect=aspect * rng.uniform(0.95, 1.05),
        jaw=jaw * rng.uniform(0.95, 1.05), eye_gap=rng.uniform(0.30, 0.40), eye_y=rng.uniform(-0.26, -0.14),
        eye_w=rng.uniform(0.10, 0.14), eye_h=rng.uniform(0.055, 0.075), brow_gap=rng.uniform(0.10, 0.15),
        brow_len=rng.uniform(0.17, 0.24), mouth_y=rng.uniform(0.42, 0.54), mouth_w=rng.uniform(0.22, 0.30),
        lip_h=rng.uniform(0.035, 0.06), background=bg, bg_rgb=tuple(bg1), bg_rgb2=tuple(bg2), ink=ink,
        line=rng.uniform(0.8, 1.4), fill=fill, eye_style=eye_style, mouth_style=mouth_style,
        hair=bool(rng.random() < 0.5) and not (chalk or sketch), hair_rgb=tuple(int(c) for c in rng.uniform(20, 160, 3)),
        sketch=int(rng.integers(1 << 30)) if sketch else 0,
    )


def vary_look(ident: Identity, rng: np.random.Generator) -> Identity:
    """The same face in a random look, for pretraining only: ink, background and fill colours drawn
    anywhere in RGB (either way round in brightness, at least 60 levels of luma apart), often no
    fill, and line widths from hairline to bold. The held-out styles' own marks (chalk's board and
    chalk-white lines as a set, sketch's repeated strokes and hatching) are never drawn."""
    def luma(rgb) -> float:
        return float(np.dot(np.asarray(rgb, dtype=float), (0.299, 0.587, 0.114)))

    bg1 = rng.uniform(0, 255, 3)
    while True:
        ink = rng.uniform(0, 255, 3)
        if abs(luma(ink) - luma(bg1)) >= 60:
            break
    fill = bool(rng.random() < 0.4)
    skin = rng.uniform(0, 255, 3)
    if fill:  # the lines must stand out on the fill too
        while abs(luma(ink) - luma(skin)) < 60:
            skin = rng.uniform(0, 255, 3)
    return replace(
        ident, bg_rgb=tuple(bg1), bg_rgb2=tuple(np.clip(bg1 + rng.normal(0, 25, 3), 0, 255)),
        ink=tuple(int(c) for c in ink), fill=fill, skin_rgb=tuple(skin), line=float(rng.uniform(0.5, 2.0)),
        hair=ident.hair and fill,
    )


@dataclass(frozen=True)
class Pose:
    cx: float  # centre, fraction of the image width
    cy: float
    scale: float  # face height, fraction of the image height
    roll: float  # radians


class _Pen:
    """Face units -> canvas pixels under a head pose."""

    def __init__(self, draw: ImageDraw.ImageDraw, size: int, pose: Pose, line: float, sketch: int = 0) -> None:
        self.d, self.size = draw, size
        self.sketch = np.random.default_rng(sketch) if sketch else None  # same strokes in every frame
        self.c = np.array([pose.cx * size, pose.cy * size])
        self.s = pose.scale * size / 2
        cos, sin = math.cos(pose.roll), math.sin(pose.roll)
        self.rot = np.array([[cos, -sin], [sin, cos]])
        self.w = max(1, int(round(0.035 * self.s * line)))

    def pts(self, uv: np.ndarray) -> list[tuple[float, float]]:
        xy = self.c + (np.asarray(uv, dtype=float).reshape(-1, 2) @ self.rot.T) * self.s  # (N, 2)
        return [tuple(p) for p in xy]

    def line(self, uv, fill, width: float = 1.0) -> None:
        if self.sketch is None:
            self.d.line(self.pts(uv), fill=fill, width=max(1, int(round(self.w * width))), joint="curve")
            return
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)  # (N, 2)
        thin = max(1, int(round(self.w * width * 0.45)))
        for _ in range(2 + int(self.sketch.random() < 0.5)):  # a pencil goes over a line two or three times
            wobble = self.sketch.normal(0, 0.015, size=uv.shape) + self.sketch.normal(0, 0.012, size=2)
            cut = self.sketch.uniform(0, 0.3, size=2) * (len(uv) - 1)  # each pass stops short at either end
            part = (uv + wobble)[int(cut[0]): len(uv) - int(cut[1])]
            if len(part) > 1:
                self.d.line(self.pts(part), fill=fill, width=thin, joint="curve")

    def poly(self, uv, fill, outline=None) -> None:
        self.d.polygon(self.pts(uv), fill=fill, outline=outline)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)  # (n, 2)


def _curve(x0: float, y0: float, x1: float, y1: float, mid_y: float, n: int = 15) -> np.ndarray:
    """A parabola from (x0, y0) to (x1, y1) whose middle sits at mid_y."""
    s = np.linspace(-1, 1, n)
    x = (x0 + x1) / 2 + s * (x1 - x0) / 2
    y = (y0 + y1) / 2 + s * (y1 - y0) / 2 + (mid_y - (y0 + y1) / 2) * (1 - s ** 2)
    return np.stack([x, y], axis=1)  # (n, 2)


def _head(pen: _Pen, ident: Identity, au: np.ndarray) -> None:
    jaw_drop = au[AU_INDEX["jaw_drop"]]
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    x, y = np.cos(t) * ident.aspect, np.sin(t).copy()
    lower = y > 0
    x[lower] *= ident.jaw ** (y[lower])  # widen or narrow the lower face
    y[lower] *= 1 + 0.12 * jaw_drop
    if ident.shape == "square":
        x = np.sign(x) * np.abs(x) ** 0.7 * ident.aspect ** 0.3
    outline = np.stack([x, y], axis=1)
    if ident.hair:
        pen.poly(_ellipse(0, -0.35, ident.aspect * 1.08, 0.8), fill=ident.hair_rgb)
    fill = tuple(int(c) for c in ident.skin_rgb) if ident.fill else None
    pen.poly(outline, fill=fill)
    pen.line(np.vstack([outline, outline[:1]]), fill=ident.ink, width=0.8)


def _hatching(pen: _Pen, ident: Identity) -> None:
    """Diagonal shading strokes down one side of the face (the sketch style's), the same in every frame."""
    side = 1 if ident.sketch % 2 else -1
    for k in range(7):
        y = -0.45 + 0.16 * k
        x = side * ident.aspect * (0.62 + 0.1 * abs(y))
        pen.line([[x, y], [x + side * 0.12, y - 0.12]], fill=ident.ink, width=0.5)


def _eye(pen: _Pen, ident: Identity, au: np.ndarray, side: int, blink: bool) -> None:
    g = lambda k: au[AU_INDEX[k]]  # noqa: E731
    ex, ey, w, h = side * ident.eye_gap, ident.eye_y, ident.eye_w, ident.eye_h
    up = h * (1 + 1.3 * g("upper_lid_raise") - 0.55 * g("lid_tighten") - 0.65 * g("lid_droop"))
    lo = h * (1 + 0.3 * g("upper_lid_raise") - 0.55 * g("lid_tighten") - 0.6 * g("cheek_raise"))
    if blink:
        up, lo = 0.08 * h, 0.0
    upper = _curve(ex - w, ey, ex + w, ey, ey - 1.6 * max(up, 0.01))
    lower = _curve(ex + w, ey, ex - w, ey, ey + 1.4 * max(lo, 0.0))
    white = (245, 245, 240) if ident.fill else None
    if up + lo > 0.25 * h:
        if ident.eye_style != "dot" and white is not None:
            pen.poly(np.vstack([upper, lower]), fill=white)
        r = min(0.6 * w, 0.9 * (up + lo))
        if ident.eye_style == "iris":
            pen.poly(_ellipse(ex, ey + 0.2 * (lo - up), r, min(r, 0.8 * (up + lo)), 16), fill=ident.ink)
        elif ident.eye_style == "dot":
            rr = min(0.35 * w, 0.7 * (up + lo))
            pen.poly(_ellipse(ex, ey, rr, rr, 12), fill=ident.ink)
        pen.line(lower, fill=ident.ink, width=0.6)
    pen.line(upper, fill=ident.ink, width=1.0 + 0.4 * g("lid_droop"))
    cheek = g("cheek_raise")
    if cheek > 0.15:  # cheek bulge under the eye and lines at its outer corner
        cy = ey + 1.4 * h + 0.08
        pen.line(_curve(ex - 0.8 * w, cy, ex + 0.8 * w, cy, cy - 0.05 * cheek, 9), fill=ident.ink, width=0.4 + 0.5 * cheek)
        ox = ex + side * (w + 0.03)
        for k in (-1, 1):
            pen.line([[ox, ey], [ox + side * 0.06 * cheek, ey + k * 0.04 * cheek]], fill=ident.ink, width=0.4)


def _brow(pen: _Pen, ident: Identity, au: np.ndarray, side: int) -> None:
    g = lambda k: au[AU_INDEX[k]]  # noqa: E731
    base = ident.eye_y - ident.eye_h - ident.brow_gap
    inner_x = side * (ident.eye_gap - ident.brow_len * 0.55 - 0.05 * g("brow_lower"))
    outer_x = side * (ident.eye_gap + ident.brow_len * 0.55)
    lower = 0.14 * g("brow_lower")
    inner_y = base - 0.24 * g("inner_brow_raise") + lower + 0.03 * g("brow_lower")
    outer_y = base - 0.22 * g("outer_brow_raise") + lower * 0.6
    mid_y = (inner_y + outer_y) / 2 - 0.03 - 0.04 * g("outer_brow_raise")
    pen.line(_curve(inner_x, inner_y, outer_x, outer_y, mid_y, 9), fill=ident.ink, width=1.5)
    if g("brow_lower") > 0.2:  # vertical furrows between the brows
        x = side * 0.035
        pen.line([[x, inner_y + 0.02], [x * 0.8, inner_y + 0.02 + 0.09 * g("brow_lower")]], fill=ident.ink, width=0.45)


def _forehead(pen: _Pen, ident: Identity, au: np.ndarray) -> None:
    lift = (au[AU_INDEX["inner_brow_raise"]] + au[AU_INDEX["outer_brow_raise"]]) / 2
    if lift > 0.3:  # horizontal wrinkles above raised brows
        top = ident.eye_y - ident.eye_h - ident.brow_gap - 0.3
        for k in range(2):
            y = top - 0.07 * k
            w = 0.25 * lift
            pen.line(_curve(-w, y, w, y, y - 0.02, 7), fill=ident.ink, width=0.35)


def _nose(pen: _Pen, ident: Identity, au: np.ndarray) -> None:
    g = lambda k: au[AU_INDEX[k]]  # noqa: E731
    wrinkle, lip = g("nose_wrinkle"), g("upper_lip_raise")
    top, tip = ident.eye_y + 0.08, ident.mouth_y - 0.2 - 0.04 * wrinkle
    pen.line([[0.0, top], [0.03, tip - 0.02], [0.0, tip]], fill=ident.ink, width=0.6)
    flare = 0.07 * (1 + 0.5 * wrinkle)
    for side in (-1, 1):
        pen.line(_curve(0.0, tip, side * flare, tip - 0.03 - 0.02 * wrinkle, tip + 0.01, 7), fill=ident.ink, width=0.6)
    if wrinkle > 0.15:  # creases across the bridge
        for k in range(3):
            y = top + 0.06 + 0.045 * k
            pen.line(_curve(-0.05 * wrinkle, y, 0.05 * wrinkle, y, y - 0.015, 5), fill=ident.ink, width=0.45)
    fold = max(wrinkle, lip)
    if fold > 0.15:  # lines from the nose wings towards the mouth corners
        for side in (-1, 1):
            x0 = side * (flare + 0.02)
            pen.line([[x0, tip - 0.02], [side * (ident.mouth_w + 0.02), ident.mouth_y - 0.05 * (1 - fold)]],
                     fill=ident.ink, width=0.3 + 0.5 * fold)


def _mouth(pen: _Pen, ident: Identity, au: np.ndarray) -> None:
    g = lambda k: au[AU_INDEX[k]]  # noqa: E731
    my = ident.mouth_y + 0.08 * g("jaw_drop")
    half = ident.mouth_w * (1 + 0.5 * g("lip_stretch") + 0.15 * g("lip_corner_pull") - 0.2 * g("lip_press"))
    corner_y = my - 0.16 * g("lip_corner_pull") + 0.15 * g("lip_corner_depress") + 0.02 * g("lip_stretch")
    gap = 0.04 * g("lips_part") + 0.26 * g("jaw_drop") + 0.05 * g("lip_stretch") * g("lips_part")
    up_in = my - 0.25 * gap - 0.05 * g("upper_lip_raise")
    lo_in = my + 0.75 * gap
    thick = ident.lip_h * (1 - 0.75 * g("lip_press"))
    bow = 0.02 * g("lip_corner_pull") - 0.02 * g("lip_corner_depress")  # inner line sags between raised corners
    upper_in = _curve(-half, corner_y, half, corner_y, up_in + bow)
    lower_in = _curve(half, corner_y, -half, corner_y, lo_in + bow)
    if ident.mouth_style == "lips" and ident.fill:
        upper_out = _curve(-half, corner_y, half, corner_y, up_in - thick + bow)
        lower_out = _curve(half, corner_y, -half, corner_y, lo_in + 1.3 * thick + bow)
        lip_rgb = tuple(int(c * 0.75) for c in (190, 90, 90))
        pen.poly(np.vstack([upper_out, lower_out]), fill=lip_rgb)
    if gap > 0.012:
        pen.poly(np.vstack([upper_in, lower_in]), fill=(50, 20, 25))
        pen.line(lower_in, fill=ident.ink, width=0.8)
    pen.line(upper_in, fill=ident.ink, width=1.0 + 0.6 * g("lip_press"))


def draw_face(img: Image.Image, ident: Identity, pose: Pose, au: np.ndarray, blink: bool = False) -> None:
    """Draw the face onto `img` (the supersampled canvas) in place. `au` is `(N_AUS,)` in [0, 1]."""
    assert au.shape == (N_AUS,)
    pen = _Pen(ImageDraw.Draw(img), img.size[0], pose, ident.line, ident.sketch)
    _head(pen, ident, au)
    if ident.sketch:
        _hatching(pen, ident)
    for side in (-1, 1):
        _eye(pen, ident, au, side, blink)
        _brow(pen, ident, au, side)
    _forehead(pen, ident, au)
    _nose(pen, ident, au)
    _mouth(pen, ident, au)
