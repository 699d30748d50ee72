"""The API docs page in a real browser: Swagger UI renders the served OpenAPI document and calls the API."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from services.devstack.stack import Endpoints
from tests.support import Accounts


def open_operation(page: Page, tag: str, operation_id: str) -> None:
    """Expand an operation and switch it to "Try it out"."""
    block = page.locator(f"#operations-{tag}-{operation_id}")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()


def test_the_page_lists_every_operation_of_the_document(page: Page, stack: Endpoints, http: httpx.Client) -> None:
    document = http.get("/api/openapi.json").json()
    operations = sum(len(item) for item in document["paths"].values())

    page.goto(f"{stack.gateway_url}/api/docs/")

    expect(page.get_by_role("heading", name="aiorch REST API")).to_be_visible()
    expect(page.locator(".opblock")).to_have_count(operations)
    expect(page.locator("#operations-JobService-JobService_WatchJob")).to_contain_text("/api/jobs/{id}/watch/")


def test_try_it_out_calls_the_api_with_the_authorized_token(page: Page, stack: Endpoints, accounts: Accounts) -> None:
    viewer = accounts.create("viewer")
    page.goto(f"{stack.gateway_url}/api/docs/")

    # Given the viewer's access token entered under "Authorize"
    page.locator(".auth-wrapper .authorize").click()
    page.locator(".modal-ux input").fill(viewer.access)
    page.locator(".modal-ux button.authorize").click()
    page.locator(".modal-ux button.btn-done").click()

    # When "Execute" reads the caller's own profile
    open_operation(page, "ProfileService", "ProfileService_GetProfile")
    block = page.locator("#operations-ProfileService-ProfileService_GetProfile")
    block.locator("input[placeholder=id]").fill("me")
    block.locator("button.execute").click()

    # Then the page shows the live answer: 200 and the viewer's profile
    answer = block.locator(".live-responses-table")
    expect(answer.locator("tr.response .response-col_status")).to_have_text("200")
    expect(answer).to_contain_text(viewer.username)
