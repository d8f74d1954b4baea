"""Training-time augmentation that imitates what photo preprocessing hands the garment model.

Fashion-MNIST items are product photos on white, trimmed and negated: the item's darkness is its
intensity. A user's photo has another ground, and the service's preprocessing
(``service.inputs.items``) draws the item as its distance from that ground, in the direction
most of it differs, normalised to its brightest part, with a floor inside the item's filled
silhouette, and frames the box of whatever it kept (the item, and any shadow or ground it took
in) with its longer side 28. So the frame differs from a Fashion-MNIST item in ways flips and
shifts never show:

- tones: against a mid-grey ground the item's lighter parts fall to the floor and the rest is
  stretched; against a darker ground its tones come out reversed (a pale shirt bright, its dark
  print dim); the whole silhouette, holes included (a bag's handle), sits at least at the floor;
- light: a gradient or a shadow's edge across the item scales its tones unevenly;
- geometry: a garment photographed turned is framed turned, its box (longer side 28) larger, so
  the item is smaller; a drop shadow, a hanger's bar or specks of a patterned ground kept beside
  it widen the box and push the item off-centre;
- the picture: blur, grain, and blocks of a low-quality JPEG.

:class:`GarmentPhoto` produces each of these in 28x28 space from the training items themselves.
Like :class:`training.modeling.photo_artifacts.PhotoArtifacts` it is active only while training,
sits in front of the classifier, and is not part of the serving model; with probability
``1 - apply`` an image is left as the geometric augmentation made it.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from training.modeling.photo_artifacts import (
    RandomArtifacts,
    _dilate,
    _pick,
    merged_params,
    projected,
)

SIDE = 28
PAD = 6  # the canvas the item is turned in: room for a turned item's corners
CANVAS = SIDE + 2 * PAD
TONE_FLOOR = 0.15  # the service's dimmest tone inside an item
ITEM_LEVEL = 0.02  # a Fashion-MNIST pixel above this is part of the item's silhouette
EDGE_RAMP = 0.15  # ... fully inside it from this intensity (the item's anti-aliased edge)
FILL_STEPS = 8  # growth of the outside around an outline's corners (see ``filled``)
KEPT_LEVEL = 0.05  # a frame pixel above this widens the box the service frames

# Per-image probabilities and ranges.
GARMENT_DEFAULTS: dict[str, float] = {
    "apply": 0.3,  # share of images that look photographed at all
    "ground": 0.7,  # tones measured against a ground of random lightness (else white)
    "ground_min": 0.0,  # the darkest ground (0 black, 1 white)
    "light": 0.3,  # a lighting gradient across the item ...
    "light_depth_max": 0.5,
    "shadow": 0.1,  # ... or a shadow's edge across it
    "floor": 0.8,  # the service's floor inside the filled silhouette (else the item as it is)
    "rotate": 0.35,
    "rotate_degrees": 25.0,
    "drop_shadow": 0.2,  # a shadow beside the item, kept with it
    "bar": 0.05,  # a hanger's bar above the item
    "specks": 0.1,  # bits of a patterned ground near the item
    "blur": 0.3,
    "noise": 0.3,
    "noise_sigma_max": 0.06,
    "blocks": 0.05,  # a low-quality JPEG's flat blocks
}


def garment_params(overrides: dict[str, float] | bool) -> dict[str, float]:
    return merged_params(GARMENT_DEFAULTS, overrides, "garment")


def _col(v: tf.Tensor) -> tf.Tensor:
    return tf.reshape(v, (-1, 1, 1, 1))


def filled(mask: tf.Tensor, steps: int = FILL_STEPS) -> tf.Tensor:
    """``[B, H, W, 1]`` 0/1 → the same with holes filled: whatever the frame's border cannot
    reach without crossing the mask (as the service fills a silhouette).

    The outside starts as the free pixels seen from an edge along their row or column, then
    grows ``steps`` pixels (4-connected) around corners: enough for an item's outline (a bag's
    handle, the gaps between a sandal's straps), far cheaper than growing from the border.
    """
    free = 1.0 - mask
    seen = tf.zeros_like(mask)
    for axis in (1, 2):
        for reverse in (False, True):
            clear = tf.math.cumprod(free, axis=axis, reverse=reverse)
            seen = tf.maximum(seen, clear)
    outside = seen
    for _ in range(steps):
        down = tf.nn.max_pool2d(outside, (3, 1), 1, "SAME")
        across = tf.nn.max_pool2d(outside, (1, 3), 1, "SAME")
        outside = tf.maximum(down, across) * free
    return 1.0 - outside


def _box_of(x: tf.Tensor, level: float) -> tuple[tf.Tensor, ...]:
    """Per image, the rows and columns (first, last) where ``x`` exceeds ``level``; the whole
    frame when nothing does."""
    size = x.shape[1]
    assert size is not None
    idx = tf.range(size, dtype=tf.float32)
    rows = tf.cast(tf.reduce_max(x, axis=(2, 3)) > level, tf.float32)  # [B, H]
    cols = tf.cast(tf.reduce_max(x, axis=(1, 3)) > level, tf.float32)  # [B, W]

    def first_last(on: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        any_on = tf.reduce_max(on, axis=1) > 0
        first = tf.reduce_min(tf.where(on > 0, idx, float(size)), axis=1)
        last = tf.reduce_max(tf.where(on > 0, idx, -1.0), axis=1)
        return tf.where(any_on, first, 0.0), tf.where(any_on, last, float(size - 1))

    r0, r1 = first_last(rows)
    c0, c1 = first_last(cols)
    return r0, r1, c0, c1


class GarmentPhoto(RandomArtifacts):
    """``[B, 28, 28, 1]`` Fashion-MNIST items in [0, 1] → the same batch as the service frames
    photographed garments."""

    BLUR = ((0.5, 1), (0.8, 2))

    # -- the steps -------------------------------------------------------------------------------

    def augment(self, x: tf.Tensor) -> tf.Tensor:
        p = self.params
        batch = tf.shape(x)[0]
        apply = self._chance(batch, "apply")

        out = self.tones(x, batch)
        out = self._framed(out, batch)

        sharp, soft = (tf.nn.conv2d(out, k, 1, "SAME") for k in self._blur_kernels)
        blur = self._uniform((batch,))
        out = _pick(blur < p["blur"], _pick(blur < p["blur"] / 2, soft, sharp), out)

        blocks = tf.image.resize(tf.nn.avg_pool2d(out, 2, 2, "VALID"), (SIDE, SIDE), "nearest")
        mix = _col(self._uniform((batch,), 0.2, 0.6))
        out = _pick(self._chance(batch, "blocks"), mix * blocks + (1.0 - mix) * out, out)

        sigma = _col(self._uniform((batch,), 0.0, p["noise_sigma_max"]))
        grain = keras.random.normal(tf.shape(out), seed=self.seed_generator) * sigma
        # grain lies on the item only: the service's ground is flat zero outside what it kept
        on_item = tf.cast(out > 0, tf.float32)
        out = _pick(self._chance(batch, "noise"), out + grain * on_item, out)

        return _pick(apply, tf.clip_by_value(out, 0.0, 1.0), x)

    def tones(self, v: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        """The item's tones as the service measures them against a ground, under uneven light.

        ``v`` is the item's darkness in its product photo (Fashion-MNIST's intensity), so the
        garment's lightness is about ``1 - v`` (scaled: fabric is rarely paper-white); the tone
        is its distance from the ground's lightness ``g``, darker-than-ground parts bright when
        most of it is darker, lighter parts bright when most of it is lighter; then normalised
        to its brightest part and raised to the floor inside the filled silhouette.
        """
        p = self.params
        solid = tf.cast(v > ITEM_LEVEL, tf.float32)
        silhouette = filled(solid)
        # the anti-aliased edge stays soft; holes filled are wholly inside
        # (a pale item's faint inside is as much inside as its dark parts)
        inner = -tf.nn.max_pool2d(-silhouette, 3, 1, "SAME")
        weight = tf.maximum(tf.clip_by_value(v / EDGE_RAMP, 0.0, 1.0), inner) * silhouette

        ground = self._uniform((batch,), p["ground_min"], 1.0)
        g = _col(tf.where(self._chance(batch, "ground"), ground, 1.0))
        lightness = _col(self._uniform((batch,), 0.8, 1.05)) * (
            1.0 - _col(self._uniform((batch,), 0.75, 0.95)) * v
        )
        diff = (g - lightness) * silhouette
        count = tf.maximum(tf.reduce_sum(silhouette, axis=(1, 2, 3), keepdims=True), 1.0)
        # mean, not median (no cheap batched median); the two agree for all but two-tone items
        darker = tf.reduce_sum(diff, axis=(1, 2, 3), keepdims=True) / count >= 0
        tone = tf.where(darker, diff, -diff)

        tone = tone * self._light(batch)
        # the brightest part, robust to a lone pixel as the service's 99th percentile is
        top = tf.reduce_max(tf.nn.avg_pool2d(tone, 2, 1, "SAME") * silhouette, axis=(1, 2, 3))
        tone = tf.clip_by_value(tf.math.divide_no_nan(tone, _col(top)), 0.0, 1.0)
        photographed = weight * (TONE_FLOOR + (1.0 - TONE_FLOOR) * tone)
        # without the floor: tones only, as a product photo on white reads
        bare = weight * tone
        return _pick(self._chance(batch, "floor"), photographed, bare)

    def _light(self, batch: tf.Tensor) -> tf.Tensor:
        """Multiplicative light over the frame: a gradient, a shadow's edge, or even light."""
        p = self.params
        idx = tf.range(SIDE, dtype=tf.float32) / (SIDE - 1) - 0.5
        ys, xs = tf.reshape(idx, (1, SIDE, 1, 1)), tf.reshape(idx, (1, 1, SIDE, 1))
        angle = _col(self._uniform((batch,), 0.0, 2 * math.pi))
        along = tf.cos(angle) * ys + tf.sin(angle) * xs  # [-0.71, 0.71]
        depth = _col(self._uniform((batch,), 0.0, p["light_depth_max"]))
        gradient = 1.0 - depth * (0.5 + along)
        offset = _col(self._uniform((batch,), -0.3, 0.3))
        soft = _col(self._uniform((batch,), 0.01, 0.1))
        strength = _col(self._uniform((batch,), 0.3, 0.6))
        shadow = 1.0 - strength * tf.sigmoid((along - offset) / soft)
        kind = self._uniform((batch,))
        light = _pick(kind < p["light"], gradient, tf.ones_like(gradient))
        return _pick((kind >= p["light"]) & (kind < p["light"] + p["shadow"]), shadow, light)

    def _framed(self, x: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        """Turned, with what the service keeps beside the item, and framed again as it frames:
        the box of everything kept, its longer side 28, centred."""
        p = self.params
        canvas = tf.pad(x, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
        limit = math.radians(p["rotate_degrees"])
        angle = tf.where(self._chance(batch, "rotate"), self._uniform((batch,), -limit, limit), 0.0)
        canvas = _rotated(canvas, angle)

        kept = canvas
        item = tf.cast(canvas > KEPT_LEVEL, tf.float32)
        # a drop shadow: the item's outline moved down and aside, dim (under the floor's
        # strength too, as a faint shadow is)
        dy = tf.round(self._uniform((batch,), 1.0, 3.5))
        dx = tf.round(self._uniform((batch,), -3.5, 3.5))
        moved = _shifted(_dilate(item, 2), dy, dx)
        level = _col(self._uniform((batch,), 0.1, 0.35))
        shadow = moved * (1.0 - item) * level
        kept = _pick(self._chance(batch, "drop_shadow"), tf.maximum(kept, shadow), kept)

        kept = _pick(self._chance(batch, "bar"), tf.maximum(kept, self._bar(item, batch)), kept)
        kept = _pick(
            self._chance(batch, "specks"), tf.maximum(kept, self._specks(item, batch)), kept
        )
        return _reframed(kept)

    def _bar(self, item: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        """A hanger's bar: a thin line just above the item, about its width, and the hook's
        shank over its middle."""
        r0, _, c0, c1 = _box_of(item, 0.5)
        rows = tf.reshape(tf.range(CANVAS, dtype=tf.float32), (1, CANVAS, 1, 1))
        cols = tf.reshape(tf.range(CANVAS, dtype=tf.float32), (1, 1, CANVAS, 1))
        width = c1 - c0
        centre = (c0 + c1) / 2
        half = width * self._uniform((batch,), 0.3, 0.55)
        at = r0 - tf.round(self._uniform((batch,), 0.0, 2.0))
        bar = (
            (rows >= _col(at - 1)) & (rows < _col(at)) & (tf.abs(cols - _col(centre)) <= _col(half))
        )
        hook_top = at - 1 - tf.round(self._uniform((batch,), 0.0, 5.0))
        hook = (rows >= _col(hook_top)) & (rows < _col(at)) & (tf.abs(cols - _col(centre)) < 0.6)
        line = tf.cast(bar | hook, tf.float32)
        return line * _col(self._uniform((batch,), 0.3, 1.0))

    def _specks(self, item: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        """Small blobs of the ground's pattern close to the item (within a few pixels)."""
        near = _dilate(item, 7) * (1.0 - item)
        rate = _col(self._uniform((batch,), 0.01, 0.05))
        dots = tf.cast(self._uniform((batch, CANVAS, CANVAS, 1)) < rate, tf.float32) * near
        dots = _pick(self._uniform((batch,)) < 0.5, _dilate(dots, 2) * near, dots)
        return dots * _col(self._uniform((batch,), 0.15, 0.6))


def _rotated(x: tf.Tensor, angle: tf.Tensor) -> tf.Tensor:
    """Each image of the canvas turned by its angle (radians) about the canvas's centre."""
    centre = (CANVAS - 1) / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    # the transform maps each output pixel to the input pixel it reads: the inverse rotation
    a2 = centre - cos * centre - sin * centre
    b2 = centre + sin * centre - cos * centre
    return projected(x, [cos, sin, a2, -sin, cos, b2], tf.constant([CANVAS, CANVAS]), "BILINEAR")


def _shifted(x: tf.Tensor, dy: tf.Tensor, dx: tf.Tensor) -> tf.Tensor:
    zeros, ones = tf.zeros_like(dy), tf.ones_like(dy)
    return projected(x, [ones, zeros, -dx, zeros, ones, -dy], tf.shape(x)[1:3], "NEAREST")


def _reframed(canvas: tf.Tensor) -> tf.Tensor:
    """The box of what the canvas holds, its longer side resized to 28 and centred (the
    service's framing of an item), back into a 28x28 frame."""
    r0, r1, c0, c1 = _box_of(canvas, KEPT_LEVEL)
    n = tf.maximum(r1 - r0, c1 - c0) + 1  # the square box's side, in canvas pixels
    top = (r0 + r1) / 2 - (n - 1) / 2
    left = (c0 + c1) / 2 - (n - 1) / 2
    # crop_and_resize samples from y1 * (H - 1) to y2 * (H - 1): the first and last output
    # pixels' centres, as a resize of the box's n pixels to 28 places them
    first, last = 0.5 * n / SIDE - 0.5, (SIDE - 0.5) * n / SIDE - 0.5
    boxes = tf.stack([top + first, left + first, top + last, left + last], axis=1) / (CANVAS - 1)
    # (a box is at most 40/28 of the frame: too little shrinking to need smoothing first)
    indices = tf.range(tf.shape(canvas)[0])
    return tf.image.crop_and_resize(canvas, boxes, indices, (SIDE, SIDE), "bilinear")
