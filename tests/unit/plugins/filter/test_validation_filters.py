from ansible_collections.llmfleet.cluster.plugins.filter.validation import FilterModule


def test_filters_are_registered_and_use_the_shared_checks():
    filters = FilterModule().filters()
    assert set(filters) == {"url_problem", "ssh_public_key_problem", "zone_problem",
                            "ip_address_problem", "host_problem", "unix_name_problem", "cidr_problem",
                            "port_problem", "address_in_networks"}
    assert filters["url_problem"]("http://proxy:3142") == ""
    assert "scheme" in filters["url_problem"]("proxy:3142")
    assert "not a zone name" in filters["zone_problem"]("Zone A")
