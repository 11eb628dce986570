"""A full-page PNG screenshot of an HTML file with headless Chromium (Debian's ``chromium``).

Used for ``docs/report_main_job.png``::

    python -m dashboards.screenshot sweep_results/paper_feature_noise/report/report.html \\
        docs/report_main_job.png

Chromium's ``--screenshot`` mode captures the window, so the window is made taller than any
report and the blank space below the page is trimmed off afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

#: The flags every headless start uses: no GPU, sandbox, first-run UI, or background traffic.
HEADLESS_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic", "--hide-scrollbars", "--disable-dev-shm-usage",
)
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MAX_HEIGHT = 20000
MARGIN = 16


def find_chromium() -> str:
    """The Chromium executable: ``$CHROMIUM`` if set, else the first of ``BINARIES`` on PATH.

    Raises:
        FileNotFoundError: None is installed (Debian: ``apt-get install -y chromium``).
    """
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no Chromium found (looked for $CHROMIUM and "
                            f"{', '.join(BINARIES)}); install it: apt-get install -y chromium")


def _trim(png: Path, out: Path, *, max_height: int | None, palette: bool) -> tuple[int, int]:
    """Crops the uniform background below the content (keeping a margin); returns the size.

    With ``palette``, the PNG is reduced to 256 colours (no dithering): a third of the bytes,
    and no visible change on a page of flat-coloured charts.
    """
    import numpy as np
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
    pixels = np.asarray(rgb)
    background = pixels[-1, 0]
    rows = np.where((pixels != background).any(axis=(1, 2)))[0]
    bottom = int(rows.max()) + 1 + MARGIN if rows.size else rgb.height
    bottom = min(bottom, rgb.height, max_height or rgb.height)
    cropped = rgb.crop((0, 0, rgb.width, bottom))
    if palette:
        cropped = cropped.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                   dither=Image.Dither.NONE)
    out.parent.mkdir(parents=True, exist_ok=True)
    cropped.save(out, optimize=True)
    return cropped.size


def screenshot_html(page: str | Path, out: str | Path, *, width: int = 1400,
                    max_height: int | None = None, palette: bool = True,
                    timeout: float = 120) -> tuple[int, int]:
    """Renders ``page`` (a file path or URL) in headless Chromium and saves a PNG of it.

    Args:
        page: An HTML file or a ``file://`` / ``http://`` URL.
        out: The PNG to write.
        width: The window width in CSS pixels.
        max_height: Cut the screenshot at this many pixels (None: the whole page, up to
            ``MAX_HEIGHT``).
        palette: Save with a 256-colour palette (smaller file for docs/).
        timeout: Seconds Chromium may take.

    Returns:
        The (width, height) of the PNG written.

    Raises:
        FileNotFoundError: Chromium is not installed, or ``page`` does not exist.
        RuntimeError: Chromium exited without writing the screenshot.
    """
    url = str(page)
    if "://" not in url:
        path = Path(page).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such HTML file")
        url = path.as_uri()
    binary = find_chromium()
    with tempfile.TemporaryDirectory(prefix="mixup-chromium-") as tmp:
        raw = Path(tmp) / "window.png"
        command = [binary, *HEADLESS_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
                   f"--window-size={width},{MAX_HEIGHT}", f"--screenshot={raw}", url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if not raw.is_file():
            tail = " ".join(done.stderr.split()[-40:])
            raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {tail}")
        return _trim(raw, Path(out), max_height=max_height, palette=palette)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dashboards.screenshot PAGE.html OUT.png [--width W] [--max-height H]
    [--full-colour]``."""
    parser = argparse.ArgumentParser(prog="python -m dashboards.screenshot",
                                     description="Full-page PNG of an HTML file (headless Chromium).")
    parser.add_argument("page", help="the HTML file (or URL) to render")
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("--width", type=int, default=1400, help="window width (default 1400)")
    parser.add_argument("--max-height", type=int, help="cut the screenshot at this height")
    parser.add_argument("--full-colour", action="store_true",
                        help="keep every colour (default: a 256-colour palette, ~3x smaller)")
    args = parser.parse_args(argv)
    try:
        size = screenshot_html(args.page, args.out, width=args.width, max_height=args.max_height,
                               palette=not args.full_colour)
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"screenshot: error: {err}", file=sys.stderr)
        return 1
    print(f"{args.out} ({size[0]}×{size[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
