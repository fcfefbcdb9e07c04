"""The worker image, built by podman from the real docker/Dockerfile.

Registry images cannot be pulled everywhere the suite runs, so the Dockerfile's FROM image is
stood in for: a Debian bookworm root filesystem with Python 3.11 and the locked Prefect, tagged
with the official name. The root filesystem and the stand-in are cached under CACHE_DIR by the
content they are made from, outside the checkout, so a clean clone reuses them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
LOCK = REPO_ROOT / "requirements.lock"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "datalake-platform"
# crun, podman's default runtime, fails on setrlimit in these machines' containers.
PODMAN = ("podman", "--runtime", "runc")
SUITE = "bookworm"
ROOTFS_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
# pip reaches PyPI through a proxy whose certificate is in this machine's bundle.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
STAND_IN_LABEL = "org.datalake.stand-in"
STAND_IN_CONTAINERFILE = """\
FROM {rootfs}
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PIP_BREAK_SYSTEM_PACKAGES=1 \\
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY requirements.lock /tmp/requirements.lock
RUN ln -s /usr/bin/python3 /usr/local/bin/python \\
    && pip install --no-cache-dir -c /tmp/requirements.lock prefect=={prefect} \\
    && rm /tmp/requirements.lock
"""


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run podman with the runtime that works here; raises with its output when it fails."""
    result = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def from_image(dockerfile: Path = DOCKERFILE) -> str:
    """The image the Dockerfile builds on."""
    match = re.search(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
    assert match, f"{dockerfile} has no FROM line"
    return match.group(1)


def qualified(image: str) -> str:
    """The full name Docker gives an image (`prefecthq/prefect:x` is `docker.io/prefecthq/prefect:x`);
    podman would tag a short name under `localhost/`, where the FROM line does not look."""
    first = image.split("/")[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


def locked_version(package: str, lock: Path = LOCK) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)", lock.read_text(), re.M)
    assert match, f"{package} is not in {lock}"
    return match.group(1)


def content_key(*parts: str | bytes) -> str:
    """A short hash of everything an artefact is made from."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@contextmanager
def cache_lock() -> Iterator[None]:
    """One builder at a time: two test sessions must not debootstrap into the same cache."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def rootfs_archive() -> Path:
    """A tar of a minimal bookworm with Python, made once by debootstrap."""
    packages = ",".join(ROOTFS_PACKAGES)
    archive = CACHE_DIR / f"rootfs-{SUITE}-{content_key(SUITE, 'minbase', packages)}.tar"
    if archive.exists():
        return archive
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as scratch:
        root = Path(scratch) / "root"
        try:
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={packages}", SUITE, str(root)],
                capture_output=True,
                check=True,
                timeout=900,
            )
        finally:
            unmount_below(root)  # an interrupted debootstrap leaves /proc mounted in the tree
        partial = Path(scratch) / archive.name
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        partial.rename(archive)
    return archive


def unmount_below(root: Path) -> None:
    mounted = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounted if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)


def image_label(image: str, label: str) -> str | None:
    """A label of a local image; None when the image is not here."""
    found = subprocess.run(
        [*PODMAN, "image", "inspect", "--format", f'{{{{index .Labels "{label}"}}}}', image],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        return None
    return found.stdout.strip().replace("<no value>", "")


def stand_in_base() -> str:
    """The Dockerfile's FROM image: the real one if this machine has it, else the stand-in,
    taken from podman's store, loaded from the cache, or built when its content changed."""
    name = qualified(from_image())
    containerfile = STAND_IN_CONTAINERFILE.format(
        rootfs="{rootfs}", prefect=locked_version("prefect")
    )
    key = content_key(containerfile, CA_BUNDLE.read_bytes(), LOCK.read_bytes(), *ROOTFS_PACKAGES)
    stand_in = f"localhost/datalake-stand-in:{key}"
    with cache_lock():
        if image_label(name, STAND_IN_LABEL) in ("", key):  # "": pulled, the real image
            return name
        saved = CACHE_DIR / f"stand-in-{key}.tar"
        if image_label(stand_in, STAND_IN_LABEL) == key:
            pass
        elif saved.exists():
            podman("load", "--input", str(saved), timeout=600)
        else:
            build_stand_in(containerfile, key, stand_in)
            podman("save", "--output", f"{saved}.partial", stand_in, timeout=600)
            Path(f"{saved}.partial").rename(saved)
            for stale in CACHE_DIR.glob("stand-in-*.tar"):
                if stale != saved:
                    stale.unlink()
        podman("tag", stand_in, name)
    return name


def build_stand_in(containerfile: str, key: str, tag: str) -> None:
    rootfs = rootfs_archive()
    rootfs_image = f"localhost/datalake-rootfs:{content_key(rootfs.name)}"
    podman("import", str(rootfs), rootfs_image, timeout=600)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as context:
        Path(context, "Containerfile").write_text(containerfile.format(rootfs=rootfs_image))
        shutil.copy(CA_BUNDLE, Path(context, "ca-certificates.crt"))
        shutil.copy(LOCK, Path(context, "requirements.lock"))
        podman(
            "build", "--network", "host", "--label", f"{STAND_IN_LABEL}={key}", "--tag", tag,
            context,
            timeout=1200,
        )  # fmt: skip


def build_worker_image(tag: str, context: Path, dockerfile: Path) -> None:
    """`podman build` of the real Dockerfile, with the ignore file compose would use."""
    stand_in_base()
    ignore = dockerfile.with_name(f"{dockerfile.name}.dockerignore")
    podman(
        "build", "--network", "host", "--file", str(dockerfile), "--ignorefile", str(ignore),
        "--tag", tag, str(context),
        timeout=1200,
    )  # fmt: skip
