"""The node images of the docker runtime, built with docker/build-images.sh.

``ensure_images`` runs the script according to a mode:

- ``always`` (the default of ``swim-conformance run --runtime docker``) runs
  it before every suite. The script skips what has not changed and Docker's
  layer cache does the rest, so it takes seconds when nothing changed, and
  the images always hold the working tree's nodes.
- ``missing`` runs it only when an image is missing.
- ``never`` uses the images as they are and fails when one is missing.

The script needs root, for debootstrap. Without root, ``always`` uses the
existing images with a warning, and fails only when one is missing.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from conformance.errors import BuildError
from conformance.impls import project_root

MODES = ("always", "missing", "never")


def build_script(root: Path | None = None) -> Path:
    return (root or project_root()) / "docker" / "build-images.sh"


def missing_images(client: Any, images: Iterable[str]) -> list[str]:
    """Return the images in ``images`` that the local daemon does not have."""
    missing = []
    for image in sorted(set(images)):
        try:
            client.images.get(image)
        except Exception:
            missing.append(image)
    return missing


def _is_progress(line: str) -> bool:
    # The scripts' own lines and Docker's build step headers.
    return line.startswith(("build-images.sh:", "build-base.sh:", "Step "))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_build_script(
    log_path: Path,
    echo: Callable[[str], None] | None = None,
    arguments: Sequence[str] = (),
    root: Path | None = None,
) -> float:
    """Run docker/build-images.sh; return its wall time in seconds.

    The whole output goes to ``log_path``; the progress lines also go to
    ``echo``. Raises BuildError when the script fails.
    """
    script = build_script(root)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [str(script), *arguments]
    if echo:
        echo(f"building the node images: {' '.join(command)} (log: {log_path})")
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            log.flush()
            if echo and _is_progress(line):
                echo(f"  {line.rstrip()}")
        status = process.wait()
    seconds = time.monotonic() - started
    if status != 0:
        raise BuildError(
            f"{script} failed with status {status} after {seconds:.0f} s; "
            f"end of {log_path}:\n{_tail(log_path)}"
        )
    return seconds


def ensure_images(
    client: Any,
    images: Iterable[str],
    mode: str,
    log_path: Path,
    echo: Callable[[str], None] | None = None,
) -> float | None:
    """Make sure ``images`` exist, building them as ``mode`` selects.

    Returns the build's wall time, or None when nothing was built. Raises
    BuildError when an image is missing and cannot be built.
    """
    if mode not in MODES:
        raise BuildError(f"unknown image build mode {mode!r}; expected {MODES}")
    required = sorted(set(images))
    missing = missing_images(client, required)
    if mode == "never" or (mode == "missing" and not missing):
        if missing:
            raise BuildError(
                f"image(s) {', '.join(missing)} missing; build them with "
                f"sudo {build_script()} or drop --image-build never"
            )
        return None
    if os.geteuid() != 0:
        if missing:
            raise BuildError(
                f"image(s) {', '.join(missing)} missing, and {build_script()} "
                "needs root (for debootstrap); run it with sudo first"
            )
        if echo:
            echo(
                f"warning: not root, so {build_script()} cannot run; using the "
                "existing images, which may be older than the working tree"
            )
        return None
    seconds = run_build_script(log_path, echo)
    still_missing = missing_images(client, required)
    if still_missing:
        raise BuildError(
            f"{build_script()} succeeded but image(s) {', '.join(still_missing)} "
            "still do not exist"
        )
    return seconds
