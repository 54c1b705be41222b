"""docs/retarget_steps.png: how imposter builds its picture, on the demo's pair.

    python benchmarks/retarget_figure.py     # a few seconds

Columns: the source with its keypoints, the source cut into parts (one colour per bone), the driving image
with its keypoints, the source's skeleton in the driving pose (retargeted) over the driving figure, the moved
picture (``retarget-warp``), the redraw (``imposter``, seed 0) and the ground truth. Each 64 px
picture is shown 4x.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from imposter import ImPoster
from imposter.retarget import PARTS, TREE, assign_parts, figure_mask, retarget, retargeted_image, with_pelvis
from imposter.toyworld.pairs import make_pairs

OUT = Path(__file__).resolve().parent.parent / "docs" / "retarget_steps.png"
ZOOM = 4
PALETTE = [(255, 255, 255), (255, 80, 80), (255, 160, 160), (80, 200, 80), (160, 230, 160), (150, 150, 150),
           (80, 80, 255), (160, 160, 255), (230, 200, 40), (240, 230, 140)]  # fmt: skip


def zoomed(image: Image.Image) -> Image.Image:
    return image.convert("RGB").resize((image.width * ZOOM, image.height * ZOOM), Image.NEAREST)


def with_skeleton(image: Image.Image, points: dict, colour=(20, 20, 20)) -> Image.Image:
    picture = zoomed(image)
    draw = ImageDraw.Draw(picture)
    points = with_pelvis(points)
    for parent, child in TREE:
        draw.line([tuple(points[parent] * ZOOM), tuple(points[child] * ZOOM)], fill=colour, width=3)
    for xy in points.values():
        x, y = xy * ZOOM
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(250, 250, 0), outline=colour)
    return picture


def main() -> None:
    pair = make_pairs(1, 0, "table")[0]
    source, driving = pair.source_image, pair.driving_image
    mask, _ = figure_mask(np.asarray(source, dtype=float))
    labels, _ = assign_parts(mask, pair.source_keypoints)
    parts = np.full((*mask.shape, 3), 20, dtype=np.uint8)
    for index in range(len(PARTS)):
        parts[labels == index] = PALETTE[index]
    moved = retargeted_image(source, driving, pair.source_keypoints, pair.driving_keypoints)
    engine = ImPoster.from_pretrained("toy")
    prepared = engine.prepare(
        source, pair.source_prompt, driving, pair.driving_prompt,
        source_keypoints=pair.source_keypoints, driving_keypoints=pair.driving_keypoints,
    )  # fmt: skip
    learned = engine.personalize(prepared, "imposter", progress=False)
    redrawn = engine.generate(prepared, learned, [0], method="imposter", progress=False)[0]
    target = retarget(pair.driving_keypoints, pair.source_keypoints)
    columns = [
        ("source + keypoints", with_skeleton(source, pair.source_keypoints)),
        ("parts", zoomed(Image.fromarray(parts))),
        ("driving + keypoints", with_skeleton(driving, pair.driving_keypoints)),
        (
            "retargeted skeleton",
            with_skeleton(driving, {k: v for k, v in target.items() if k != "pelvis"}, (200, 0, 0)),
        ),
        ("moved (retarget-warp)", zoomed(moved)),
        ("redrawn (imposter)", zoomed(redrawn)),
        ("ground truth", zoomed(pair.target_image)),
    ]
    side, title = 64 * ZOOM, 18
    sheet = Image.new("RGB", (side * len(columns), side + title), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, (name, picture) in enumerate(columns):
        sheet.paste(picture, (index * side, title))
        draw.text((index * side + 4, 3), name, fill=(0, 0, 0))
    sheet.save(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
