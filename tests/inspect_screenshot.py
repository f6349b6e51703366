"""Print a JSON summary of what a screenshot shows; run with a baked project's Python.

Pillow and numpy come with the project (matplotlib and pandas need them), so the template's
own environment needs neither. For each of matplotlib's first three default colours (the
example figure's scatter points) it reports how many pixels have that colour and where
they are (median x and y); and the share of pixels that are not page background.
"""

import json
import sys

import numpy as np
from PIL import Image

# tab:blue, tab:orange, tab:green: the first colours of matplotlib's default cycle.
COLOURS = {"blue": (31, 119, 180), "orange": (255, 127, 14), "green": (44, 160, 44)}
# Per channel. Tight: the centres of the points are drawn in the exact colour, while the
# code's syntax highlighting uses nearby greens and blues that must not count.
TOLERANCE = 6

pixels = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(int)
summary = {
    "size": [pixels.shape[1], pixels.shape[0]],
    "ink": float((pixels.min(axis=2) < 240).mean()),
    "colours": {},
}
for name, rgb in COLOURS.items():
    ys, xs = np.nonzero(np.abs(pixels - np.array(rgb)).max(axis=2) <= TOLERANCE)
    median = [int(np.median(xs)), int(np.median(ys))] if len(xs) else None
    summary["colours"][name] = {"pixels": len(xs), "median": median}
print(json.dumps(summary))
