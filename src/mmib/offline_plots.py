"""The page of `dvc plots show` with Vega inlined, so the interactive charts render offline.

DVC's own page loads vega, vega-lite and vega-embed from a CDN (the ``{scripts}`` of its
template): without a network the charts vanish without a message. The page this module builds,
.dvc/plots/offline.html (``plots.html_template`` in .dvc/config, so a plain ``dvc plots show``
uses it), holds the three libraries inline, at the versions DVC's page asks for (pinned below
with the SHA-256 of each file), and leaves DVC's CDN tags out. Rebuild it (npm registry) with

    PYTHONPATH=src python -m mmib.offline_plots

The libraries are BSD-3-Clause (copyright the University of Washington Interactive Data Lab).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple

from mmib.atomic_io import write_text
from mmib.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / ".dvc" / "plots" / "offline.html"


class Library(NamedTuple):
    name: str
    version: str
    file: str     # inside the npm package
    sha256: str   # of that file


LIBRARIES = (
    Library("vega", "5.20.2", "build/vega.min.js",
            "4794d0169cb1f3ebad8117fe98ba5bd652dd725905ec0384e832391dbccb03be"),
    Library("vega-lite", "5.2.0", "build/vega-lite.min.js",
            "d73157451b3978015ab31dacd55ff90d986ab8663fc0abed50f97b3cd90002cb"),
    Library("vega-embed", "6.18.2", "build/vega-embed.min.js",
            "1ba9826431ddc9805e815ad92acc811c819f2bfd32bda2a128b8c4b5070fab5e"),
)

# dvc_render's page with the libraries in place of `{scripts}` (DVC fills {refresh_tag}, {plot_divs})
_HEAD = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- built by `python -m mmib.offline_plots`: %s inline (BSD-3-Clause), no CDN -->
"""
_TAIL = """    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def page(sources: dict[str, str]) -> str:
    """The HTML template: each library's source in a script tag of its own, in LIBRARIES' order."""
    scripts = []
    for lib in LIBRARIES:
        js = sources[lib.name]
        if "</script" in js or "{plot_divs}" in js or "{refresh_tag}" in js:
            raise ValueError(f"{lib.name} {lib.version} holds text that would break the page")
        scripts.append(f'    <script data-library="{lib.name}@{lib.version}">\n{js}\n    </script>\n')
    names = ", ".join(f"{lib.name}@{lib.version}" for lib in LIBRARIES)
    return _HEAD % names + "".join(scripts) + _TAIL


def fetch(lib: Library, work: Path) -> str:
    """``lib``'s file from its npm package (``npm pack``), checked against the pinned SHA-256."""
    try:
        out = subprocess.run(["npm", "pack", "--silent", f"{lib.name}@{lib.version}"], cwd=work,
                             capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise InputError(f"npm pack {lib.name}@{lib.version} failed: {exc}", file=str(TEMPLATE),
                         fix="install npm and reach the npm registry, or keep the committed page") from None
    with tarfile.open(work / out[-1]) as tar:
        member = tar.extractfile(f"package/{lib.file}")
        assert member is not None
        data = member.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != lib.sha256:
        raise InputError(f"{lib.name}@{lib.version} {lib.file} has SHA-256 {digest}, pinned {lib.sha256}",
                         file=str(TEMPLATE), field="LIBRARIES",
                         fix="check the package; to move to another version, update LIBRARIES")
    return data.decode("utf-8")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        sources = {lib.name: fetch(lib, Path(tmp)) for lib in LIBRARIES}
    write_text(TEMPLATE, page(sources))
    print(f"{TEMPLATE.relative_to(REPO_ROOT)}: {TEMPLATE.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
