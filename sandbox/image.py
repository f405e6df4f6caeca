"""The sandbox image: its tag (a hash of the runner), and how to build it with or without a registry.

With a registry, `sandbox/Dockerfile` builds FROM `python:3.11-slim`. Without one, a minimal
Debian with python3 is made by `debootstrap`, kept as a tarball in the cache directory,
imported once as a base image, and the same Dockerfile builds FROM that base. Either way
the image is tagged by a hash of the runner and the Dockerfile, so a changed runner gets a
new tag, and building a tag that exists does nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, DockerException, ImageNotFound
from structlog import get_logger

from codetool_kernel.errors import SandboxError
from sandbox.docker_engine import connect, docker_error
from sandbox.forkserver import RUNNER_PACKAGE

IMAGE_REPOSITORY = "codetool-sandbox"
BASE_REPOSITORY = "codetool-sandbox-base"
DOCKERFILE = Path(__file__).resolve().with_name("Dockerfile")
IMAGE_LABEL = "org.codetool.sandbox-image"
IMAGE_COMMAND = ("python3", "-E", "-s", "-S", "-m", "runner", "--mode", "plain", "--workdir", "/tmp")
"""The image's CMD (as written in the Dockerfile)."""
_DEBOOTSTRAP_PACKAGES = ("python3",)
_STRIPPED_FROM_ROOTFS = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale")
_LOG_TAIL_CHARS = 2000

log = get_logger(__name__)


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/codetool`, else `~/.cache/codetool`."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "codetool"


def _runner_files() -> list[Path]:
    return sorted(
        path
        for path in RUNNER_PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def runner_digest() -> str:
    """sha256 of the Dockerfile and every runner file (name and content)."""
    digest = hashlib.sha256(DOCKERFILE.read_bytes())
    for path in _runner_files():
        digest.update(str(path.relative_to(RUNNER_PACKAGE)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def default_image_tag() -> str:
    """The tag the current runner's image has: `codetool-sandbox:<hash>`."""
    return f"{IMAGE_REPOSITORY}:{runner_digest()[:16]}"


@dataclass(frozen=True)
class ImageRecipe:
    """Where the image comes from: the registry base, or the Debian suite and mirror offline."""

    registry_base: str = "python:3.11-slim"
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    cache_dir: Path = field(default_factory=default_cache_dir)

    @property
    def base_tag(self) -> str:
        recipe = f"{self.suite}|{self.mirror}|{','.join(_DEBOOTSTRAP_PACKAGES)}"
        return f"{BASE_REPOSITORY}:{self.suite}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"

    @property
    def rootfs_tarball(self) -> Path:
        return self.cache_dir / f"rootfs-{self.base_tag.split(':', 1)[1]}.tar"


@dataclass(frozen=True)
class BuildOutcome:
    """What `build_image` did: the tag, whether it built anything, and from which base."""

    tag: str
    built: bool
    base: str


def build_image(recipe: ImageRecipe | None = None, *, offline: bool | None = None, force: bool = False) -> BuildOutcome:
    """Build the sandbox image for the current runner unless it exists (blocking; minutes offline).

    `offline=None` uses the registry when its base image is present or reachable.
    """
    recipe = recipe or ImageRecipe()
    tag = default_image_tag()
    client = connect()
    try:
        if not force and _image_exists(client, tag):
            log.info("sandbox image up to date", tag=tag)
            return BuildOutcome(tag, built=False, base="")
        if offline is None:
            offline = not _registry_base_available(client, recipe.registry_base)
        base = _offline_base(client, recipe) if offline else recipe.registry_base
        _build_from(client, tag, base)
        _remove_stale_images(client, keep=tag)
        return BuildOutcome(tag, built=True, base=base)
    finally:
        client.close()


def _image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except ImageNotFound:
        return False
    except DockerException as exc:
        raise SandboxError(f"cannot inspect image {name}: {docker_error(exc)}") from None
    return True


def _remove_stale_images(client: docker.DockerClient, keep: str) -> None:
    """Drop images built for earlier runners (those still used by a container stay)."""
    try:
        images = client.images.list(name=IMAGE_REPOSITORY)
    except DockerException:
        return
    for image in images:
        for stale in (t for t in image.tags if t.startswith(f"{IMAGE_REPOSITORY}:") and t != keep):
            try:
                client.images.remove(stale)
                log.info("removed the image of an earlier runner", tag=stale)
            except DockerException as exc:
                log.info("kept the image of an earlier runner", tag=stale, reason=docker_error(exc))


def _registry_base_available(client: docker.DockerClient, base: str) -> bool:
    if _image_exists(client, base):
        return True
    try:
        client.api.inspect_distribution(base)
    except DockerException as exc:
        log.info("no registry: building offline", base=base, reason=docker_error(exc))
        return False
    return True


def _build_from(client: docker.DockerClient, tag: str, base: str) -> None:
    log.info("building sandbox image", tag=tag, base=base)
    with tempfile.TemporaryDirectory(prefix="codetool-image-") as context:
        shutil.copy(DOCKERFILE, os.path.join(context, "Dockerfile"))
        shutil.copytree(RUNNER_PACKAGE, os.path.join(context, "runner"), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        try:
            client.images.build(
                path=context, tag=tag, buildargs={"BASE": base}, labels={IMAGE_LABEL: "1"}, rm=True, forcerm=True, pull=False
            )
        except BuildError as exc:
            tail = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)
            raise SandboxError(f"building {tag} FROM {base} failed: {docker_error(exc)}; log: {tail[-_LOG_TAIL_CHARS:]}") from None
        except DockerException as exc:
            raise SandboxError(f"building {tag} FROM {base} failed: {docker_error(exc)}") from None


def _offline_base(client: docker.DockerClient, recipe: ImageRecipe) -> str:
    """The debootstrapped base image, imported from the cached rootfs (made first if missing)."""
    if _image_exists(client, recipe.base_tag):
        return recipe.base_tag
    tarball = recipe.rootfs_tarball
    if not tarball.is_file():
        _debootstrap_tarball(recipe, tarball)
    repository, tag = recipe.base_tag.split(":", 1)
    log.info("importing the offline base image", tag=recipe.base_tag, tarball=str(tarball))
    try:
        client.api.import_image(src=str(tarball), repository=repository, tag=tag)
    except (APIError, DockerException) as exc:
        raise SandboxError(f"docker import of {tarball} failed: {docker_error(exc)}") from None
    if not _image_exists(client, recipe.base_tag):
        raise SandboxError(f"docker import of {tarball} did not produce {recipe.base_tag}")
    return recipe.base_tag


def _debootstrap_tarball(recipe: ImageRecipe, tarball: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise SandboxError("no registry is reachable and debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise SandboxError("the offline image build runs debootstrap, which needs root")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    log.info("debootstrapping a minimal Debian (takes minutes; cached afterwards)", suite=recipe.suite, into=str(tarball))
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=tarball.parent) as work:
        rootfs = os.path.join(work, "rootfs")
        _run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(_DEBOOTSTRAP_PACKAGES)}", recipe.suite, rootfs, recipe.mirror],
            "debootstrap",
        )
        for relative in _STRIPPED_FROM_ROOTFS:
            target = os.path.join(rootfs, relative)
            shutil.rmtree(target, ignore_errors=True)
            os.makedirs(target, exist_ok=True)
        partial = os.path.join(work, "rootfs.tar")
        _run(["tar", "--numeric-owner", "-C", rootfs, "-cf", partial, "."], "tar")
        os.replace(partial, tarball)


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SandboxError(f"{what} could not be started: {exc}") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-_LOG_TAIL_CHARS:]
        raise SandboxError(f"{what} failed with exit status {done.returncode}: {' '.join(tail.split())}")
