"""site.yml run inside the execution environment (ee/execution-environment.yml, built by scripts/ee-build)
against the lab, as AWX / Ansible Automation Platform runs a job: ansible-runner with process isolation
in the image, the collection as the image holds it (nothing of the repository is mounted: the playbook
is llmfleet.cluster.site), the inventory and a machine credential (the admin key, which ansible-runner
loads into an ssh-agent in the container from env/ssh_key) in the private data directory.

In check mode, on the converged lab: the run must reach every host and fail nowhere. Manual
(-m manual): the build takes 1.5-2.5 min and the run about as long as a no-op site.yml, beyond CI's
budget. LLMFLEET_EE_IMAGE=IMAGE uses an image built already.
"""

import json
import os
import shutil
import subprocess

import pytest
from conftest import REPO

pytestmark = [pytest.mark.lab, pytest.mark.manual]

COLLECTION = "/usr/share/ansible/collections/ansible_collections/llmfleet/cluster/"


def ee_image():
    image = os.environ.get("LLMFLEET_EE_IMAGE")
    if image:
        return image
    image = "localhost/llmfleet-ee:test"
    proc = subprocess.run([str(REPO / "scripts" / "ee-build"), "--tag", image], capture_output=True, text=True,
                          timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout.strip().splitlines()[-1])
    return image


def test_site_check_runs_in_the_execution_environment(converged_lab, tmp_path, monkeypatch):
    import ansible_runner

    image = ee_image()
    private = tmp_path / "runner"
    lab_vars = converged_lab.load_inventory()["all"]["vars"]
    key = lab_vars["ansible_ssh_private_key_file"]

    def as_a_job_template(inv):
        # The key comes from the credential (env/ssh_key), the host keys from the private data dir.
        fleet = inv["all"]["vars"]
        del fleet["ansible_ssh_private_key_file"]
        fleet["ansible_ssh_common_args"] = "-o UserKnownHostsFile=/runner/ssh/known_hosts -o StrictHostKeyChecking=yes"

    converged_lab.inventory_copy(private, as_a_job_template)
    (private / "ssh").mkdir()
    shutil.copy(REPO / ".lab" / "ssh" / "known_hosts", private / "ssh" / "known_hosts")
    (private / "env").mkdir()
    shutil.copy(key, private / "env" / "ssh_key")
    # What the lab inventory reads on the controller: the site CA's certificate and the engine builds
    # the registry role pushes (read-only, at the paths the inventory names).
    mounts = [f"{path}:{path}:ro" for path in (lab_vars["llmfleet_lab_pki_dir"], REPO / ".lab" / "artifacts" / "images")]
    monkeypatch.setenv("CONTAINERS_CONF", str(REPO / "lab" / "containers.conf"))
    runner = ansible_runner.run(
        private_data_dir=str(private),
        playbook="llmfleet.cluster.site",
        cmdline="--check",
        process_isolation=True,
        process_isolation_executable="podman",
        container_image=image,
        # The lab network is this machine's bridge: the job reaches it as the controller does. Root in
        # the container: podman runs rootful here, and the image's user (1000) cannot read the root-owned
        # private data directory (AWX runs rootless podman, where the job's own user is mapped in).
        container_options=["--network=host", "--user=0"],
        container_volume_mounts=mounts,
        envvars={"ANSIBLE_FORKS": "20", "ANSIBLE_PIPELINING": "True"},
        quiet=True,
        timeout=1800,
    )
    stdout = runner.stdout.read()
    assert runner.rc == 0, f"rc {runner.rc}: {runner.stats}\n{stdout[-6000:]}"
    stats = runner.stats
    assert not stats["failures"] and not stats["dark"], stats
    assert set(stats["ok"]) >= set(converged_lab.hosts)
    # Every role task came from the image's collection.
    paths = {event["event_data"].get("task_path", "") for event in runner.events
             if event.get("event") == "runner_on_ok" and "/roles/" in event["event_data"].get("task_path", "")}
    assert paths and all(path.startswith(COLLECTION) for path in paths), sorted(paths)[:5]
    summary = {"image": image, "ok": len(stats["ok"]), "changed": stats["changed"], "role_task_files": len(paths)}
    (REPO / ".lab" / "results").mkdir(parents=True, exist_ok=True)
    (REPO / ".lab" / "results" / "execution-environment.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
