"""The one validation pass (module_utils/fleet_validation.py, fleet_rules.py) on plain data: the roles' real
argument_specs and defaults (templated defaults given their evaluated values here, as the action
plugin evaluates them), one rule class per test. The action plugin end to end: tests/unit/test_inventory_validation.py."""

import copy
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.llmfleet.cluster.plugins.module_utils import fleet_validation as fv
from ansible_collections.llmfleet.cluster.plugins.module_utils import validation

ROLES = Path(__file__).resolve().parents[4] / "roles"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr2X0D6kqvHzRMHqhRl0rP0ZyPpDQ6b6yS7xKpZP0nT ops@example"
API_KEY = "k" * 32
MODEL = {"name": "m", "file": "m.gguf", "url": "https://artifacts.example/m.gguf", "sha256": "0" * 64}
# What the templated defaults evaluate to for the fleet below.
EVALUATED = {
    "firewall_ssh_port": 22,
    "ssh_hardening_allow_users": ["llmops"],
    "model_server_venv": "/opt/llmfleet/vllm",
    "model_store_models": [MODEL],
    "model_weights_models": [MODEL],
    "model_weights_nfs_server": "10.0.3.5",
    "rolling_update_result_file": "/tmp/rolling_update_result.json",
    "__prometheus_thresholds": {"replica_down_for": "1m", "for": "5m", "latency_p99_seconds": 2,
                                "success_rate_min": 0.99, "cpu_percent": 90, "gpu_utilisation_percent": 95},
}
INVENTORY = {"base_operator_ssh_public_keys": [KEY], "load_balancer_api_keys": [{"client": "team-a", "key": API_KEY}],
             "model_server_model_name": "m", "model_server_model_path": "/srv/models/m/m.gguf"}


def _load(role, *parts):
    path = ROLES / role / Path(*parts)
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


SPECS = {role: _load(role, "meta", "argument_specs.yml")["argument_specs"]["main"].get("options") or {}
         for role in fv.ROLE_NAMES}
VALIDATORS = {role: ArgumentSpecValidator(options) for role, options in SPECS.items()}
DEFAULTS = {}
for _role in fv.ROLE_NAMES:
    DEFAULTS.update(_load(_role, "defaults", "main.yml"))
    DEFAULTS.update(_load(_role, "vars", "main.yml"))
DEFAULTS.update(EVALUATED)


def host(name, groups, address, zone=None, **inventory):
    values = dict(DEFAULTS, **INVENTORY)
    values.update(inventory)
    values.update(ansible_host=address)
    if zone and "llmfleet_zone" not in inventory:
        values["llmfleet_zone"] = zone
    fleet_values = {k: values[k] for k in fv.FLEET_VARS if k in values}
    roles = {}
    for role in fv.ROLE_NAMES:
        if fv.role_applies(role, groups, values):
            roles[role] = {k: copy.deepcopy(values[k]) for k in list(SPECS[role]) + list(fv.DERIVED.get(role, ())) if k in values}
    return {"name": name, "groups": groups, "values": fleet_values, "roles": roles, "errors": []}


def fleet(**changes):
    """The example site's shape; changes: host name -> inventory variables for it."""
    hosts = [host("gpu-a1", ["model_nodes"], "10.0.1.11", "zone-a"), host("gpu-b1", ["model_nodes"], "10.0.2.11", "zone-b"),
             host("gpu-c1", ["model_nodes"], "10.0.3.11", "zone-c"), host("lb1", ["load_balancers"], "10.0.1.5", "zone-a"),
             host("infra1", ["infra"], "10.0.3.5", "zone-c")]
    for index, item in enumerate(hosts):
        if item["name"] in changes:
            hosts[index] = host(item["name"], item["groups"], changes[item["name"]].pop("ansible_host", item["values"]["ansible_host"]),
                                item["values"].get("llmfleet_zone"), **changes[item["name"]])
    return hosts


def problems_of(hosts, groups=None):
    groups = groups or {"model_nodes": [h["name"] for h in hosts if "model_nodes" in h["groups"]],
                        "load_balancers": ["lb1"], "infra": ["infra1"]}
    found, cache = [], {}
    for item in hosts:
        problems, item["validated"] = fv.host_problems(item, SPECS, VALIDATORS, cache)
        found += problems
    return found + fv.fleet_problems(hosts, groups)


def test_the_example_shape_is_clean():
    assert problems_of(fleet()) == []


@pytest.mark.parametrize("changes,expected", [
    # argument_specs: types, choices, nested options
    ({"lb1": {"load_balancer_https_port": "https"}}, "lb1: load_balancer_https_port: argument 'load_balancer_https_port' is of type"),
    ({"gpu-a1": {"model_server_runtime": "podman"}}, "gpu-a1: model_server_runtime: value of model_server_runtime must be one of"),
    ({"lb1": {"load_balancer_api_keys": [{"client": "a", "key": API_KEY, "rate": 5}]}},
     "lb1: load_balancer_api_keys: unknown key load_balancer_api_keys.rate (supported: client, key, models, rate_limit, tokens_per_minute)"),
    # each role's rules
    ({"gpu-a1": {"model_server_replicas": [{"port": 8000}, {"port": 8000}]}},
     "gpu-a1: model_server_replicas[1]: port 8000 is already used by replica 0"),
    ({"gpu-b1": {"nvidia_driver_source": "mirror"}}, "gpu-b1: nvidia_driver_repository_url: must be set with nvidia_driver_source mirror"),
    ({"gpu-c1": {"docker_log_max_size": "big"}}, "gpu-c1: docker_log_max_size: big is not a size such as 100m"),
    ({"lb1": {"base_apt_proxy": "htp:/x"}}, "lb1: base_apt_proxy: 'htp:/x' is not a URL"),
    ({"lb1": {"load_balancer_api_keys": [{"client": "team-a", "key": "short"}]}},
     "lb1: load_balancer_api_keys[0] (team-a): key: 24 or more printable characters"),
    ({"lb1": {"load_balancer_api_keys": [{"client": "team-a", "key": API_KEY, "tokens_per_minute": 0}]}},
     "lb1: load_balancer_api_keys[0] (team-a): tokens_per_minute: a whole number >= 1 needed"),
    ({"lb1": {"load_balancer_api_keys": [{"client": "team-a", "key": API_KEY, "tokens_per_minute": "lots"}]}},
     "lb1: load_balancer_api_keys: argument 'tokens_per_minute' is of type"),
    ({"lb1": {"load_balancer_token_budget_default_max_tokens": 0}},
     "lb1: load_balancer_token_budget_default_max_tokens: 0 is out of range: must be at least 1"),
    ({"infra1": {"prometheus_scrape_timeout": "2m"}}, "infra1: prometheus_scrape_timeout: 2m is longer than prometheus_scrape_interval"),
    ({"infra1": {"prometheus_dcgm_exporter_port": 70000}}, "infra1: prometheus_dcgm_exporter_port: 70000 is not a port (1-65535), nor 0"),
    ({"gpu-a1": {"llmfleet_zone": "Zone A"}}, "gpu-a1: llmfleet_zone: 'Zone A' is not a zone name"),
    # ranges of counts, fractions, rates and timeouts
    ({"gpu-a1": {"rolling_update_min_healthy_fraction": 1.5}}, "gpu-a1: rolling_update_min_healthy_fraction: 1.5 is out of range"),
    ({"lb1": {"load_balancer_queue_timeout": 0}}, "lb1: load_balancer_queue_timeout: 0 is out of range: must be at least 1"),
    ({"infra1": {"prometheus_alert_success_rate_min": 2}}, "infra1: prometheus_alert_success_rate_min: 2.0 is out of range"),
    ({"gpu-a1": {"rolling_update_gate_latency_ratio": 0.5}}, "gpu-a1: rolling_update_gate_latency_ratio: 0.5 is out of range"),
    # an SSH key that decodes but holds no usable key
    ({"gpu-a1": {"base_operator_ssh_public_keys": [KEY.split()[0] + " " + KEY.split()[1][:-4]]}},
     "gpu-a1: base_operator_ssh_public_keys[0]: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr2X0D6kqvHzRMHqhRl... is not a usable "
     "ssh-ed25519 key: the key data is truncated"),
])
def test_one_host_rules(changes, expected):
    found = problems_of(fleet(**changes))
    assert any(p.startswith(expected) for p in found), found


def test_port_collisions_on_one_host():
    found = problems_of(fleet(**{"gpu-a1": {"model_server_base_port": 9100},
                                 "lb1": {"load_balancer_stats_port": 443},
                                 "infra1": {"prometheus_port": 22}}))
    assert "gpu-a1: model_server_base_port (replica 0): port 9100 is also node_exporter_port's" in found
    assert any(p.startswith("lb1: load_balancer_") and "port 443 is also" in p for p in found), found
    assert "infra1: prometheus_port: port 22 is also ssh_hardening_port's" in found


def test_an_api_key_given_to_two_clients_is_refused_without_printing_it():
    keys = [{"client": "team-a", "key": API_KEY}, {"client": "team-b", "key": API_KEY}, {"client": "team-a", "key": "x" * 30}]
    found = problems_of(fleet(lb1={"load_balancer_api_keys": keys}))
    assert "lb1: load_balancer_api_keys[1] (team-b): key: the same key is given to team-a: a key names one client" in found
    assert "lb1: load_balancer_api_keys[2] (team-a): client: listed twice (also [0])" in found
    assert not any(API_KEY in p for p in found)


def test_secrets_never_appear_in_spec_messages():
    spec = {"token": {"type": "str", "choices": ["a"], "no_log": True}, "mode": {"type": "str", "choices": ["on"]}}
    found = fv.spec_problems(spec, {"token": "s3cr3t-value", "mode": "off"}, ArgumentSpecValidator(spec))[0]
    assert found == ["token: value of token must be one of: a, got: ********",
                     "mode: value of mode must be one of: on, got: off"]


def test_two_hosts_with_one_address():
    found = problems_of(fleet(**{"gpu-b1": {"ansible_host": "10.0.1.11"}}))
    assert found == ["gpu-b1: ansible_host: 10.0.1.11 is also gpu-a1's address"]


def test_names_that_break_generated_configs():
    hosts = fleet()
    hosts[0] = host("gpu_a1", ["model_nodes"], "10.0.1.11", "zone-a")
    found = problems_of(hosts)
    assert any(p.startswith("gpu_a1: inventory_hostname: 'gpu_a1' is not a host name") for p in found), found


def test_fleet_address_must_be_an_address():
    found = problems_of(fleet(lb1={"ansible_host": "lb1.dc.example.com"}))
    assert any(p.startswith("lb1: ansible_host: 'lb1.dc.example.com' is not an IP address (set llmfleet_address") for p in found)
    assert problems_of(fleet(lb1={"ansible_host": "lb1.dc.example.com", "llmfleet_address": "10.0.1.5"})) == []


def test_inventory_shape():
    hosts = fleet()
    found = problems_of(hosts, {"model_nodes": ["gpu-a1", "gpu-b1", "gpu-c1"], "load_balancers": [], "infra": []})
    assert "load_balancers: the group is empty or missing: no client could reach the model nodes" in found
    assert any(p.startswith("infra: the group is empty or missing") for p in found)


def test_model_node_without_a_zone():
    hosts = fleet()
    del hosts[0]["values"]["llmfleet_zone"]
    assert "gpu-a1: llmfleet_zone: not set: every host in model_nodes needs the zone it stands in" in problems_of(hosts)


def test_zones_the_rolling_update_cannot_take_apart():
    hosts = fleet()
    problems_of(hosts)
    assert fv.capacity_problem(hosts) == ""
    for item in hosts:
        if "model_nodes" in item["groups"]:
            item["values"]["llmfleet_zone"] = "zone-a"
    problems_of(hosts)
    assert fv.capacity_problem(hosts).startswith("model_nodes: taking zone zone-a (3 of 3 replicas of llm, 2 must stay) out")


def test_switched_off_roles_are_not_checked():
    assert problems_of(fleet(lb1={"load_balancer_enabled": False, "load_balancer_api_keys": []})) == []
    assert problems_of(fleet(lb1={"llmfleet_validate_serving": False, "load_balancer_api_keys": []})) == []


def test_unknown_variables_with_a_role_prefix_are_named_with_the_closest_known_one():
    warnings = fv.unknown_variable_warnings(
        {"gpu-a1": ["model_server_replcas", "ansible_host", "my_own_var"], "gpu-b1": ["model_server_replcas"],
         "lb1": ["nvidia_container_toolkit_versoin"]}, SPECS)
    assert warnings == [
        "gpu-a1, gpu-b1: model_server_replcas is not a variable of any llmfleet role, so it changes nothing; "
        "did you mean model_server_replicas?",
        "lb1: nvidia_container_toolkit_versoin is not a variable of any llmfleet role, so it changes nothing; "
        "did you mean nvidia_container_toolkit_version?"]


def test_every_number_a_role_takes_has_a_range_or_is_a_port():
    numbers = {name for options in SPECS.values() for name, option in options.items()
               if option.get("type") in ("int", "float") and not name.endswith("_port")}
    assert numbers - set(fv.RANGES) == set()
    assert set(fv.RANGES) - {name for options in SPECS.values() for name in options} == set()


def test_hosts_with_equal_variables_share_one_check():
    hosts = fleet()
    cache = {}
    for item in hosts:
        fv.host_problems(item, SPECS, VALIDATORS, cache)
    # base, hardening and monitoring roles are the same on all five hosts; model-node roles on three.
    assert len(cache) < sum(len(item["roles"]) for item in hosts) / 2


# --- The private registry (fleet_rules.registry_rules), nodes logging in to it (docker_registries)
# --- and the image they run (model_server_image).
PASSWORD = "pull-secret-0123"
CA = "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
REGISTRY = {"registry_users": [{"name": "puller", "password": PASSWORD}], "registry_ca_dir": "/srv/llmfleet/pki"}
LOGIN = {"address": "10.0.3.5:5000", "username": "puller", "password": PASSWORD, "ca_certificate": CA}
DIGEST = "sha256:" + "0123456789abcdef" * 4


def with_registry(registry=None, **changes):
    hosts = fleet(**changes)
    infra = next(h for h in hosts if h["name"] == "infra1")
    hosts[hosts.index(infra)] = host("infra1", ["infra", "registry"], "10.0.3.5", "zone-c", **dict(REGISTRY, **(registry or {})))
    groups = {"model_nodes": [h["name"] for h in hosts if "model_nodes" in h["groups"]], "load_balancers": ["lb1"],
              "infra": ["infra1"], "registry": ["infra1"]}
    return problems_of(hosts, groups)


def test_a_registry_with_an_account_and_a_site_ca_and_nodes_logging_in_is_clean():
    assert with_registry(**{"gpu-a1": {"docker_registries": [LOGIN], "model_server_image": "10.0.3.5:5000/engines/llamacpp@" + DIGEST}}) == []


@pytest.mark.parametrize("registry,expected", [
    ({"registry_users": []}, "infra1: registry_users: empty: the registry serves listed accounts only"),
    ({"registry_users": [{"name": "puller", "password": "short"}]}, "infra1: registry_users[0] (puller): password: 12 or more"),
    ({"registry_users": [{"name": "a", "password": PASSWORD}, {"name": "a", "password": PASSWORD}]},
     "infra1: registry_users[1]: name: a is also registry_users[0]"),
    ({"registry_users": [{"name": "a:b", "password": PASSWORD}]}, "infra1: registry_users[0]: name: 'a:b' needs letters"),
    ({"registry_users": [{"name": "a"}]}, "infra1: registry_users: missing required arguments: password found in registry_users"),
    ({"registry_ca_dir": "pki"}, "infra1: registry_ca_dir: 'pki' is not an absolute path on the controller"),
    ({"registry_ca_dir": "", "registry_tls_certificate": CA}, "infra1: registry_tls_certificate: give both"),
    ({"registry_tls_certificate": "cert", "registry_tls_private_key": "key"}, "infra1: registry_tls_certificate: not a PEM"),
    ({"registry_allowed_networks": ["10.0.0.0/33"]}, "infra1: registry_allowed_networks[0]:"),
    ({"registry_port": 9090}, "infra1: registry_port: port 9090 is also prometheus_port's"),
])
def test_bad_registry_inputs_are_named(registry, expected):
    found = with_registry(registry)
    assert any(p.startswith(expected) for p in found), found
    assert not any(PASSWORD in p for p in found)


@pytest.mark.parametrize("login,expected", [
    ({"address": "registry.example"}, "gpu-a1: docker_registries[0]: address: 'registry.example' is not HOST:PORT"),
    ({"password": ""}, "gpu-a1: docker_registries[0] (10.0.3.5:5000): password: not set (a private registry needs an account"),
    ({"username": ""}, "gpu-a1: docker_registries[0] (10.0.3.5:5000): username: not set"),
    ({"ca_certificate": "not a certificate"}, "gpu-a1: docker_registries[0] (10.0.3.5:5000): ca_certificate: not a PEM"),
])
def test_bad_registry_logins_are_named_without_the_password(login, expected):
    found = with_registry(**{"gpu-a1": {"docker_registries": [dict(LOGIN, **login)]}})
    assert any(p.startswith(expected) for p in found), found
    assert not any(PASSWORD in p for p in found)


def test_a_registry_listed_twice_and_one_without_credentials_at_all():
    found = with_registry(**{"gpu-b1": {"docker_registries": [LOGIN, LOGIN]}, "gpu-c1": {"docker_registries": [{"address": "r:5000"}]}})
    assert "gpu-b1: docker_registries[1]: address: 10.0.3.5:5000 is also docker_registries[0]" in found
    assert any(p.startswith("gpu-c1: docker_registries: missing required arguments: password, username") for p in found), found


@pytest.mark.parametrize("image,expected", [
    ("10.0.3.5:5000/Team/engine:1", "is not an image reference"),
    ("engine:1:2", "is not an image reference"),
    ("registry:5000/engine@sha256:abc", "the digest pin sha256:abc is not sha256:<64 hex digits>"),
    ("registry:5000/engine@md5:" + "0" * 32, "is not sha256:<64 hex digits>"),
    ("engine with space", "is not an image reference"),
])
def test_a_malformed_image_or_a_digest_pin_that_is_no_digest_is_refused(image, expected):
    found = with_registry(**{"gpu-a1": {"model_server_image": image}})
    assert any(p.startswith("gpu-a1: model_server_image: ") and expected in p for p in found), found


@pytest.mark.parametrize("image", [
    "vllm/vllm-openai:v0.11.0", "ghcr.io/ggml-org/llama.cpp:server", "registry.local:5000/team/engine:1.2@" + DIGEST,
    "localhost/engine", "engine@" + DIGEST, "a__b/c-d.e:tag_1",
])
def test_good_image_references(image):
    assert validation.image_problem(image) == ""


# ------------------------------------------------------------------ several models behind one endpoint

def test_two_models_on_their_own_nodes_are_clean():
    found = problems_of(fleet(**{"gpu-b1": {"model_server_name": "chat", "model_server_model_name": "qwen3-8b",
                                            "model_server_model_aliases": ["chat", "qwen3"]}}))
    # chat lives in one zone only: the rolling update could never take zone-b out (checked for the update).
    assert found == []


@pytest.mark.parametrize("changes,expected", [
    # an alias used by two models
    ({"gpu-b1": {"model_server_name": "chat", "model_server_model_name": "qwen3-8b", "model_server_model_aliases": ["default"]},
      "gpu-c1": {"model_server_name": "small", "model_server_model_name": "smollm2", "model_server_model_aliases": ["default"]}},
     "gpu-c1: model_server_model_aliases: default is also a model name or alias of model_server_name chat (on gpu-b1)"),
    # a model's name used as another's alias
    ({"gpu-b1": {"model_server_name": "chat", "model_server_model_name": "qwen3-8b", "model_server_model_aliases": ["m"]}},
     "gpu-b1: model_server_model_aliases: m is also a model name or alias of model_server_name llm (on gpu-a1)"),
    # the nodes of one model_server_name serving different models
    ({"gpu-c1": {"model_server_model_name": "other"}},
     "gpu-c1: model_server_model_name / model_server_model_aliases: other with aliases [], but gpu-a1 serves model_server_name llm "
     "as m with aliases []"),
    # one model under two model_server_names
    ({"gpu-c1": {"model_server_name": "copy"}},
     "gpu-c1: model_server_model_name: m is also a model name or alias of model_server_name llm (on gpu-a1)"),
    # names the routing rules cannot hold
    ({"gpu-a1": {"model_server_model_name": "my model"}}, "gpu-a1: model_server_model_name: 'my model' is not a model name the load balancers can route"),
    ({"gpu-a1": {"model_server_model_aliases": ["ok", "{x}"]}}, "gpu-a1: model_server_model_aliases[1]: '{x}' is not a model name"),
    ({"gpu-a1": {"model_server_model_aliases": ["m"]}},
     "gpu-a1: model_server_model_aliases[0]: 'm' is already this model's name or an earlier alias"),
    ({"gpu-a1": {"model_server_engine": "ollama", "model_server_model_aliases": ["q"]}},
     "gpu-a1: model_server_model_aliases: Ollama answers only the model names in its store"),
    ({"lb1": {"load_balancer_request_buffer_kb": 8}}, "lb1: load_balancer_request_buffer_kb: 8 is out of range: must be at least 16"),
])
def test_models_that_cannot_be_routed_are_refused(changes, expected):
    found = problems_of(fleet(**changes))
    assert any(p.startswith(expected) for p in found), found


def test_each_model_must_survive_each_zone_for_the_rolling_update():
    hosts = fleet(**{"gpu-b1": {"model_server_name": "chat", "model_server_model_name": "qwen3-8b"}})
    problems_of(hosts)
    # llm (gpu-a1, gpu-c1) may lose a zone; chat (gpu-b1 alone) may not lose zone-b.
    assert fv.capacity_problem(hosts).startswith(
        "model_nodes: taking zone zone-b (1 of 1 replicas of chat, 1 must stay) out would leave a model")


def test_a_node_whose_model_has_no_weights_source_is_refused():
    models = [MODEL]
    found = problems_of(fleet(**{"gpu-a1": {"model_weights_models": models, "model_server_model_path": "/srv/models/other/o.gguf"}}))
    assert "gpu-a1: model_server_model_path: /srv/models/other/o.gguf is under model_weights_path, but no model of " \
           "model_weights_models (m) is put there: the node has no source for its weights" in found, found
    assert not [p for p in problems_of(fleet(**{"gpu-a1": {"model_weights_models": models,
                                                           "model_server_model_path": "/srv/models/m/m.gguf"}}))
                if "no source" in p]
    # Weights the image or the host brings (outside model_weights_path) are the site's business.
    assert not [p for p in problems_of(fleet(**{"gpu-a1": {"model_server_model_path": "/opt/weights/x"}})) if "no source" in p]


def test_an_api_key_limited_to_a_model_the_fleet_does_not_serve_is_refused():
    keys = [{"client": "team-a", "key": API_KEY, "models": ["m"]}, {"client": "team-b", "key": "b" * 32, "models": ["gpt-9"]}]
    found = problems_of(fleet(lb1={"load_balancer_api_keys": keys}))
    assert found == ["lb1: load_balancer_api_keys (team-b): models: gpt-9 is not a model of the fleet (known: m)"], found
    bad = [{"client": "team-a", "key": API_KEY, "models": ["my model"]}]
    assert "lb1: load_balancer_api_keys[0] (team-a): models: 'my model' is not a model name the load balancers can " \
           "route (letters, digits and . _ : / @ + -, starting with a letter or digit, at most 128)" in \
        problems_of(fleet(lb1={"load_balancer_api_keys": bad}))


def test_a_rolling_update_of_a_model_the_fleet_does_not_serve_is_refused():
    assert problems_of(fleet(**{"gpu-a1": {"rolling_update_models": ["m"]}})) == []
    found = problems_of(fleet(**{"gpu-a1": {"rolling_update_models": ["gpt-9"]}}))
    assert found == ["gpu-a1: rolling_update_models: gpt-9 is not a model of the fleet (models: llm, m)"], found


@pytest.mark.parametrize("changes,expected", [
    ({"load_balancer_affinity": "cookie"}, "lb1: load_balancer_affinity: value of load_balancer_affinity must be one of"),
    ({"load_balancer_affinity_header": "X Session"}, "lb1: load_balancer_affinity_header: 'X Session' is not an HTTP header name"),
    ({"load_balancer_affinity_balance_factor": 100}, "lb1: load_balancer_affinity_balance_factor: 100 is out of range"),
])
def test_bad_affinity_settings_are_refused(changes, expected):
    found = problems_of(fleet(lb1=changes))
    assert any(p.startswith(expected) for p in found), found
    assert problems_of(fleet(lb1={"load_balancer_affinity": "prefix"})) == []


# ------------------------------------------------------------------ several models on one node

EMBED = {"name": "embed", "model_name": "bge-m3", "model_path": "/srv/models/bge/bge.gguf", "base_port": 8100}
BOTH = [MODEL, dict(MODEL, name="bge", file="bge.gguf")]  # the weights of both models staged on the node


def test_a_node_serving_a_second_model_is_clean_and_counts_it_everywhere():
    hosts = fleet(**{node: {"model_server_servers": [EMBED], "model_weights_models": BOTH}
                     for node in ("gpu-a1", "gpu-b1", "gpu-c1")})
    assert problems_of(hosts) == []
    # its replicas are the host's ports (against SSH, node exporter...) and a model of the fleet, per zone
    assert (8100, "model_server_servers[0] (embed) base_port (replica 0)") in fv.host_ports(
        hosts[0]["groups"], hosts[0]["validated"])
    assert fv.capacity_problem(hosts) == ""
    lonely = fleet(**{"gpu-a1": {"model_server_servers": [EMBED], "model_weights_models": BOTH}})
    problems_of(lonely)
    assert "1 of 1 replicas of embed" in fv.capacity_problem(lonely)


@pytest.mark.parametrize("entry,expected", [
    # two models of a node on one port or one GPU
    (dict(EMBED, base_port=8000), "gpu-a1: model_server_servers[0] (embed): port 8000 of embed replica 0 is also llm replica 0's"),
    (dict(EMBED, replicas=[{"port": 8100}, {"port": 8000}]),
     "gpu-a1: model_server_servers[0] (embed): port 8000 of embed replica 1 is also llm replica 0's"),
    (dict(EMBED, gpu_ids=[1], gpus_per_replica=1),
     "gpu-a1: model_server_servers[0] (embed): GPU 1 of embed replica 0 is also given to llm replica 1: two models cannot share a GPU"),
    # what an entry must name, and may not
    ({"name": "embed", "model_path": "/srv/models/bge/bge.gguf", "base_port": 8100},
     "gpu-a1: model_server_servers[0]: model_name: not set (every further server names its own)"),
    ({"name": "embed", "model_name": "bge-m3", "model_path": "/srv/models/bge/bge.gguf"},
     "gpu-a1: model_server_servers[0]: base_port: not set (or replicas)"),
    (dict(EMBED, name="llm"), "gpu-a1: model_server_servers[0]: name: llm is already the node's own model_server_name on this node"),
    (dict(EMBED, name="Embed Model"), "gpu-a1: model_server_servers[0]: name: 'Embed Model' is not a server name"),
    (dict(EMBED, port=8100), "gpu-a1: model_server_servers: unknown key model_server_servers.port (supported: "),
    (dict(EMBED, replica_count="two"), "gpu-a1: model_server_servers: argument 'replica_count' is of type"),
    # the entry's own values, checked as the node's are (rules, ranges), named by the entry
    (dict(EMBED, model_path="models/bge"), "gpu-a1: model_server_servers[0] (embed): model_server_model_path: models/bge is not an absolute path"),
    (dict(EMBED, engine="sglang"), "gpu-a1: model_server_servers[0] (embed): model_server_engine: "),
    (dict(EMBED, replica_count=0), "gpu-a1: model_server_servers[0] (embed): model_server_replica_count: 0 is out of range"),
    (dict(EMBED, model_aliases=["bge-m3"]),
     "gpu-a1: model_server_servers[0] (embed): model_server_model_aliases[0]: 'bge-m3' is already this model's name"),
    # names the fleet's routing cannot hold: an alias of another model, the same model under two names
    (dict(EMBED, model_name="m"), "gpu-a1: model_server_model_name: m is also a model name or alias of model_server_name llm"),
])
def test_a_bad_further_server_is_refused_naming_the_host_and_entry(entry, expected):
    gpus = {"model_server_gpu_ids": [0, 1], "model_server_gpus_per_replica": 1, "model_server_replica_count": 2} \
        if "gpu_ids" in entry else {}
    found = problems_of(fleet(**{"gpu-a1": dict(gpus, model_server_servers=[entry])}))
    assert any(p.startswith(expected) for p in found), found
    # said once: a port two servers share is not also a collision of the host's services
    assert len([p for p in found if "port 8000" in p]) <= 1, found


def test_a_further_servers_port_is_checked_against_the_hosts_other_services():
    found = problems_of(fleet(**{"gpu-a1": {"model_server_servers": [dict(EMBED, base_port=9100)]}}))
    assert "gpu-a1: model_server_servers[0] (embed) base_port (replica 0): port 9100 is also node_exporter_port's" in found, found


def test_a_further_server_without_a_weights_source_is_refused():
    found = problems_of(fleet(**{"gpu-a1": {"model_weights_models": [MODEL], "model_server_servers": [EMBED]}}))
    assert "gpu-a1: model_server_servers[0] (embed): model_path: /srv/models/bge/bge.gguf is under model_weights_path, but " \
           "no model of model_weights_models (m) is put there: the node has no source for its weights" in found, found


@pytest.mark.parametrize("runtime,limit,expected", [
    # systemd ignores a MemoryMax= it cannot read: the replica would run with no limit at all.
    ("systemd", "8g", "gpu-a1: model_server_memory_limit: '8g' is not a size systemd's MemoryMax= reads"),
    ("systemd", "8 GB", "gpu-a1: model_server_memory_limit: '8 GB' is not a size systemd's MemoryMax= reads"),
    ("docker", "lots", "gpu-a1: model_server_memory_limit: 'lots' is not a size such as 8g or 512m"),
    ("docker", "8X", "gpu-a1: model_server_memory_limit: '8X' is not a size such as 8g or 512m"),
])
def test_a_memory_limit_the_runtime_cannot_read_is_refused(runtime, limit, expected):
    found = problems_of(fleet(**{"gpu-a1": {"model_server_runtime": runtime, "model_server_memory_limit": limit}}))
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize("runtime,limit", [
    ("systemd", "8G"), ("systemd", "1.5G"), ("systemd", "50%"), ("systemd", "infinity"), ("systemd", ""),
    ("docker", "8g"), ("docker", "8G"), ("docker", "512MiB"), ("docker", "1073741824"), ("docker", ""),
])
def test_a_memory_limit_the_runtime_reads_is_clean(runtime, limit):
    assert problems_of(fleet(**{"gpu-a1": {"model_server_runtime": runtime, "model_server_memory_limit": limit}})) == []


def test_a_further_servers_memory_limit_is_checked_against_its_own_runtime():
    entry = {"name": "embed", "model_name": "bge-m3", "model_path": "/srv/models/bge/bge.gguf", "base_port": 8100,
             "runtime": "systemd", "memory_limit": "2g"}
    found = problems_of(fleet(**{"gpu-a1": {"model_server_servers": [entry]}}))
    assert "gpu-a1: model_server_servers[0] (embed): model_server_memory_limit: '2g' is not a size systemd's " \
           "MemoryMax= reads (such as 8G or 512M: K, M, G, T in upper case; or 50%)" in found, found
