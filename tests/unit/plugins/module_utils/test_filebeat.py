"""Filebeat's configuration of a host. Filebeat itself is not installable here (no Debian package,
Elastic's repository out of reach): these tests check what `filebeat test config` would refuse
that we can know without it (the removed `log` input, inputs without an id or with one id twice,
filestream without paths, an output without hosts or a kafka output without a topic)."""

import pytest

from ansible_collections.llmfleet.cluster.plugins.module_utils import filebeat


def test_a_load_balancer_ships_its_json_access_log_parsed():
    inputs = filebeat.host_inputs(lb_access_log="/var/log/llmfleet/lb-access.json", auth_journal=False)
    assert inputs == [{"type": "filestream", "id": "llmfleet-lb-access", "paths": ["/var/log/llmfleet/lb-access.json"],
                       "parsers": [{"ndjson": {"target": "", "add_error_key": True, "overwrite_keys": True}}],
                       "fields": {"llmfleet": {"log": "lb-access"}}}]


def test_native_replicas_are_read_from_the_journal_and_containers_from_their_files():
    native = filebeat.host_inputs(model_units=["llmfleet-llm-0.service", "llmfleet-llm-1.service"], auth_journal=False)
    assert native == [{"type": "journald", "id": "llmfleet-model-server-journal",
                       "include_matches.match": ["_SYSTEMD_UNIT=llmfleet-llm-0.service", "_SYSTEMD_UNIT=llmfleet-llm-1.service"],
                       "fields": {"llmfleet": {"log": "model-server"}}}]
    docker = filebeat.host_inputs(docker_logs=True, auth_journal=False)
    assert docker[0]["type"] == "filestream" and docker[0]["paths"] == ["/var/lib/docker/containers/*/*-json.log"]
    assert docker[0]["parsers"] == [{"container": {"stream": "all", "format": "docker"}}]


def test_every_host_ships_auth_and_audit_logs():
    inputs = filebeat.host_inputs(audit_log="/var/log/audit/audit.log")
    assert [(i["type"], i["id"]) for i in inputs] == [("journald", "llmfleet-auth-journal"), ("filestream", "llmfleet-audit")]
    assert inputs[0]["include_matches.match"] == ["SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10"]


def test_config_labels_every_input_and_sets_one_output():
    config = filebeat.config(filebeat.host_inputs(lb_access_log="/x.json"), "kafka", ["k1:9092", "[fd00::1]:9092"],
                             {"topic": "llm-logs"}, "lb1", "zone-a")
    assert config["output.kafka"] == {"topic": "llm-logs", "hosts": ["k1:9092", "[fd00::1]:9092"]}
    assert [k for k in config if k.startswith("output.")] == ["output.kafka"]
    for item in config["filebeat.inputs"]:
        assert item["fields"]["llmfleet"]["host"] == "lb1" and item["fields"]["llmfleet"]["zone"] == "zone-a"
        assert item["fields_under_root"] is True
    assert config["filebeat.inputs"][0]["fields"]["llmfleet"]["log"] == "lb-access"


@pytest.mark.parametrize("output_type,hosts,settings,message", [
    ("splunk", ["x:1"], {}, "filebeat_output_type: 'splunk' is not one of elasticsearch, logstash, kafka"),
    ("logstash", [], {}, "filebeat_output_hosts: give at least one logstash host (host:port or a URL)"),
    ("logstash", ["logs:99999"], {}, "filebeat_output_hosts: 'logs:99999': "),
    ("elasticsearch", ["ftp://es:9200"], {}, "filebeat_output_hosts: 'ftp://es:9200': "),
    ("kafka", ["k:9092"], {}, "filebeat_output_settings: topic: the kafka output needs a topic"),
    ("logstash", ["l:5044"], {"hosts": ["other:5044"]}, "filebeat_output_settings: hosts: set filebeat_output_hosts instead"),
])
def test_bad_outputs_are_named(output_type, hosts, settings, message):
    assert filebeat.output_problem(output_type, hosts, settings).startswith(message)
    with pytest.raises(ValueError, match="^filebeat_output"):
        filebeat.config([], output_type, hosts, settings, "h", "z")


@pytest.mark.parametrize("extra,message", [
    ([{"type": "log", "id": "old", "paths": ["/a"]}], "[1]: type log is removed in current Filebeat"),
    ([{"type": "filestream", "paths": ["/a"]}], "[1]: id: None: every input needs its own id"),
    ([{"type": "filestream", "id": "llmfleet-lb-access", "paths": ["/a"]}], "[1]: id: llmfleet-lb-access is used twice"),
    ([{"type": "filestream", "id": "app"}], "[1]: paths: a filestream input needs a list of paths"),
    ([{"type": "syslog", "id": "s"}], "[1]: type: 'syslog' is not one of filestream, journald"),
])
def test_bad_extra_inputs_are_refused(extra, message):
    with pytest.raises(ValueError) as error:
        filebeat.config(filebeat.host_inputs(lb_access_log="/x.json", auth_journal=False), "logstash", ["l:5044"], {},
                        "lb1", "zone-a", extra)
    assert str(error.value).startswith("filebeat inputs" + message)


def test_extra_inputs_are_kept_and_labelled():
    config = filebeat.config([], "elasticsearch", ["https://es1:9200"], {"api_key": "id:key"}, "h", "z",
                             [{"type": "filestream", "id": "app", "paths": ["/var/log/app/*.log"], "fields": {"team": "a"}}])
    assert config["filebeat.inputs"] == [{"type": "filestream", "id": "app", "paths": ["/var/log/app/*.log"],
                                          "fields": {"team": "a", "llmfleet": {"host": "h", "zone": "z"}},
                                          "fields_under_root": True}]
