"""ufw reconcile logic, on `ufw show added` output as ufw 0.36 on Debian 12 prints it (captured on a
lab host, every form the module writes: from any, from a network, limit, route, range, udp, IPv6)."""

from ansible_collections.llmfleet.cluster.plugins.module_utils import ufw_rules as u

SHOW_ADDED = """Added user rules (see 'ufw status' for running firewall):
ufw allow from 10.213.9.0/24 to any port 22 proto tcp comment 'llmfleet ssh'
ufw limit 2222/tcp comment 'llmfleet ssh'
ufw allow from 10.213.9.83 to any port 8000 proto tcp comment 'llmfleet model server llm: replica 0'
ufw allow from 10.213.9.83 to any port 8001 proto tcp comment 'llmfleet model server llm: replica 1'
ufw route allow from 10.213.9.83 to any port 8001 proto tcp comment 'llmfleet model server llm: replica 1 (containers)'
ufw allow from 10.213.9.83 to any port 8002 proto tcp comment 'llmfleet model server llm2: replica 0'
ufw allow from 10.1.0.0/16 to any port 7004:7009 proto udp comment 'llmfleet t4'
ufw allow 7011/tcp
ufw route allow 7003/tcp comment 'llmfleet t3'
ufw allow from fd00::/8 to any port 7010 proto tcp comment 'someone else'
ufw allow in on eth0 to any port 80
"""


def rules():
    return u.parse_added(SHOW_ADDED)


def test_every_printed_form_is_read():
    current, unread = rules()
    assert u.Rule(False, "allow", "10.213.9.0/24", "22", "tcp", "llmfleet ssh") in current
    assert u.Rule(False, "limit", "any", "2222", "tcp", "llmfleet ssh") in current
    assert u.Rule(True, "allow", "10.213.9.83/32", "8001", "tcp", "llmfleet model server llm: replica 1 (containers)") in current
    assert u.Rule(False, "allow", "10.1.0.0/16", "7004:7009", "udp", "llmfleet t4") in current
    assert u.Rule(False, "allow", "any", "7011", "tcp", None) in current
    assert u.Rule(True, "allow", "any", "7003", "tcp", "llmfleet t3") in current
    assert u.Rule(False, "allow", "fd00::/8", "7010", "tcp", "someone else") in current
    # An interface rule is not a form the module writes: kept apart, never deleted.
    assert unread == ["ufw allow in on eth0 to any port 80"]


def test_add_arguments_are_what_ufw_prints_back():
    current, _unread = rules()
    for rule in current:
        printed = "ufw " + " ".join(u.add_argv(rule)[:-2] if rule.comment else u.add_argv(rule))
        assert printed in SHOW_ADDED, printed


def test_a_converged_host_needs_nothing():
    current, _unread = rules()
    wants = u.wanted([{"port": "8000", "from": ["10.213.9.83"], "comment": "replica 0"},
                      {"port": 8001, "from": ["10.213.9.83"], "comment": "replica 1"},
                      {"port": "8001", "from": ["10.213.9.83"], "comment": "replica 1 (containers)", "route": True}],
                     "model server llm")
    assert u.plan(current, wants, "model server llm") == ([], [])


def test_a_rule_no_longer_wanted_is_deleted_only_from_its_owner():
    current, _unread = rules()
    wants = u.wanted([{"port": "8000", "from": ["10.213.9.83"], "comment": "replica 0"}], "model server llm")
    to_delete, to_add = u.plan(current, wants, "model server llm")
    assert to_add == []
    # replica 1 and its container rule go; llm2's rule (another owner, same prefix) stays.
    assert [(r.port, r.route) for r in to_delete] == [("8001", False), ("8001", True)]
    assert u.delete_argv(to_delete[0]) == ["delete", "allow", "from", "10.213.9.83", "to", "any", "port", "8001",
                                           "proto", "tcp"]
    assert u.delete_argv(to_delete[1])[:3] == ["route", "delete", "allow"]
    assert u.plan(current, wants, "model server llm", purge=False)[0] == []


def test_a_new_rule_is_added_and_a_moved_network_replaces_the_old():
    current, _unread = rules()
    wants = u.wanted([{"port": 22, "from": ["10.213.10.0/24"]}, {"port": 2222, "action": "limit"}], "ssh")
    to_delete, to_add = u.plan(current, wants, "ssh")
    assert to_add == [u.Rule(False, "allow", "10.213.10.0/24", "22", "tcp", "llmfleet ssh")]
    assert to_delete == [u.Rule(False, "allow", "10.213.9.0/24", "22", "tcp", "llmfleet ssh")]
    assert u.add_argv(to_add[0]) == ["allow", "from", "10.213.10.0/24", "to", "any", "port", "22", "proto", "tcp",
                                     "comment", "llmfleet ssh"]


def test_a_recommented_rule_is_updated_not_deleted():
    # Same port and source, new comment: ufw updates the comment on add; deleting it would open a gap.
    current, _unread = rules()
    wants = u.wanted([{"port": "8000", "from": ["10.213.9.83"], "comment": "replica 0 (renamed)"},
                      {"port": "8001", "from": ["10.213.9.83"], "comment": "replica 1"},
                      {"port": "8001", "from": ["10.213.9.83"], "comment": "replica 1 (containers)", "route": True}],
                     "model server llm")
    to_delete, to_add = u.plan(current, wants, "model server llm")
    assert to_delete == []
    assert [r.comment for r in to_add] == ["llmfleet model server llm: replica 0 (renamed)"]


def test_host_bits_and_any_compare_as_ufw_stores_them():
    assert u.source_key("10.0.0.5/24") == "10.0.0.0/24"
    assert u.source_key("10.0.0.5") == "10.0.0.5/32"
    assert u.source_key("any") == "any"
    current, _unread = u.parse_added("ufw allow from 10.0.0.0/24 to any port 22 proto tcp comment 'llmfleet ssh'\n")
    assert u.plan(current, u.wanted([{"port": 22, "from": ["10.0.0.5/24"]}], "ssh"), "ssh") == ([], [])


def test_one_source_listed_twice_is_one_rule():
    assert len(u.wanted([{"port": 22, "from": ["10.0.0.0/24", "10.0.0.0/24"]}], "ssh")) == 1


def test_bad_rules_are_named():
    assert "port" in u.rule_problem({"port": "80000"})
    assert "port" in u.rule_problem({"port": "http"})
    assert "proto" in u.rule_problem({"port": 22, "proto": "icmp"})
    assert "not a network" in u.rule_problem({"port": 22, "from": ["10.0.0.0/33"]})
    assert "quote" in u.rule_problem({"port": 22, "comment": "it's"})
    assert u.rule_problem({"port": "8000:8009", "proto": "udp", "from": ["fd00::/8", "any"]}) == ""


def test_policies_and_logging_are_set_only_where_they_differ():
    default = 'DEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\nDEFAULT_FORWARD_POLICY="ACCEPT"\n'
    conf = "# comment\nENABLED=yes\nLOGLEVEL=low\n"
    current = u.read_settings(default, conf)
    assert current == {"incoming": "DROP", "routed": "ACCEPT", "logging": "low", "enabled": True}
    assert u.settings_commands(current, incoming="deny", routed="deny", logging="on") == [["default", "deny", "routed"]]
    assert u.settings_commands(current, incoming="reject", logging="off") == [
        ["default", "reject", "incoming"], ["logging", "off"]]
    assert u.settings_commands(current) == []


def test_no_source_is_no_rule_and_a_missing_source_is_any():
    assert u.wanted([{"port": 22, "from": []}], "ssh") == []
    assert [r.source for r in u.wanted([{"port": 22}], "ssh")] == ["any"]


def test_docker_hosts_get_each_rule_routed_as_well():
    wants = u.wanted([{"port": "8001", "from": ["10.213.9.83"], "comment": "replica 1"}], "model server llm",
                     also_routed=True)
    current, _unread = rules()
    assert [r for r in wants if r.route] == [r for r in current if r.route and r.port == "8001"]
    assert u.wanted([{"port": 9100}], "node exporter", also_routed=True)[1].comment == "llmfleet node exporter: (containers)"


def test_ssh_and_the_site_in_one_call_on_a_docker_host():
    """The firewall role's one call: SSH's rules first (added before the policies land), owned by ssh and
    not copied for containers; the site's rules routed as well; a converged host needs nothing."""
    specs = [{"port": "22", "from": ["10.213.9.0/24"], "owner": "ssh", "also_routed": False},
             {"port": "2222", "action": "limit", "owner": "ssh", "also_routed": False},
             {"port": "7003", "comment": "t3"}]
    wants = u.wanted(specs, "site", also_routed=True)
    assert [(r.route, r.port, r.comment) for r in wants] == [
        (False, "22", "llmfleet ssh"), (False, "2222", "llmfleet ssh"),
        (False, "7003", "llmfleet site: t3"), (True, "7003", "llmfleet site: t3 (containers)")]
    owners = u.owners_of("site", specs)
    assert owners == ["site", "ssh"]
    current, _unread = rules()
    to_delete, to_add = u.plan(current, wants, owners)
    # ssh's two rules are there; t3 is another owner's rule (llmfleet t3), not deleted by this call.
    assert [r.port for r in to_add] == ["7003", "7003"] and to_delete == []
    # A rule's own also_routed wins both ways.
    assert [r.route for r in u.wanted([{"port": 9100, "also_routed": True}], "x")] == [False, True]


def test_a_published_container_port_is_routed_on_the_container_s_own_port():
    specs = [{"port": 8000, "container_port": 8080, "from": ["10.213.9.83"], "comment": "replica 0"},
             {"port": 8001, "container_port": 8080, "from": ["10.213.9.83"], "comment": "replica 1"}]
    wants = u.wanted(specs, "model server llm", also_routed=True)
    assert sorted((r.route, r.port) for r in wants) == [(False, "8000"), (False, "8001"), (True, "8080")]
    # Not a Docker host: no routed rule at all, the container port plays no part.
    assert [r.port for r in u.wanted(specs, "model server llm")] == ["8000", "8001"]
    assert u.rule_problem({"port": 8000, "container_port": 70000}) == "container_port 70000 is not a port"
    assert u.rule_problem({"port": 8000, "container_port": "80:81"}) == "container_port '80:81' is not a port"


def test_one_call_reconciles_each_owner_it_names_and_only_those():
    # A node's model servers in one call: each rule names its own server; llm's replica 1 is gone and
    # llm2 has no rule left (a server whose replicas all went), t4 is nobody this call names.
    current, _unread = rules()
    specs = [{"port": "8000", "from": ["10.213.9.83"], "comment": "replica 0", "owner": "model server llm"},
             {"port": "7003", "route": True, "owner": "t3"}]
    owners = u.owners_of("model servers", specs, ["model server llm", "model server llm2"])
    assert owners == ["model servers", "model server llm", "model server llm2", "t3"]
    wants = u.wanted(specs, "model servers")
    assert [r.comment for r in wants] == ["llmfleet model server llm: replica 0", "llmfleet t3"]
    to_delete, to_add = u.plan(current, wants, owners)
    assert to_add == []
    assert sorted((r.port, r.route, r.comment) for r in to_delete) == [
        ("8001", False, "llmfleet model server llm: replica 1"),
        ("8001", True, "llmfleet model server llm: replica 1 (containers)"),
        ("8002", False, "llmfleet model server llm2: replica 0")]
    # Only opening: nothing of any owner is deleted.
    assert u.plan(current, wants, owners, purge=False) == ([], [])


def test_an_owner_that_would_break_the_comment_is_refused():
    assert u.owner_problem("model server llm") == ""
    for bad in ("", "  ", "model server: llm", "it's", None):
        assert "must be a non-empty name" in u.owner_problem(bad)
    assert "must be a non-empty name" in u.rule_problem({"port": 8000, "owner": "a:b"})
