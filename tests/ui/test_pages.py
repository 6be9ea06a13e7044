"""The admin UI's pages in Chromium, end to end against a real in-process gateway: a
tenant and its key made on the pages, used by the openai SDK, seen in the request log, the
overview's chart and the usage page, then revoked; tenants edited and deleted; a breaker
reset; tenant names full of markup shown as text; every control labelled; 1280 and 400 px
wide. The usage, models and playground pages: test_usage_models_playground.py."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import openai
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.inprocess import InProcessGateway
from tests.ui.conftest import NARROW, Watched, admin_api, check_labelled_and_fitting, signed_in

# A browser loads the machine: scripts/test.sh runs these alone, after the rest.
pytestmark = pytest.mark.serial

Watch = Callable[..., Watched]
Shots = Callable[[Page, str], None]



def chat(gw: InProcessGateway, key: str, model: str = "mock-1") -> str:
    client = openai.OpenAI(base_url=gw.http_url + "/v1", api_key=key, max_retries=0)
    try:
        reply = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "a secret prompt"}])
        return str(reply.headers["x-request-id"])
    finally:
        client.close()


def create_tenant(page: Page, name: str, **limits: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tenants").click()
    page.get_by_role("button", name="New tenant").click()
    page.get_by_label("Name").fill(name)
    labels = {"rps": "Requests per second", "burst": "Burst", "budget": "Budget (USD)",
              "models": "Allowed models"}
    for key, value in limits.items():
        page.get_by_label(labels[key]).fill(value)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status")).to_contain_text(f"Tenant {name} created")


def row(page: Page | Locator, text: str) -> Locator:
    return page.get_by_role("row").filter(has_text=text)


def test_a_tenant_and_key_made_on_the_pages_serve_then_stop_when_revoked(
        watched: Watch, ui_gateway: InProcessGateway, shots: Shots) -> None:
    watch = watched()
    watch.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = signed_in(watch)
    create_tenant(page, "acme-ui", rps="5", burst="10", budget="25.5", models="mock-1 mock-2")
    tenant = row(page, "acme-ui")
    expect(tenant).to_contain_text("Requests per second: 5")
    expect(tenant).to_contain_text("Burst: 10")
    expect(tenant).to_contain_text("$25.50")
    expect(tenant).to_contain_text("mock-1, mock-2")
    shots(page, "tenants")
    tenant.get_by_role("link", name="Keys").click()
    expect(page.get_by_role("heading", name="Keys of acme-ui")).to_be_visible()
    expect(page.get_by_text("no keys yet")).to_be_visible()
    page.get_by_label("Name").fill("ci")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("New API key").inner_text().strip()
    assert secret.startswith("sk-") and len(secret) > 40
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == secret
    shots(page, "keys")
    # Shown once: the next visit of the page has the key listed, never its secret.
    page.reload()
    expect(page.get_by_role("row").filter(has_text="ci")).to_contain_text("active")
    assert secret not in page.content() and secret[:12] not in page.content()

    request_id = chat(ui_gateway, secret)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Request log").click()
    entry = row(page, request_id)
    expect(entry).to_contain_text("acme-ui")
    expect(entry).to_contain_text("mock-1")
    expect(entry).to_contain_text("OK")
    assert "a secret prompt" not in page.content()
    page.get_by_label("Model").fill("mock-2")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No request matches these filters")).to_be_visible()
    page.get_by_label("Model").fill("mock-1")
    page.get_by_label("Tenant").select_option(label="acme-ui")
    page.get_by_label("Status").select_option("OK")
    page.get_by_role("button", name="Filter").click()
    expect(row(page, request_id)).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(1)
    shots(page, "request-log")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    totals = page.locator(".totals")
    expect(totals.locator("div").filter(has_text=re.compile("^Requests$|Requests\\s*[0-9]"))
           .first).to_contain_text(re.compile(r"[1-9]"))
    charts = page.locator("figure.chart svg")
    expect(charts).to_have_count(5)
    requests_chart = page.locator("figure.chart", has_text="Requests per second")
    dots = requests_chart.locator("circle.dot")
    assert dots.count() >= 3  # a line of a point a minute
    baseline = float(requests_chart.locator("text.tick").first.get_attribute("y") or 0) - 4
    heights = {float(d.get_attribute("cy") or 0) for d in dots.all()}
    assert min(heights) < baseline  # the minute of the request stands above zero
    hidden = page.get_by_role("table").filter(has_text="Chart values")
    expect(hidden.locator("tbody tr").first).to_contain_text("1")
    shots(page, "overview")

    # ... and on the Usage page, under the tenant's name and the model's.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(row(page.get_by_role("region", name="Usage by tenant"), "acme-ui")).to_contain_text(
        re.compile(r"acme-ui\s+1\b"))
    expect(row(page.get_by_role("region", name="Usage by model"), "mock-1")).to_be_visible()
    expect(page.locator("figure.chart", has_text="Requests by tenant").locator(".legend")
           ).to_contain_text("acme-ui")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tenants").click()
    row(page, "acme-ui").get_by_role("link", name="Keys").click()
    page.get_by_role("row").filter(has_text="ci").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    expect(page.get_by_role("row").filter(has_text="ci")).to_contain_text("revoked")
    with pytest.raises(openai.AuthenticationError):
        chat(ui_gateway, secret)


def test_rotating_a_key_shows_the_new_secret_once_and_retires_the_old(
        watched: Watch, ui_gateway: InProcessGateway) -> None:
    page = signed_in(watch := watched())
    create_tenant(page, "rotates")
    row(page, "rotates").get_by_role("link", name="Keys").click()
    page.get_by_role("button", name="Create key").click()
    old = page.get_by_label("New API key").inner_text().strip()
    page.get_by_role("button", name="Rotate").click()
    new = page.get_by_label("New API key").inner_text().strip()
    assert new != old and new.startswith("sk-")
    expect(page.get_by_role("status")).to_contain_text("rotated")
    assert chat(ui_gateway, new)
    with pytest.raises(openai.AuthenticationError):
        chat(ui_gateway, old)
    assert watch.errors == []


def test_a_tenant_is_edited_then_deleted_after_a_confirmation(
        watched: Watch, ui_gateway: InProcessGateway, shots: Shots) -> None:
    page = signed_in(watched())
    create_tenant(page, "edit-me", rps="1")
    row(page, "edit-me").get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Requests per second")).to_have_value("1")
    page.get_by_label("Name").fill("edited")
    page.get_by_label("Requests per second").fill("")
    page.get_by_label("Daily token quota").fill("1000000")
    page.get_by_label("Burst").fill("99999999999")  # fine to the browser, not to the API
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Burst: too large")
    expect(page.get_by_label("Name")).to_have_value("edited")  # what was typed stays
    shots(page, "tenant-form")
    page.get_by_label("Burst").fill("")
    page.get_by_role("button", name="Save").click()
    edited = row(page, "edited")
    expect(edited).to_contain_text("Daily token quota: 1,000,000")
    expect(edited).not_to_contain_text("Requests per second")
    # Cancelled, nothing happens; confirmed, it is gone.
    edited.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete tenant edited")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(edited).to_be_visible()
    edited.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("Tenant edited deleted")
    expect(row(page, "edited")).to_have_count(0)
    names = [t["name"] for t in admin_api(ui_gateway, "GET", "/tenants").json()["tenants"]]
    assert "edited" not in names and "edit-me" not in names


def test_a_breaker_opened_by_failures_is_reset_on_the_providers_page(
        watched: Watch, ui_gateway: InProcessGateway, shots: Shots) -> None:
    for _ in range(3):
        r = httpx.post(ui_gateway.http_url + "/v1/chat/completions", timeout=20,
                       headers={"Authorization": "Bearer adm-ui-test-key-0123456789"},
                       json={"model": "down-1", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code >= 500
    page = signed_in(watched())
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Providers").click()
    down = row(page, "openai_compatible")
    expect(down).to_contain_text("open")
    expect(row(page, "mock")).to_contain_text("closed")
    expect(row(page, "mock").get_by_role("button", name="Reset")).to_have_count(0)
    shots(page, "providers")
    down.get_by_role("button", name="Reset").click()
    expect(page.get_by_role("status")).to_contain_text("reset")
    expect(down).to_contain_text("closed")
    expect(down.get_by_role("button", name="Reset")).to_have_count(0)
    breakers = admin_api(ui_gateway, "GET", "/circuit-breakers").json()["circuit_breakers"]
    assert {b["provider"]: b["state"] for b in breakers}["down"].endswith("CLOSED")


@pytest.mark.parametrize("name", ["<script>window.__pwned = 1</script>",
                                  '"><img src=x onerror="window.__pwned = 2">'])
def test_markup_in_a_tenant_name_is_shown_as_text(watched: Watch, ui_gateway: InProcessGateway,
                                                  name: str) -> None:
    tenant = admin_api(ui_gateway, "POST", "/tenants", {"name": name}).json()["tenant"]
    key = admin_api(ui_gateway, "POST", f"/tenants/{tenant['id']}/keys", {"name": name})
    chat(ui_gateway, key.json()["secret"])
    # A model name is the client's too: an unknown one is refused, and logged as asked for.
    r = httpx.post(ui_gateway.http_url + "/v1/chat/completions", timeout=10,
                   headers={"Authorization": f"Bearer {key.json()['secret']}"},
                   json={"model": name, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404
    watch = watched()
    page = signed_in(watch)
    for path in ("/ui/tenants", f"/ui/tenants/{tenant['id']}/keys",
                 f"/ui/tenants/{tenant['id']}/edit", "/ui/requests"):
        page.goto(path)
        if path.endswith("/edit"):
            expect(page.get_by_role("heading", level=1)).to_have_text(f"Edit tenant {name}")
            expect(page.get_by_label("Name")).to_have_value(name)
        else:
            expect(page.get_by_text(name, exact=True).filter(visible=True).first).to_be_visible()
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("img").count() == 0 and page.locator("main script").count() == 0
    expect(page.get_by_label("Tenant")).to_contain_text(name)
    expect(row(page, "mock-1").filter(has_text=name).first).to_be_visible()


def test_every_page_labels_its_controls_and_fits_400_px(watched: Watch,
                                                        ui_gateway: InProcessGateway,
                                                        shots: Shots) -> None:
    tenant = admin_api(ui_gateway, "POST", "/tenants", {"name": "narrow"}).json()["tenant"]
    paths = ("/ui/", "/ui/?window=day", "/ui/tenants", "/ui/tenants/new",
             f"/ui/tenants/{tenant['id']}/edit", f"/ui/tenants/{tenant['id']}/keys",
             "/ui/requests", "/ui/providers")
    for viewport in (None, NARROW):
        page = signed_in(watched(viewport=viewport) if viewport else watched())
        check_labelled_and_fitting(page, paths, viewport)
        if viewport:
            page.goto("/ui/")
            shots(page, "overview-narrow")
            page.goto("/ui/tenants")
            shots(page, "tenants-narrow")


def test_the_overview_of_the_day_and_an_empty_request_log_say_what_to_do(
        watched: Watch, gateway_factory: Callable[..., InProcessGateway]) -> None:
    from tests.ui.conftest import ADMIN, ui_config

    fresh = gateway_factory(ui_config(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    page = signed_in(watched(gateway=fresh))
    expect(page.get_by_text("No requests in the last hour")).to_be_visible()
    page.get_by_role("link", name="The last day").click()
    expect(page.get_by_text("No requests in the last day")).to_be_visible()
    expect(page.locator("figure.chart")).to_have_count(5)
    page.goto("/ui/requests")
    expect(page.get_by_text("No requests yet")).to_be_visible()
    page.goto("/ui/tenants")
    expect(page.get_by_text("No tenants yet")).to_be_visible()


def test_the_request_log_pages_through_older_requests(watched: Watch,
                                                      ui_gateway: InProcessGateway) -> None:
    tenant = admin_api(ui_gateway, "POST", "/tenants", {"name": "pages"}).json()["tenant"]
    key = admin_api(ui_gateway, "POST", f"/tenants/{tenant['id']}/keys", {}).json()["secret"]
    with httpx.Client(base_url=ui_gateway.http_url, timeout=10,
                      headers={"Authorization": f"Bearer {key}"}) as client:
        ids = [client.post("/v1/chat/completions", json={
            "model": "mock-2", "messages": [{"role": "user", "content": "x"}]}
        ).headers["x-request-id"] for _ in range(52)]
    page = signed_in(watched(), path="/ui/requests")
    page.get_by_label("Tenant").select_option(label="pages")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text(ids[-1])  # newest first
    page.get_by_role("link", name="Older").click()
    expect(rows).to_have_count(2)
    expect(rows.last).to_contain_text(ids[0])
    expect(page.get_by_role("link", name="Older")).to_have_count(0)
    expect(page.get_by_label("Tenant")).to_have_value(tenant["id"])  # the filter holds
    page.get_by_role("link", name="Newest").click()
    expect(rows).to_have_count(50)
