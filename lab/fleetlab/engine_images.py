"""The lab's llama.cpp engine images: what a site builds and pushes into its private registry.

No public registry is reachable here, so the images are built on this machine (podman build,
no network) from the lab's base image, the xllamacpp wheel and the collection's launcher
(roles/model_server/files/llamacpp_serve.py), and saved as docker archives under
.lab/artifacts/images/ for the registry role to push (registry_images). Three builds:

  b1      the engine: libgomp1 (from this machine's apt, as a mirror would serve it), xllamacpp
          unpacked under /opt/engine, the launcher as entrypoint; listens on 8080 in the container.
  b2      b1 plus one small layer (a different build file): a second good version, cheap to pull.
  broken  b1 whose entrypoint exits at once: a release that never answers.

Built once per recipe (a hash of the inputs in the image's label), kept until the recipe changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "roles" / "model_server" / "files" / "llamacpp_serve.py"
NAME = "localhost/llmfleet-engines/llamacpp"
BUILDS = ("b1", "b2", "broken")
ENTRYPOINT = '["python3", "/usr/local/lib/llmfleet/llamacpp_serve.py"]'

CONTAINERFILE_B1 = """\
FROM {base}
COPY build/ /tmp/build/
RUN dpkg -i /tmp/build/*.deb \\
 && python3 -m zipfile -e /tmp/build/engine.whl /opt/engine \\
 && install -D -m 0644 /tmp/build/llamacpp_serve.py /usr/local/lib/llmfleet/llamacpp_serve.py \\
 && rm -rf /tmp/build && echo b1 > /etc/llmfleet-engine-build
ENV PYTHONPATH=/opt/engine
EXPOSE 8080
LABEL llmfleet.recipe={recipe} org.opencontainers.image.version=b1
ENTRYPOINT {entrypoint}
CMD []
"""
CONTAINERFILE_B2 = """\
FROM {b1}
RUN echo b2 > /etc/llmfleet-engine-build
LABEL llmfleet.recipe={recipe} org.opencontainers.image.version=b2
"""
CONTAINERFILE_BROKEN = """\
FROM {b1}
LABEL llmfleet.recipe={recipe} org.opencontainers.image.version=broken
ENTRYPOINT ["sh", "-c", "echo 'llmfleet lab: this engine build is broken on purpose' >&2; exit 3", "--"]
"""


def recipe(base: str, wheel: Path) -> str:
    parts = [base, wheel.name, LAUNCHER.read_text(), CONTAINERFILE_B1, CONTAINERFILE_B2, CONTAINERFILE_BROKEN]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def archive(images: Path, build: str) -> Path:
    return images / f"llamacpp-{build}.tar"


def ensure(podman, base: str, wheel: Path, images: Path, log) -> dict[str, Path]:
    """The three builds as docker archives (build -> path), built when their recipe changed."""
    key = recipe(base, wheel)
    stamp = images / "recipe"
    paths = {build: archive(images, build) for build in BUILDS}
    if stamp.exists() and stamp.read_text().strip() == key and all(p.exists() for p in paths.values()):
        return paths
    log(f"engine images: building llama.cpp builds {', '.join(BUILDS)} (recipe {key})")
    images.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="engine-build-") as tmp:
        context = Path(tmp)
        build_dir = context / "build"
        build_dir.mkdir()
        shutil.copy(wheel, build_dir / "engine.whl")
        shutil.copy(LAUNCHER, build_dir / "llamacpp_serve.py")
        # The OpenMP runtime xllamacpp links (roles/model_server/vars: __model_server_host_packages).
        subprocess.run(["apt-get", "download", "-q", "libgomp1"], cwd=build_dir, check=True, capture_output=True)
        files = {
            "b1": CONTAINERFILE_B1.format(base=base, recipe=key, entrypoint=ENTRYPOINT),
            "b2": CONTAINERFILE_B2.format(b1=f"{NAME}:b1", recipe=key),
            "broken": CONTAINERFILE_BROKEN.format(b1=f"{NAME}:b1", recipe=key),
        }
        for build in BUILDS:
            (context / f"Containerfile.{build}").write_text(files[build])
            podman("build", "--network", "none", "--format", "docker", "-f", str(context / f"Containerfile.{build}"),
                   "-t", f"{NAME}:{build}", str(context))
    for build in BUILDS:
        partial = paths[build].with_suffix(".partial")
        partial.unlink(missing_ok=True)
        podman("save", "--format", "docker-archive", "-o", str(partial), f"{NAME}:{build}")
        partial.replace(paths[build])
    stamp.write_text(key + "\n")
    return paths
