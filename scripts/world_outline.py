"""Make the dashboard's offline world outline from a Natural Earth TopoJSON land file.

    python scripts/world_outline.py land-110m.json api/static/world.json

The input is ``land-110m.json`` from the npm package ``world-atlas`` (Natural Earth 1:110m land,
public domain; world-atlas is ISC-licensed): ``npm pack world-atlas@2.0.2``. The output is one SVG
path in equirectangular coordinates (x = longitude + 180, y = 90 - latitude, degrees, 0.1 degree
precision), small enough to ship in the package so the dashboard never fetches map tiles.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _arc_points(topology: dict[str, Any], index: int) -> list[tuple[float, float]]:
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arc = topology["arcs"][index if index >= 0 else ~index]
    x = y = 0
    points = []
    for dx, dy in arc:  # delta-encoded, quantized
        x, y = x + dx, y + dy
        points.append((x * sx + tx, y * sy + ty))
    return points if index >= 0 else points[::-1]


def _ring(topology: dict[str, Any], arcs: list[int]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for i in arcs:
        pts = _arc_points(topology, i)
        out.extend(pts[1:] if out else pts)  # consecutive arcs share an end point
    return out


def svg_path(topology: dict[str, Any], min_points: int = 4) -> str:
    parts = []
    for geometry in topology["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for ring in polygon:
                pts: list[tuple[float, float]] = []
                for lon, lat in _ring(topology, ring):
                    p = (round(lon + 180, 1), round(90 - lat, 1))
                    if not pts or p != pts[-1]:
                        pts.append(p)
                if len(pts) < min_points:
                    continue
                parts.append(
                    "M" + " ".join(f"{x:g} {y:g}" for x, y in pts) + "Z"
                )  # implicit lineto
    return "".join(parts)


def main(argv: list[str]) -> int:
    source, target = Path(argv[0]), Path(argv[1])
    topology = json.loads(source.read_text(encoding="utf-8"))
    outline = {
        "source": "Natural Earth 1:110m land (public domain), via npm world-atlas 2.0.2 (ISC)",
        "projection": "equirectangular: x = longitude + 180, y = 90 - latitude (degrees)",
        "viewBox": [0, 0, 360, 180],
        "d": svg_path(topology),
    }
    target.write_text(json.dumps(outline, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {target}: {target.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
