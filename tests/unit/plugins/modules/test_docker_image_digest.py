"""The docker_image_digest module with a fake docker SDK: changed only in check mode, and only when a pull
would change the node; an engine that does not answer is an error naming the image."""

import types

import pytest

from ansible_collections.llmfleet.cluster.plugins.modules import docker_image_digest

REF = "10.0.0.5:5000/engines/llamacpp:b1"
OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64


def fake_docker(registry_digest, local_digests, broken=False):
    class DockerException(Exception):
        pass

    class ImageNotFound(DockerException):
        pass

    class Images:
        def get_registry_data(self, ref):
            return types.SimpleNamespace(id=registry_digest)

        def get(self, ref):
            if local_digests is None:
                raise ImageNotFound(ref)
            return types.SimpleNamespace(attrs={"RepoDigests": ["10.0.0.5:5000/engines/llamacpp@" + d for d in local_digests]})

    def from_env():
        if broken:
            raise DockerException("Error while fetching server API version: connection refused")
        return types.SimpleNamespace(images=Images())

    errors = types.SimpleNamespace(DockerException=DockerException, ImageNotFound=ImageNotFound)
    return types.SimpleNamespace(from_env=from_env, errors=errors)


@pytest.mark.parametrize("check_mode, local, changed", [
    (True, [OLD], False),      # converged: --check shows nothing
    (True, [NEW], True),       # the tag moved in the registry: --check shows the pull
    (True, None, True),        # not on the node yet
    (False, None, False),      # outside check mode it only reports
])
def test_changed_means_a_pull_would_change_the_node_in_check_mode(monkeypatch, module_runner, check_mode, local, changed):
    monkeypatch.setattr(docker_image_digest, "docker", fake_docker(OLD, local), raising=False)
    monkeypatch.setattr(docker_image_digest, "HAS_DOCKER", True)
    code, result = module_runner(docker_image_digest.main, {"name": REF, "_ansible_check_mode": check_mode})
    assert code == 0, result
    assert result["changed"] is changed
    assert result["repo_digest"] == "10.0.0.5:5000/engines/llamacpp@" + OLD
    assert result["pull_needed"] is (local != [OLD])


def test_an_engine_that_does_not_answer_is_an_error_naming_the_image(monkeypatch, module_runner):
    monkeypatch.setattr(docker_image_digest, "docker", fake_docker(OLD, [OLD], broken=True), raising=False)
    monkeypatch.setattr(docker_image_digest, "HAS_DOCKER", True)
    code, result = module_runner(docker_image_digest.main, {"name": REF})
    assert code == 1 and result["msg"].startswith(REF + ": the Docker engine did not answer")


def test_without_the_sdk_it_says_what_to_install(monkeypatch, module_runner):
    monkeypatch.setattr(docker_image_digest, "HAS_DOCKER", False)
    code, result = module_runner(docker_image_digest.main, {"name": REF})
    assert code == 1 and "python3-docker" in result["msg"]
