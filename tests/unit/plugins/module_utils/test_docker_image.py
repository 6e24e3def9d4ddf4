"""module_utils/docker_image.py: what a pull would bring, from a fake engine (the docker SDK's interface)."""

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import docker_image

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
REF = "10.0.0.5:5000/engines/llamacpp:b1"


class NotFound(Exception):
    pass


class Engine:
    """images.get_registry_data(ref).id and images.get(ref).attrs, as docker.DockerClient has them."""

    def __init__(self, registry=None, local=None, fail=None):
        self.registry, self.local, self.fail, self.asked = registry or {}, local or {}, fail, []
        self.images = self

    def get_registry_data(self, ref):
        self.asked.append(ref)
        if self.fail:
            raise self.fail
        return type("RegistryData", (), {"id": self.registry[ref]})()

    def get(self, ref):
        if ref not in self.local:
            raise NotFound(ref)
        return type("Image", (), {"attrs": {"RepoDigests": self.local[ref]}})()


def test_a_tag_the_node_holds_needs_no_pull():
    engine = Engine({REF: OLD}, {REF: ["10.0.0.5:5000/engines/llamacpp@" + OLD]})
    assert docker_image.registry_digest(engine, REF, not_found=(NotFound,)) == {
        "digest": OLD, "repo_digest": "10.0.0.5:5000/engines/llamacpp@" + OLD, "present": True, "pull_needed": False}


def test_a_tag_moved_in_the_registry_needs_a_pull():
    engine = Engine({REF: NEW}, {REF: ["10.0.0.5:5000/engines/llamacpp@" + OLD]})
    result = docker_image.registry_digest(engine, REF, not_found=(NotFound,))
    assert result["pull_needed"] and result["repo_digest"].endswith(NEW)


def test_an_image_the_node_does_not_have_needs_a_pull():
    result = docker_image.registry_digest(Engine({REF: NEW}), REF, not_found=(NotFound,))
    assert result["pull_needed"] and not result["present"]


def test_a_digest_reference_is_not_asked_about():
    engine = Engine(local={})
    ref = "10.0.0.5:5000/engines/llamacpp@" + OLD
    assert docker_image.registry_digest(engine, ref, not_found=(NotFound,))["digest"] == OLD
    assert engine.asked == []


def test_docker_hub_names_are_pinned_as_the_engine_names_them():
    engine = Engine({"docker.io/vllm/vllm-openai:v0.6.3": NEW})
    assert docker_image.registry_digest(engine, "docker.io/vllm/vllm-openai:v0.6.3", not_found=(NotFound,))[
        "repo_digest"] == "vllm/vllm-openai@" + NEW


@pytest.mark.parametrize("engine, ref, message", [
    (Engine(fail=RuntimeError("unauthorized: authentication required")), REF, "did not say what it names: unauthorized"),
    (Engine({REF: "latest"}), REF, "not a sha256 digest"),
    (Engine(), "engines/llamacpp@sha256:short", "is not a sha256 digest"),
])
def test_what_cannot_be_known_is_an_error_naming_the_image(engine, ref, message):
    with pytest.raises(docker_image.ImageDigestError, match=message) as exc:
        docker_image.registry_digest(engine, ref, not_found=(NotFound,))
    assert str(exc.value).startswith(ref.split("@")[0])
