"""Every package a role installs from apt comes without Debian's recommends: a host gets what the role
uses and no more (a smaller surface to patch and audit, and a faster first converge: os_hardening's
packages are 47 with recommends, 30 without). A recommend a role does use is named in its list (see
os_hardening's cracklib-runtime)."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def tasks_of(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from tasks_of(task.get(key))


def apt_installs():
    for path in sorted([*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("roles/*/handlers/*.yml")]):
        for task in tasks_of(yaml.safe_load(path.read_text())):
            module = task.get("ansible.builtin.apt")
            if isinstance(module, dict) and "name" in module:
                yield path.relative_to(REPO), task.get("name"), module


def test_every_apt_install_leaves_out_recommends():
    found = list(apt_installs())
    assert len(found) >= 15, found   # the walk reaches into blocks
    with_recommends = [(str(path), name) for path, name, module in found if module.get("install_recommends") is not False]
    assert with_recommends == []


def test_os_hardening_names_the_dictionary_pam_pwquality_reads():
    packages = yaml.safe_load((REPO / "roles/os_hardening/vars/main.yml").read_text())["__os_hardening_packages"]
    assert "'libpam-pwquality', 'cracklib-runtime'" in packages
