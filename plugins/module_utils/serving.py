# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Model-server replicas and the load-balancer members made of them.

One place decides, per engine, the port inside a container, the readiness and metrics paths,
the command line and the GPU flags (facts in docs and ../shared/reference/model-servers.md), how
a host's replicas are laid out (ports, GPU ids), and what the load balancers call each replica.
The model_server role, the load_balancer role and the rolling update all use these functions,
so a replica has the same name everywhere.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.llmfleet.cluster.plugins.module_utils import validation, zones

# health_path: what the load balancer checks (200 only when the engine can serve; vLLM's /health
# can be 200 before it serves, vllm#15313, so the rolling update's gate sends a real completion).
# metrics_path: None where the engine has no Prometheus endpoint (Ollama).
# stop_timeout: seconds between SIGTERM and SIGKILL; TGI drains for 90 s by default.
ENGINES = {
    "vllm": {
        "container_port": 8000,
        "health_path": "/health",
        "metrics_path": "/metrics",
        "image": "vllm/vllm-openai:v0.11.0",
        "stop_timeout": 60,
        "shm_size": None,
        "ipc_host": True,
    },
    "tgi": {
        "container_port": 80,
        "health_path": "/health",
        "metrics_path": "/metrics",
        "image": "ghcr.io/huggingface/text-generation-inference:3.3.6",
        "stop_timeout": 100,
        "shm_size": "1g",
        "ipc_host": False,
    },
    "ollama": {
        "container_port": 11434,
        "health_path": "/api/version",
        "metrics_path": None,
        "image": "ollama/ollama:0.12.6",
        "stop_timeout": 30,
        "shm_size": None,
        "ipc_host": False,
    },
    "llamacpp": {
        "container_port": 8080,
        "health_path": "/health",
        "metrics_path": "/metrics",
        "image": "ghcr.io/ggml-org/llama.cpp:server",
        "stop_timeout": 30,
        "shm_size": None,
        "ipc_host": False,
    },
}
RUNTIMES = ("docker", "systemd")
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
REPLICA_KEYS = ("port", "gpus")


def engine_problem(engine):
    if engine not in ENGINES:
        return "%s is not a known engine (%s)" % (validation._describe(engine), ", ".join(sorted(ENGINES)))
    return ""


def _gpu_id_problem(value):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip():
        return "%s is not a GPU index or UUID" % validation._describe(value)
    text = str(value)
    if text.isdigit() or re.match(r"^(GPU|MIG)-[0-9a-fA-F-]+$", text):
        return ""
    return "%s is not a GPU index or UUID (GPU-..., MIG-...)" % validation._describe(value)


def plan_replicas(count, base_port, gpu_ids=(), gpus_per_replica=0, explicit=()):
    """The host's replicas: [{"index": i, "port": p, "gpus": [ids]}].

    explicit: a list of {"port": p, "gpus": [ids]} that replaces the generated layout.
    Otherwise count replicas on base_port, base_port+1, ..., each with the next
    gpus_per_replica ids of gpu_ids. Raises ValueError naming the variable that is wrong.
    """
    replicas = []
    if explicit:
        for index, item in enumerate(explicit):
            if not isinstance(item, dict):
                raise ValueError("model_server_replicas[%d]: give a mapping with port and gpus" % index)
            unknown = sorted(set(item) - set(REPLICA_KEYS))
            if unknown:
                raise ValueError("model_server_replicas[%d]: unknown keys %s (port, gpus)" % (index, ", ".join(unknown)))
            if "port" not in item:
                raise ValueError("model_server_replicas[%d]: port: not set" % index)
            gpus = item.get("gpus", [])
            if isinstance(gpus, (str, int)):
                gpus = [gpus]
            replicas.append({"index": index, "port": item["port"], "gpus": list(gpus)})
        source = "model_server_replicas[%d]"
    else:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("model_server_replica_count: %s is not a whole number >= 1" % validation._describe(count))
        problem = validation.port_problem(base_port)
        if problem:
            raise ValueError("model_server_base_port: %s" % problem)
        if isinstance(gpus_per_replica, bool) or not isinstance(gpus_per_replica, int) or gpus_per_replica < 0:
            raise ValueError("model_server_gpus_per_replica: %s is not a whole number >= 0"
                             % validation._describe(gpus_per_replica))
        gpu_ids = list(gpu_ids or [])
        needed = count * gpus_per_replica
        if len(gpu_ids) < needed:
            raise ValueError("model_server_gpu_ids: %d replicas x %d GPUs need %d GPU ids, %d given (%s)"
                             % (count, gpus_per_replica, needed, len(gpu_ids),
                                ", ".join(str(g) for g in gpu_ids) or "none"))
        for index in range(count):
            replicas.append({"index": index, "port": int(base_port) + index,
                             "gpus": gpu_ids[index * gpus_per_replica:(index + 1) * gpus_per_replica]})
        source = "model_server_replica_count/model_server_base_port (replica %d)"
    seen_ports = {}
    seen_gpus = {}
    for replica in replicas:
        where = source % replica["index"]
        problem = validation.port_problem(replica["port"])
        if problem:
            raise ValueError("%s: port: %s" % (where, problem))
        replica["port"] = int(replica["port"])
        if replica["port"] in seen_ports:
            raise ValueError("%s: port %d is already used by replica %d: every replica needs its own port"
                             % (where, replica["port"], seen_ports[replica["port"]]))
        seen_ports[replica["port"]] = replica["index"]
        for gpu in replica["gpus"]:
            problem = _gpu_id_problem(gpu)
            if problem:
                raise ValueError("%s: gpus: %s" % (where, problem))
            if str(gpu) in seen_gpus:
                raise ValueError("%s: GPU %s is already given to replica %d" % (where, gpu, seen_gpus[str(gpu)]))
            seen_gpus[str(gpu)] = replica["index"]
        replica["gpus"] = [str(g) for g in replica["gpus"]]
    return replicas


def replica_unit(service_name, index):
    """systemd unit / container name of one replica."""
    return "llmfleet-%s-%d" % (service_name, index)


def replica_watch(runtime, service_name, index):
    """What health_gate watches for restarts: systemd:UNIT.service or docker:CONTAINER."""
    name = replica_unit(service_name, index)
    return "docker:" + name if runtime == "docker" else "systemd:%s.service" % name


def server_name(host, index, server=None):
    """What every load balancer calls a replica (HAProxy server, nginx comment, rolling update). server: the
    model_server_name of a further server of the node (model_server_servers); the node's own server's
    replicas keep the shorter name, so a node that gains a second model renames none of its replicas."""
    return "%s-%s-r%d" % (host, server, index) if server else "%s-r%d" % (host, index)


def replica_server_name(host, server_plan, index):
    """server_name of replica index of one server of a node's plan (plan_servers)."""
    return server_name(host, index, None if server_plan.get("main", True) else server_plan["name"])


# --- Several models on one node ------------------------------------------------------------------
# A node serves its own model (the model_server_* variables) and, with model_server_servers, further
# ones: each entry is a server of its own (units or containers llmfleet-NAME-INDEX, its own record,
# firewall openings and load-balancer backend), written as model_server options without the prefix.
# What the server is and where it runs - its name, model, replicas, ports and GPU ids and its engine
# arguments - is the entry's own (the role's defaults where it gives none: one replica, no GPU); the
# software and limits (engine, runtime, image, packages, environment, llama.cpp slots, memory...) are
# the node's unless the entry gives them.
SERVER_OWN = {
    "name": None, "model_name": "", "model_aliases": [], "model_path": "", "replica_count": 1, "base_port": None,
    "gpu_ids": [], "gpus_per_replica": 0, "replicas": [], "extra_args": [],
}
SERVER_INHERITED = (
    "engine", "runtime", "image", "environment", "pip_packages", "venv", "llamacpp_parallel", "llamacpp_ctx_size",
    "llamacpp_threads", "memory_limit", "cpus", "stop_timeout", "restart_sec", "ready_timeout", "ready_prompt",
)
SERVER_OPTIONS = tuple(SERVER_OWN) + SERVER_INHERITED
PREFIX = "model_server_"


def node_servers(values):
    """Every server of a node as the model_server role runs it: [{model_server_<option>: value}] for the
    options of SERVER_OPTIONS, the node's own server first, then each model_server_servers entry.
    values: the node's model_server_* values. Raises ValueError naming the entry and key."""
    own = dict((PREFIX + option, values.get(PREFIX + option)) for option in SERVER_OPTIONS)
    servers = [own]
    entries = values.get(PREFIX + "servers") or []
    if not isinstance(entries, list):
        raise ValueError("model_server_servers: give a list of servers (mappings)")
    names = {own[PREFIX + "name"]: "the node's own model_server_name"}
    for position, entry in enumerate(entries):
        where = "model_server_servers[%d]" % position
        if not isinstance(entry, dict):
            raise ValueError("%s: give a mapping of model_server options without the prefix (name, model_name, ...)" % where)
        given = dict((key, value) for key, value in entry.items() if value is not None)
        unknown = sorted(set(given) - set(SERVER_OPTIONS))
        if unknown:
            raise ValueError("%s: unknown keys %s (supported: %s)"
                             % (where, ", ".join(map(str, unknown)), ", ".join(SERVER_OPTIONS)))
        for key in ("name", "model_name", "model_path"):
            if not given.get(key):
                raise ValueError("%s: %s: not set (every further server names its own)" % (where, key))
        if "base_port" not in given and not given.get("replicas"):
            raise ValueError("%s: base_port: not set (or replicas): its ports must differ from the node's other servers'"
                             % where)
        name = given["name"]
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ValueError("%s: name: %s is not a server name (lower-case letters, digits and -, at most 32)"
                             % (where, validation._describe(name)))
        if name in names:
            raise ValueError("%s: name: %s is already %s on this node" % (where, name, names[name]))
        names[name] = where
        server = dict(own)
        server.update((PREFIX + key, value) for key, value in SERVER_OWN.items())
        server.update((PREFIX + key, value) for key, value in given.items())
        servers.append(server)
    return servers


REPLICA_NAME = re.compile(r"^llmfleet-(.+)-[0-9]+$")


def retired_servers(found, names):
    """The servers a node still has replicas or a record of but no longer serves: [{"name", "containers"}].
    found: lines "unit llmfleet-NAME-INDEX", "container llmfleet-NAME-INDEX" or "record NAME" (what is on the
    node); names: the model_server_names it serves."""
    retired = {}
    for line in found:
        kind, _sep, value = line.strip().partition(" ")
        match = REPLICA_NAME.match(value) if kind in ("unit", "container") else None
        name = match.group(1) if match else (value if kind == "record" else "")
        if not NAME_PATTERN.match(name) or name in names:
            continue
        entry = retired.setdefault(name, {"name": name, "containers": []})
        if kind == "container":
            entry["containers"].append(value)
    return [retired[name] for name in sorted(retired)]


def node_plan(address, servers):
    """A node's model_server_plan: {"address", "servers": [{"name", "main", "runtime", "engine", "model_name",
    "model_aliases", "health_path", "replicas"}]}, and the first server's keys beside them (what a node with one
    server always had). servers: node_servers. Raises ValueError when two servers of the node would share a port
    or a GPU (naming both), or a server's layout is wrong."""
    plans = []
    ports = {}
    gpus = {}
    for position, server in enumerate(servers):
        def value(option, server=server):
            return server.get(PREFIX + option)
        where = "" if position == 0 else "model_server_servers[%d] (%s): " % (position - 1, value("name"))
        try:
            replicas = plan_replicas(value("replica_count"), value("base_port"), value("gpu_ids") or [],
                                     value("gpus_per_replica"), value("replicas") or [])
        except ValueError as exc:
            raise ValueError(where + str(exc))
        for replica in replicas:
            owner = "%s replica %d" % (value("name"), replica["index"])
            if replica["port"] in ports:
                raise ValueError("%sport %d of %s is also %s's: every server of a node needs its own ports"
                                 % (where, replica["port"], owner, ports[replica["port"]]))
            ports[replica["port"]] = owner
            for gpu in replica["gpus"]:
                if gpu in gpus:  # within one server plan_replicas said it already
                    raise ValueError("%sGPU %s of %s is also given to %s: two models cannot share a GPU"
                                     % (where, gpu, owner, gpus[gpu]))
                gpus[gpu] = owner
        engine = value("engine")
        plans.append({
            "name": value("name"), "main": position == 0, "runtime": value("runtime"), "engine": engine,
            "model_name": value("model_name"), "model_aliases": list(value("model_aliases") or []),
            "health_path": ENGINES[engine]["health_path"] if engine in ENGINES else "/health",
            "replicas": replicas,
        })
    plan = dict(plans[0])
    plan.pop("main")
    plan.update({"address": address, "servers": plans})
    return plan


def plan_servers(plan):
    """The servers of a node's model_server_plan (a plan made before several servers per node: itself)."""
    return plan["servers"] if "servers" in plan else [dict(plan, main=True)]


def server_plan(plan, name):
    """One server of a node's plan, by its model_server_name."""
    for server in plan_servers(plan):
        if server["name"] == name:
            return server
    raise ValueError("model_server_plan has no server %s (servers: %s): plan the node again (serving_plan.yml)"
                     % (name, ", ".join(s["name"] for s in plan_servers(plan))))


# The firewall owners of a node's model servers (ufw rule comments: `llmfleet OWNER`): the node's own, for
# the routed rules its containers share, and each server's, for its replica ports.
NODE_FIREWALL_OWNER = "model servers"


def firewall_owner(name):
    return "model server %s" % name


def firewall_rules(plan, selected, networks):
    """What one call of the firewall (its rules.yml: firewall_rules_owner, _owners, firewall_rules) opens
    for a node's model servers: the routed rules the node's containers need, owned by the node (Docker
    rewrites a published port to the engine's container port before the DOCKER-USER chain sees it, and
    every server of one engine in containers publishes from that port: owned by each server, retiring one
    would close it for the others), and the replica ports of each selected server, owned by that server.
    One call for all of them: a call is a round trip to the node (about a second of a run on the lab),
    and a node's servers cost one per server before.

    selected: the servers the call runs (model_server_select_servers: model_server_* values), with the
    release each runs now - a rollback's recorded one. Their runtime and engine decide their containers'
    ports, not the plan's: a rolling update that switched a server's runtime or engine and failed rolls
    it back to the recorded one, whose containers still need their routed rule although the plan (the
    inventory's) no longer names it. The other servers of the node count as the plan has them."""
    running = {s["name"]: (s["runtime"], s["engine"]) for s in plan_servers(plan)}
    for server in selected:
        running[server[PREFIX + "name"]] = (server[PREFIX + "runtime"], server[PREFIX + "engine"])
    rules = [{"port": port, "proto": "tcp", "route": True, "comment": "containers", "from": list(networks)}
             for port in sorted(set(ENGINES[engine]["container_port"] for runtime, engine in running.values()
                                    if runtime == "docker"))]
    owners = []
    for server in selected:
        name = server[PREFIX + "name"]
        owners.append(firewall_owner(name))
        rules += [{"port": replica["port"], "proto": "tcp", "from": list(networks), "owner": firewall_owner(name)}
                  for replica in server_plan(plan, name)["replicas"]]
    return {"owner": NODE_FIREWALL_OWNER, "owners": owners, "rules": rules}


def lb_members(model_hosts, hostvars, plan_fact="model_server_plan"):
    """Load-balancer members from the model nodes' replica plans.

    model_hosts: the model nodes (inventory names); hostvars: Ansible's hostvars. Each node must
    carry the fact plan_fact (set by the model_server role's plan.yml): {"address", "replicas",
    "health_path", "name", "model_name", "model_aliases"}.
    Returns [{"name", "host", "zone", "address", "port", "index", "health_path", "backend", "model",
    "aliases"}] in zone order; backend is the node's model_server_name (one backend per model).
    """
    members = []
    missing = [h for h in model_hosts if plan_fact not in (hostvars.get(h) or {})]
    if missing:
        raise ValueError("no replica plan for %s: run the load balancers together with the model nodes "
                         "(playbooks/serving.yml plans every model node's replicas first; keep them in --limit)"
                         % ", ".join(sorted(missing, key=zones.natural_key)))
    zone_of = {h: hostvars[h].get("llmfleet_zone") or zones.NO_ZONE for h in model_hosts}
    for host in zones.in_zone_order(model_hosts, zone_of):
        plan = hostvars[host][plan_fact]
        for server in plan_servers(plan):
            for replica in server["replicas"]:
                members.append({
                    "name": replica_server_name(host, server, replica["index"]),
                    "host": host,
                    "zone": zone_of[host],
                    "address": plan["address"],
                    "port": replica["port"],
                    "index": replica["index"],
                    "health_path": server["health_path"],
                    "backend": server.get("name") or DEFAULT_BACKEND,
                    "model": server.get("model_name", ""),
                    "aliases": list(server.get("model_aliases") or []),
                })
    return members


# --- Several models behind one endpoint ----------------------------------------------------------
# A model is what the nodes of one model_server_name serve: its replicas form one load-balancer
# backend (HAProxy backend / nginx upstream) named after it, and a request goes to the backend whose
# model name or alias is the "model" of its body. One model: the backend "llm", as before.

DEFAULT_BACKEND = "llm"
# What a model name or alias may be: it is a key of the load balancers' routing rules (HAProxy ACL
# words, nginx map keys) and an id in /v1/models, so no spaces, quotes or braces.
MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")


def model_id_problem(value):
    """'' or why value cannot be a model name or alias."""
    if not isinstance(value, str) or not MODEL_ID_PATTERN.match(value):
        return ("%s is not a model name the load balancers can route (letters, digits and . _ : / @ + -, "
                "starting with a letter or digit, at most 128)" % validation._describe(value))
    return ""


def model_conflicts(entries):
    """Problems of a fleet's models, one line each naming a host and a variable.

    entries: [(host, backend, model, aliases)] for every model node, in inventory order. Every node of
    one backend (model_server_name) must serve the same model under the same aliases, and no name or
    alias may belong to two backends: a request for it could not be routed.
    """
    first = {}   # backend -> (host, model, aliases)
    owner = {}   # name or alias -> (backend, host)
    problems = []
    for host, backend, model, aliases in entries:
        aliases = tuple(aliases or ())
        seen = first.setdefault(backend, (host, model, aliases))
        if seen[1:] != (model, aliases):
            problems.append("%s: model_server_model_name / model_server_model_aliases: %s with aliases [%s], but %s "
                            "serves model_server_name %s as %s with aliases [%s]: the nodes of one model_server_name "
                            "serve one model (give another model its own model_server_name)"
                            % (host, model, ", ".join(aliases), seen[0], backend, seen[1], ", ".join(seen[2])))
            continue
        if seen[0] != host:
            continue
        for variable, name in [("model_server_model_name", model)] + [("model_server_model_aliases", a) for a in aliases]:
            other = owner.setdefault(name, (backend, host))
            if other[0] != backend:
                problems.append("%s: %s: %s is also a model name or alias of model_server_name %s (on %s): a "
                                "request for it could not be routed" % (host, variable, name, other[0], other[1]))
    return problems


def lb_backends(members):
    """The load balancers' backends: [{"name", "model", "aliases", "ids", "health_path", "members"}], one per
    model in the order its first member comes (zone order), from lb_members. Raises ValueError on
    conflicting models (see model_conflicts)."""
    backends = {}
    entries = []
    for member in members:
        backend = backends.get(member["backend"])
        if backend is None:
            backend = backends[member["backend"]] = {
                "name": member["backend"], "model": member["model"], "aliases": list(member["aliases"]),
                "ids": [member["model"]] + list(member["aliases"]), "health_path": member.get("health_path"),
                "members": []}
        if not backend["members"] or backend["members"][-1]["host"] != member["host"]:
            entries.append((member["host"], member["backend"], member["model"], member["aliases"]))
        backend["members"].append(member)
    problems = model_conflicts(entries)
    if problems:
        raise ValueError("; ".join(problems))
    return list(backends.values())


def model_backends(backends, names, where, by_backend_name=False, listing="known"):
    """The backends names mean: sorted, without repeats. names: model names or aliases (with
    by_backend_name, model_server_names too); backends: [{"name", "ids"}] (lb_backends). Raises ValueError
    "WHERE: x is not a model of the fleet (LISTING: every name)" for a name no model has."""
    backend_of = dict((name, backend["name"]) for backend in backends for name in backend["ids"])
    if by_backend_name:
        for backend in backends:
            backend_of.setdefault(backend["name"], backend["name"])
    unknown = [n for n in names if n not in backend_of]
    if unknown:
        raise ValueError("%s: %s %s not a model of the fleet (%s: %s)"
                         % (where, ", ".join(map(str, unknown)), "is" if len(unknown) == 1 else "are", listing,
                            ", ".join(sorted(n for n in backend_of if n))))
    return sorted(set(backend_of[n] for n in names))


def key_scopes(api_keys, backends):
    """{client: [backend, ...]} of the API keys limited to some models (entries with "models": names or
    aliases of the fleet's models); a client without "models" may use every model and is not listed.
    Raises ValueError naming the client and the unknown model."""
    return dict((entry["client"], model_backends(backends, entry["models"],
                                                 "load_balancer_api_keys (%s): models" % entry.get("client")))
                for entry in api_keys or [] if entry.get("models"))


def models_document(backends):
    """GET /v1/models as the load balancers answer it (OpenAI's list format): every name and alias."""
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "llmfleet"}
            for backend in backends for name in backend["ids"]]
    return json.dumps({"object": "list", "data": data}, separators=(",", ":"), sort_keys=True)


def _flag_args(extra_args):
    return [str(a) for a in (extra_args or [])]


def engine_command(engine, model_path, model_name, port, host="0.0.0.0", gpus=(), extra_args=(), runtime="systemd",
                   launcher="/usr/local/lib/llmfleet/llamacpp_serve.py", python="python3", llamacpp=None, aliases=()):
    """Command line of one replica. In a container the engine listens on its own port (the
    container port is published as the replica's port); natively on the replica's port.
    llamacpp: {"parallel", "ctx_size", "threads"} of a llama.cpp replica (slots, context, CPU threads).
    aliases: other names clients may send as "model" (the load balancers route them here). vLLM
    answers only the names it serves, so it gets them all; llama.cpp and TGI answer any name."""
    spec = ENGINES[engine]
    listen_port = spec["container_port"] if runtime == "docker" else port
    if engine == "vllm":
        cmd = ([] if runtime == "docker" else [python, "-m", "vllm.entrypoints.openai.api_server"]) + [
            "--model", model_path, "--served-model-name", model_name] + [str(a) for a in aliases] + [
            "--host", host, "--port", str(listen_port),
            # In-flight requests get time to finish on SIGTERM (default 0 aborts them).
            "--shutdown-timeout", str(spec["stop_timeout"] - 10)]
        if gpus and len(gpus) > 1:
            cmd += ["--tensor-parallel-size", str(len(gpus))]
    elif engine == "tgi":
        cmd = ([] if runtime == "docker" else ["text-generation-launcher"]) + [
            "--model-id", model_path, "--hostname", host, "--port", str(listen_port)]
        if gpus and len(gpus) > 1:
            cmd += ["--num-shard", str(len(gpus))]
    elif engine == "ollama":
        # Ollama takes its address and model store from the environment (see engine_environment).
        cmd = ["serve"] if runtime == "docker" else ["ollama", "serve"]
    else:  # llamacpp
        # llama.cpp's server's own long flag names, which its image's entrypoint (llama-server) and
        # our launcher (roles/model_server/files/llamacpp_serve.py: xllamacpp ships the server as a
        # library without a command) both take. In a container the image's entrypoint runs it.
        cmd = ([] if runtime == "docker" else [python, launcher]) + [
            "--model", model_path, "--alias", model_name, "--host", host, "--port", str(listen_port), "--metrics"]
        if gpus:
            cmd += ["--n-gpu-layers", "999"]
        options = llamacpp or {}
        for flag, key in (("--parallel", "parallel"), ("--ctx-size", "ctx_size"), ("--threads", "threads")):
            if options.get(key) not in (None, ""):
                cmd += [flag, str(options[key])]
    return cmd + _flag_args(extra_args)


def engine_environment(engine, port, model_path, gpus=(), runtime="systemd", extra=None):
    env = {}
    if engine == "ollama":
        env["OLLAMA_HOST"] = "0.0.0.0:%d" % (ENGINES[engine]["container_port"] if runtime == "docker" else port)
        env["OLLAMA_MODELS"] = model_path
        # Keep the model loaded: the default unloads it after 5 idle minutes.
        env["OLLAMA_KEEP_ALIVE"] = "-1"
    if engine == "vllm":
        env["HF_HUB_OFFLINE"] = "1"
    if gpus and runtime == "systemd":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    env.update({str(k): str(v) for k, v in (extra or {}).items()})
    return env


def docker_container(engine, image, name, replica, model_path, model_name, bind_address="0.0.0.0",
                     extra_args=(), environment=None, memory="", cpus=0, stop_timeout=None, shm_size=None,
                     llamacpp=None, aliases=()):
    """Arguments for community.docker.docker_container for one replica."""
    spec = ENGINES[engine]
    model_dir = model_path if engine in ("ollama", "tgi", "vllm") else model_path.rsplit("/", 1)[0]
    params = {
        "name": name,
        "image": image or spec["image"],
        "command": engine_command(engine, model_path, model_name, replica["port"], gpus=replica["gpus"],
                                  extra_args=extra_args, runtime="docker", llamacpp=llamacpp,
                                  aliases=aliases or ()),
        "env": engine_environment(engine, replica["port"], model_path, replica["gpus"], "docker", environment),
        "published_ports": ["%s:%d:%d" % (bind_address, replica["port"], spec["container_port"])],
        # Weights are read-only for the engine, wherever they come from (NFS mount or staged copy).
        "volumes": ["%s:%s:ro" % (model_dir, model_dir)],
        "restart_policy": "unless-stopped",
        "stop_timeout": stop_timeout or spec["stop_timeout"],
        "healthcheck": {
            # Healthy once the engine says it is ready (its health path answers 200; llama.cpp and
            # vLLM answer 503 or nothing while loading). Engine images differ in what they ship: bash's
            # /dev/tcp needs no curl. bash, not CMD-SHELL: /bin/sh is dash in Debian and Ubuntu images.
            "test": ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/%d && printf 'GET %s HTTP/1.0\\r\\n\\r\\n' >&3 "
                     "&& head -n 1 <&3 | grep -q ' 200 '" % (spec["container_port"], spec["health_path"])],
            "interval": "10s", "timeout": "5s", "retries": 3, "start_period": "600s",
        },
        "labels": {"llmfleet.engine": engine, "llmfleet.replica": str(replica["index"])},
    }
    if replica["gpus"]:
        params["device_requests"] = [{"driver": "nvidia", "device_ids": list(replica["gpus"]),
                                      "capabilities": [["gpu"]]}]
    if spec["ipc_host"]:
        params["ipc_mode"] = "host"
    if shm_size or spec["shm_size"]:
        params["shm_size"] = shm_size or spec["shm_size"]
    if memory:
        params["memory"] = memory
    if cpus:
        params["cpus"] = cpus
    return params


DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_repository(reference):
    """The repository of an image reference, without tag or digest, as the engine names it
    (Docker Hub's docker.io/ and library/ prefixes dropped)."""
    name = reference.split("@", 1)[0]
    head, _sep, last = name.rpartition("/")
    if ":" in last:
        name = (head + "/" if head else "") + last.split(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name.startswith("library/"):
        name = name[len("library/"):]
    return name


def pinned_image(reference, repo_digests):
    """REPOSITORY@sha256:... that `reference` resolved to, from the pulled image's RepoDigests: what
    the replicas run and the release records, so that a tag moved later cannot change a rollback."""
    repository = image_repository(reference)
    if "@" in reference:
        digest = reference.split("@", 1)[1]
        if DIGEST_PATTERN.match(digest):
            return "%s@%s" % (repository, digest)
    for entry in repo_digests or []:
        repo, _sep, digest = str(entry).partition("@")
        if image_repository(repo) == repository and DIGEST_PATTERN.match(digest):
            return "%s@%s" % (repository, digest)
    raise ValueError("%s: the engine holds no registry digest of it (RepoDigests: %s): an image has one once it is "
                     "pulled from a registry" % (reference, ", ".join(map(str, repo_digests or [])) or "none"))


def host_addresses(hosts, hostvars):
    """Each host's address: llmfleet_address, else ansible_host (what the fleet uses to reach it)."""
    return [str((hostvars.get(host) or {}).get("llmfleet_address") or (hostvars.get(host) or {}).get("ansible_host") or host)
            for host in hosts]


def host_networks(hosts, hostvars):
    """Each host's address as a one-address network."""
    return [a + ("/128" if ":" in a else "/32") for a in host_addresses(hosts, hostvars)]


SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MODEL_KEYS = ("name", "file", "url", "sha256")


def models_problem(models):
    """'' if models is a list of {name, file, url, sha256} with unique names, else what is wrong."""
    if not isinstance(models, list):
        return "%s is not a list of models" % validation._describe(models)
    names = set()
    for index, model in enumerate(models):
        where = "[%d]" % index
        if not isinstance(model, dict):
            return "%s: %s is not a mapping with name, file, url, sha256" % (where, validation._describe(model))
        missing = [k for k in MODEL_KEYS if model.get(k) in (None, "")]
        if missing:
            return "%s: %s not set" % (where, ", ".join(missing))
        unknown = sorted(set(model) - set(MODEL_KEYS))
        if unknown:
            return "%s: unknown keys %s (%s)" % (where, ", ".join(unknown), ", ".join(MODEL_KEYS))
        if not NAME_PATTERN.match(str(model["name"])):
            return "%s: name: %s must be lower-case letters, digits and dashes" % (where, validation._describe(model["name"]))
        if model["name"] in names:
            return "%s: name: %s is listed twice" % (where, model["name"])
        names.add(model["name"])
        if "/" in str(model["file"]) or str(model["file"]) in (".", ".."):
            return "%s: file: %s must be a file name, not a path" % (where, validation._describe(model["file"]))
        problem = validation.url_problem(model["url"])
        if problem:
            return "%s: url: %s" % (where, problem)
        if not isinstance(model["sha256"], str):
            return "%s: sha256: %s is a number, not text: quote it (YAML reads an all-digit value as a number)" % (
                where, validation._describe(model["sha256"]))
        if not SHA256_PATTERN.match(model["sha256"]):
            return "%s: sha256: %s is not 64 lower-case hex digits" % (where, validation._describe(model["sha256"]))
    return ""
