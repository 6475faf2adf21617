"""Slow DNS of one tenant must not starve every other probe's name lookups.

aiohttp's `ThreadedResolver` (what `ProbeHTTP` used to resolve with) runs `getaddrinfo` on
the event loop's default executor (asyncio: `min(32, cpus + 4)` threads, 6 on a 2-core node;
uvloop: libuv's pool of 4). A probe's timeout abandons the await but not the thread, and a
lookup of a name whose authoritative server never answers held its thread for the resolver's
whole retry budget (about 40 s with the cluster's `ndots:5`): one namespace naming such
hosts kept the pool full and every other namespace's lookups waited.

`ProbeHTTP` now resolves with `probe_resolver()` (aiohttp's `AsyncResolver`, c-ares): every
lookup is a query on the resolver's one event thread, none holds a thread. Here the real
resolver asks a real (fake) DNS server over UDP: `FakeDNS` answers the victim's name and
never answers names under `blackhole.test`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from pathlib import Path

import pytest
from flokoa_envtest.fakes import FakeDNS, FakeOpenAI
from flokoa_envtest.testing import poll_until

from flokoa_controller.providers import ProbeHTTP, ProbeTarget, probe_provider
from flokoa_controller.providers.destinations import DestinationPolicy, probe_resolver

HOSTILE = 24
"""Probes of black-holed names pending at once (four times the old default executor)."""


def _executor_threads(loop: asyncio.AbstractEventLoop) -> int:
    executor = getattr(loop, "_default_executor", None)
    return len(getattr(executor, "_threads", ())) if executor is not None else 0


async def test_blackhole_dns_of_one_tenant_does_not_starve_other_lookups() -> None:
    loop = asyncio.get_running_loop()
    policy = DestinationPolicy.build(allow="127.0.0.0/8,::1/128")
    records = {"api.victim.test": "127.0.0.1"}
    async with (
        FakeOpenAI() as fake,
        FakeDNS(records=records, black_hole="blackhole.test") as dns,
    ):
        resolver = probe_resolver(nameservers=[dns.nameserver])
        async with ProbeHTTP(policy=policy, resolver=resolver) as http:
            threads = threading.active_count()
            hostile = [
                ProbeTarget(
                    kind="openai",
                    base_url=f"http://p{i}.blackhole.test:{fake.port}/v1",
                    api_key="sk-hostile-0123456789",
                    timeout=60,
                )
                for i in range(HOSTILE)
            ]
            pending = [asyncio.create_task(probe_provider(t, http)) for t in hostile]

            def blackholed_names() -> int:
                return len({name for name, _ in dns.queries if dns.blackholed(name)})

            await poll_until(
                lambda: blackholed_names() >= HOSTILE, what="every hostile lookup was sent"
            )
            victim = ProbeTarget(
                kind="openai",
                base_url=f"http://api.victim.test:{fake.port}/v1",
                api_key=fake.api_key,
                timeout=5,
            )
            result = await probe_provider(victim, http)
            still_pending = sum(not task.done() for task in pending)
            lookup_threads = threading.active_count() - threads
            executor_threads = _executor_threads(loop)
            for task in pending:  # a cancelled probe abandons its query
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        print(
            f"\nvictim: {result.reason} with {still_pending} black-holed probes pending "
            f"({dns.unanswered} unanswered queries); threads added: {lookup_threads}, "
            f"default-executor threads: {executor_threads}"
        )
    assert result.reason == "ProbeSucceeded", result.message
    assert still_pending == HOSTILE
    assert lookup_threads == 0
    assert executor_threads == 0
    assert dns.queries[("api.victim.test", 1)] >= 1  # resolved by the fake, not a hosts file


async def test_localhost_and_the_hosts_file_still_resolve() -> None:
    """c-ares reads /etc/hosts: `localhost` needs no DNS server (here: one that never
    answers), and the probe succeeds."""
    policy = DestinationPolicy.build(allow="127.0.0.0/8,::1/128")
    async with (
        FakeOpenAI() as fake,
        FakeDNS(black_hole="localhost") as dns,
        ProbeHTTP(policy=policy, resolver=probe_resolver(nameservers=[dns.nameserver])) as http,
    ):
        victim = ProbeTarget(
            kind="openai",
            base_url=f"http://localhost:{fake.port}/v1",
            api_key=fake.api_key,
            timeout=5,
        )
        result = await probe_provider(victim, http)
    assert result.reason == "ProbeSucceeded", result.message
    assert dns.unanswered == 0


def _hosts_file_entry() -> tuple[str, str] | None:
    """(name, IPv4 address) of a line of /etc/hosts other than `localhost`, if any."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            ipaddress.IPv4Address(fields[0])
        except ValueError:
            continue
        for name in fields[1:]:
            if "localhost" not in name.lower():
                return name, fields[0]
    return None


async def test_names_of_the_hosts_file_resolve_without_dns() -> None:
    """A name the system hosts file lists (other than `localhost`, which c-ares knows
    anyway) resolves with a DNS server that never answers it."""
    entry = _hosts_file_entry()
    if entry is None:
        pytest.skip("/etc/hosts lists no IPv4 name besides localhost")
    name, address = entry
    async with FakeDNS(black_hole=name) as dns:
        resolver = probe_resolver(nameservers=[dns.nameserver])
        try:
            results = await resolver.resolve(name, 443, socket.AF_INET)
        finally:
            await resolver.close()
    assert address in {r["host"] for r in results}
    assert dns.unanswered == 0


async def test_a_blackholed_name_fails_its_probe_in_time() -> None:
    """A probe of a name whose DNS never answers ends with Timeout at its own deadline."""
    policy = DestinationPolicy.build(allow="127.0.0.0/8,::1/128")
    async with (
        FakeDNS(black_hole="blackhole.test") as dns,
        ProbeHTTP(policy=policy, resolver=probe_resolver(nameservers=[dns.nameserver])) as http,
    ):
        target = ProbeTarget(
            kind="openai",
            base_url="http://api.blackhole.test/v1",
            api_key="sk-hostile-0123456789",
            timeout=1,
        )
        result = await probe_provider(target, http)
    assert result.reason == "Timeout", result
    assert dns.unanswered >= 1
