"""Budgets on the admin UI's pages, in Chromium against a real in-process gateway: a
tenant's budget period and model budgets set on its form and kept by a Save that changes
something else (the form once dropped them), shown on the tenants list; a key made with a
budget of its own, listed with it and still with it after a rotation; a model name full of
markup shown as text."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.inprocess import InProcessGateway
from tests.ui.conftest import Watched, admin_api, signed_in
from tests.ui.test_pages import row

# A browser loads the machine: scripts/test.sh runs these alone, after the rest.
pytestmark = pytest.mark.serial

Watch = Callable[..., Watched]
Shots = Callable[[Page, str], None]


def tenant_of(gw: InProcessGateway, tenant_id: str) -> dict[str, object]:
    answer: dict[str, object] = admin_api(gw, "GET", f"/tenants/{tenant_id}").json()["tenant"]
    return answer


def test_saving_a_tenant_keeps_the_budgets_the_api_gave_it(
        watched: Watch, ui_gateway: InProcessGateway) -> None:
    tenant = admin_api(ui_gateway, "POST", "/tenants", {
        "name": "api-budgets", "monthly_budget_usd": 40, "fallback_providers": ["mock"],
        "model_budgets": {"mock-1": 12.5, "mock-2": 3},
        "budget_period": "BUDGET_PERIOD_DAILY"}).json()["tenant"]
    page = signed_in(watched())
    page.goto(f"/ui/tenants/{tenant['id']}/edit")
    page.get_by_label("Burst").fill("7")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Tenant api-budgets saved")
    saved = tenant_of(ui_gateway, tenant["id"])
    assert saved["limits"] == {"burst": 7}
    assert saved["model_budgets"] == {"mock-1": 12.5, "mock-2": 3}
    assert saved["budget_period"] == "BUDGET_PERIOD_DAILY"
    assert saved["monthly_budget_usd"] == 40 and saved["fallback_providers"] == ["mock"]


def test_a_tenants_budgets_are_set_on_its_form_and_kept_by_the_next_save(
        watched: Watch, ui_gateway: InProcessGateway, shots: Shots) -> None:
    page = signed_in(watched())
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tenants").click()
    page.get_by_role("button", name="New tenant").click()
    page.get_by_label("Name", exact=True).fill("budgeted")
    page.get_by_label("Budget (USD)").fill("50")
    page.get_by_label("Budget period").select_option(label="Daily")
    # What is wrong is named by line, and what was typed stays.
    page.get_by_label("Model budgets").fill("mock-1 = 12.5\nmock-2 = -1\nmock-1 = 3\nhalf")
    page.get_by_role("button", name="Create").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Model budgets, line 2 (mock-2): must be 0 or more.")
    expect(alert).to_contain_text("Model budgets, line 3: mock-1 is already on line 1.")
    expect(alert).to_contain_text("Model budgets, line 4: write it as model = USD")
    expect(page.get_by_label("Budget period")).to_have_value("daily")
    page.get_by_label("Model budgets").fill("mock-1 = 12.5\n\nmock-2 = $1,000")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status")).to_contain_text("Tenant budgeted created")
    budgeted = row(page, "budgeted")
    expect(budgeted).to_contain_text("$50.00 / day")
    expect(budgeted).to_contain_text("mock-1: $12.50 / day")
    expect(budgeted).to_contain_text("mock-2: $1,000.00 / day")
    shots(page, "tenants-budgets")

    # Another field changed and saved: the budgets stay, on the form and in the API.
    budgeted.get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Budget period")).to_have_value("daily")
    expect(page.get_by_label("Model budgets")).to_have_value("mock-1 = 12.5\nmock-2 = 1000")
    page.get_by_label("Requests per second").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Tenant budgeted saved")
    expect(budgeted).to_contain_text("Requests per second: 3")
    expect(budgeted).to_contain_text("$50.00 / day")
    expect(budgeted).to_contain_text("mock-1: $12.50 / day")
    tenant_id = (budgeted.get_by_role("cell").filter(has_text="ten_").inner_text().strip())
    saved = tenant_of(ui_gateway, tenant_id)
    assert saved["model_budgets"] == {"mock-1": 12.5, "mock-2": 1000}
    assert saved["budget_period"] == "BUDGET_PERIOD_DAILY" and saved["monthly_budget_usd"] == 50

    # Emptied, they are gone; monthly again.
    budgeted.get_by_role("button", name="Edit").click()
    page.get_by_label("Model budgets").fill("")
    page.get_by_label("Budget period").select_option(label="Monthly")
    page.get_by_role("button", name="Save").click()
    expect(budgeted).to_contain_text("$50.00 / month")
    expect(budgeted).not_to_contain_text("mock-1:")
    saved = tenant_of(ui_gateway, tenant_id)
    assert "model_budgets" not in saved or saved["model_budgets"] == {}
    assert saved["budget_period"] == "BUDGET_PERIOD_MONTHLY"


def test_a_key_made_with_a_budget_lists_it_and_keeps_it_when_rotated(
        watched: Watch, ui_gateway: InProcessGateway, shots: Shots) -> None:
    tenant = admin_api(ui_gateway, "POST", "/tenants", {"name": "key-budgets"}).json()["tenant"]
    page = signed_in(watched(), path=f"/ui/tenants/{tenant['id']}/keys")
    page.get_by_label("Name").fill("intern")
    page.get_by_label("Budget (USD)").fill("-5")
    page.get_by_label("Budget period").select_option(label="Daily")
    # The browser refuses a negative amount itself; the page does too, said in its words.
    page.get_by_label("Budget (USD)").evaluate("el => el.removeAttribute('min')")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_contain_text("Budget (USD): must be 0 or more.")
    expect(page.get_by_label("Name")).to_have_value("intern")
    expect(page.get_by_label("Budget period")).to_have_value("daily")
    page.get_by_label("Budget (USD)").fill("5")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("status")).to_contain_text("Key created")
    expect(row(page, "intern")).to_contain_text("$5.00 / day")
    page.get_by_label("Name").fill("plain")
    page.get_by_role("button", name="Create key").click()
    expect(row(page, "plain")).to_contain_text("none")
    shots(page, "keys-budgets")
    keys = admin_api(ui_gateway, "GET", f"/tenants/{tenant['id']}/keys").json()["api_keys"]
    intern = next(k for k in keys if k["name"] == "intern")
    assert intern["monthly_budget_usd"] == 5
    assert intern["budget_period"] == "BUDGET_PERIOD_DAILY"

    row(page, "intern").get_by_role("button", name="Rotate").click()
    expect(page.get_by_role("status")).to_contain_text("rotated")
    # The successor keeps the name and the budget of the key it replaces.
    expect(row(page, "intern").filter(has_text="active")).to_contain_text("$5.00 / day")
    expect(row(page, "intern").filter(has_text="revoked")).to_have_count(1)
    expect(row(page, "rotated")).to_have_count(0)


@pytest.mark.parametrize("model", ["<script>window.__pwned = 1</script>",
                                   '"><img src=x onerror="window.__pwned = 2">'])
def test_markup_in_a_budgeted_model_name_is_shown_as_text(
        watched: Watch, ui_gateway: InProcessGateway, model: str) -> None:
    tenant = admin_api(ui_gateway, "POST", "/tenants", {
        "name": f"markup-budgets-{len(model)}", "model_budgets": {model: 2}}).json()["tenant"]
    page = signed_in(watched(), path="/ui/tenants")
    expect(row(page, tenant["id"])).to_contain_text(f"{model}: $2.00 / month")
    page.goto(f"/ui/tenants/{tenant['id']}/edit")
    expect(page.get_by_label("Model budgets")).to_have_value(f"{model} = 2")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img").count() == 0 and page.locator("main script").count() == 0
    assert tenant_of(ui_gateway, tenant["id"])["model_budgets"] == {model: 2}
