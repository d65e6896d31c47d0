"""Parts of the docker runtime that need no Docker: subnets, addresses, names."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from conformance.datagrams import DatagramSender
from conformance.docker_runtime import (
    FIRST_HOST,
    DockerRuntime,
    _candidate_subnets,
    _container_name,
)


def test_candidate_subnets_skip_used_and_compose() -> None:
    used = [
        ipaddress.IPv4Network("172.29.5.0/24"),
        ipaddress.IPv4Network("172.29.128.0/17"),
    ]

    candidates = _candidate_subnets(used)

    assert "172.29.5.0/24" not in candidates
    assert "172.29.77.0/24" not in candidates
    assert not [c for c in candidates if int(c.split(".")[2]) >= 128]
    assert "172.29.6.0/24" in candidates
    assert len(candidates) == 125


def runtime() -> DockerRuntime:
    client: Any = None
    return DockerRuntime(client, "abcd1234", "converge-python+rust")


def test_node_addresses_follow_node_numbers() -> None:
    docker_runtime = runtime()

    # Start order does not change the addresses.
    second = docker_runtime.bind_address("n3")
    first = docker_runtime.bind_address("n0")
    other = docker_runtime.bind_address("helper")

    assert first == f"0.0.0.{FIRST_HOST}:7946"
    assert second == f"0.0.0.{FIRST_HOST + 3}:7946"
    assert other == f"0.0.0.{FIRST_HOST + 1}:7946"
    assert docker_runtime.bind_address("n3") == second


def test_container_names_replace_unsafe_characters() -> None:
    assert _container_name("swimconf-1-a-python+rust-n0.0") == (
        "swimconf-1-a-python_rust-n0.0"
    )


def test_datagram_sender_limits_destinations_to_network() -> None:
    sender = DatagramSender(local_ip="127.0.0.1", network="172.29.9.0/24")
    try:
        with pytest.raises(ValueError) as caught:
            sender.send(b"\x00", "172.29.10.1:7946")
    finally:
        sender.close()

    assert "the harness sends only to 172.29.9.0/24" in str(caught.value)
