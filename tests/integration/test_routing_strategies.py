"""Routing strategies end to end (issue 23, item 1): two fake OpenAI deployments behind one
alias; least_latency moves traffic to the faster and back when it slows, least_busy sends
new requests away from the one holding them, cost picks the cheaper until its breaker
opens, ordered tries them in the config's order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningGateway
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import Reply
from tests.inprocess import start_in_process

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fakes() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with FakeOpenAI() as a, FakeOpenAI() as b:
        yield a, b  # type: ignore[misc]


def gateway(fakes: tuple[FakeOpenAI, FakeOpenAI], strategy: str,
            extra: str = "") -> RunningGateway:
    a, b = fakes
    return start_in_process(f"""
retry: {{attempts: 2, backoff: 1ms, max_backoff: 1ms}}
circuit_breaker: {{consecutive_failures: 3, min_requests: 100000, open_timeout: 60s}}
providers:
{a.provider("a", "gpt-a")}
{b.provider("b", "gpt-b")}
models:
  - name: smart
    strategy: {strategy}
    targets: [{{provider: a, model: gpt-a}}, {{provider: b, model: gpt-b}}]
{extra}""")


def ask(gw: RunningGateway, n: int = 1) -> None:
    with httpx.Client(base_url=gw.http_url, timeout=20) as client:
        for _ in range(n):
            answer = client.post("/v1/chat/completions", json={"model": "smart", "messages": HI})
            assert answer.status_code == 200, answer.text


def test_least_latency_follows_the_faster(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway(fakes, "least_latency")
    try:
        a.delay, b.delay = 0.12, 0.0
        ask(gw, 40)
        assert len(b.requests) >= 34, (len(a.requests), len(b.requests))
        a.reset(), b.reset()
        a.delay, b.delay = 0.0, 0.12  # b slows down; exploration finds a fast again
        ask(gw, 80)
        assert len(a.requests) >= 55, (len(a.requests), len(b.requests))
    finally:
        assert gw.stop() == 0


def test_least_busy_avoids_the_one_holding_requests(
        fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway(fakes, "least_busy")
    try:
        a.delay = 0.5  # a holds its requests
        threads = [threading.Thread(target=ask, args=(gw, 6)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(a.requests) + len(b.requests) == 24
        assert len(b.requests) >= 18, (len(a.requests), len(b.requests))
    finally:
        assert gw.stop() == 0


def test_cost_picks_the_cheaper_while_it_is_healthy(
        fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway(fakes, "cost", """
pricing:
  gpt-a: {input_per_mtok: 0.1, output_per_mtok: 0.4}
  gpt-b: {input_per_mtok: 3, output_per_mtok: 15}
""")
    try:
        ask(gw, 10)
        assert (len(a.requests), len(b.requests)) == (10, 0)
        a.enqueue(*[Reply(status=500, json={"error": {"message": "down"}})] * 3)
        ask(gw, 5)  # a fails three times: its breaker opens, b answers
        a.reset(), b.reset()
        ask(gw, 5)
        assert (len(a.requests), len(b.requests)) == (0, 5)
    finally:
        assert gw.stop() == 0


def test_ordered_tries_the_first_then_the_second(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway(fakes, "ordered")
    try:
        ask(gw, 6)
        assert (len(a.requests), len(b.requests)) == (6, 0)
        a.enqueue(*[Reply(status=503, json={"error": {"message": "busy"}})] * 2)
        ask(gw)  # a fails both its attempts, then b answers
        assert (len(a.requests), len(b.requests)) == (8, 1)
    finally:
        assert gw.stop() == 0


def test_an_unknown_strategy_is_a_config_error(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    with pytest.raises(Exception, match="strategy"):
        gateway(fakes, "fastest")


def test_a_conversation_stays_on_its_deployment(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    """Affinity (issue 23, item 3): a turn continuing a stored response goes to the
    deployment that answered the turn before, streamed or not, REST or gRPC, while its
    breaker lets it; then the strategy picks another and the conversation stays there."""
    a, b = fakes
    gw = gateway(fakes, "weighted")
    try:
        def turn(previous: str | None, stream: bool = False) -> str:
            body = {"model": "smart", "input": "go on", "stream": stream,
                    **({"previous_response_id": previous} if previous else {})}
            with httpx.Client(base_url=gw.http_url, timeout=20) as client:
                if not stream:
                    answer = client.post("/v1/responses", json=body)
                    assert answer.status_code == 200, answer.text
                    return str(answer.json()["id"])
                with client.stream("POST", "/v1/responses", json=body) as events:
                    lines = [line for line in events.iter_lines() if '"response.completed"' in line]
                assert lines, "no response.completed event"
                return str(lines[-1].split('"id":"', 1)[1].split('"', 1)[0])

        previous = turn(None)
        home, away = (a, b) if a.requests else (b, a)
        for i in range(12):
            previous = turn(previous, stream=i % 2 == 1)
        assert (len(home.requests), len(away.requests)) == (13, 0)
        home.enqueue(*[Reply(status=500, json={"error": {"message": "down"}})] * 6)
        previous = turn(previous)  # home fails twice, then away answers
        for _ in range(3):
            previous = turn(previous)
        assert len(away.requests) == 4  # the conversation moved, and stays
    finally:
        assert gw.stop() == 0


def hedge_counts(gw: RunningGateway) -> dict[tuple[str, str], float]:
    """Hedged attempts by (provider, outcome), and tokens charged to ``("a", "tokens")``;
    the test process's gateways share one registry: compare before and after."""
    text = httpx.get(gw.http_url + "/metrics").text
    counts = {(s.labels["provider"], s.labels["outcome"]): s.value
              for family in text_string_to_metric_families(text) for s in family.samples
              if s.name == "gateway_hedged_attempts_total"}
    counts["a", "tokens"] = sum(
        s.value for family in text_string_to_metric_families(text) for s in family.samples
        if s.name == "gateway_tokens_total" and s.labels.get("provider") == "a")
    return counts


@pytest.mark.parametrize("stream", [False, True])
def test_a_hedged_request_answers_from_the_second_target(
        fakes: tuple[FakeOpenAI, FakeOpenAI], stream: bool) -> None:
    """Hedging (issue 23, item 2): with no answer (first chunk) from the first target after
    `hedge.after`, the next starts too; the first answer wins, the other attempt's connection
    is closed, and only the winner is accounted."""
    a, b = fakes
    gw = gateway(fakes, "ordered", extra="    hedge: {after: 200ms}")
    try:
        before = hedge_counts(gw)
        a.delay = 1.5
        started = time.monotonic()
        with httpx.Client(base_url=gw.http_url, timeout=20) as client:
            body = {"model": "smart", "messages": HI, "stream": stream}
            answer = client.post("/v1/chat/completions", json=body)
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < 1.2  # not waiting for a
        if not stream:
            assert answer.json()["x_gateway"]["provider"] == "b"
        assert (len(a.requests), len(b.requests)) == (1, 1)
        deadline = time.monotonic() + 5
        while not a.abandoned and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a.abandoned == 1  # the loser's connection was closed, not left to finish
        after = hedge_counts(gw)
        assert after.get(("b", "won"), 0) - before.get(("b", "won"), 0) == 1
        assert after.get(("a", "lost"), 0) - before.get(("a", "lost"), 0) == 1
        assert after["a", "tokens"] == before["a", "tokens"]  # only the winner is charged
    finally:
        assert gw.stop() == 0


def test_no_hedge_when_the_first_answers_in_time(fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway(fakes, "ordered", extra="    hedge: {after: 500ms}")
    try:
        ask(gw, 3)
        assert (len(a.requests), len(b.requests)) == (3, 0)
    finally:
        assert gw.stop() == 0


def test_the_request_header_sets_or_stops_hedging(
        fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway(fakes, "ordered")
    try:
        a.delay = 0.6
        with httpx.Client(base_url=gw.http_url, timeout=20) as client:
            body = {"model": "smart", "messages": HI}
            hedged = client.post("/v1/chat/completions", json=body,
                                 headers={"X-Hedge-After": "100ms"})
            assert hedged.json()["x_gateway"]["provider"] == "b"
            plain = client.post("/v1/chat/completions", json=body,
                                headers={"X-Hedge-After": "0"})
            assert plain.json()["x_gateway"]["provider"] == "a"
            bad = client.post("/v1/chat/completions", json=body,
                              headers={"X-Hedge-After": "soon"})
            assert bad.status_code == 400 and bad.json()["error"]["param"] == "x-hedge-after"
    finally:
        assert gw.stop() == 0
