"""Swagger UI in a real headless Chromium: authorise with the key, execute a request, read 200."""

from __future__ import annotations

import json

import pytest

from tests.support.auth import auth_headers
from tests.support.browser import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

# What a person does on /docs, as page script: Authorize -> apikey -> Authorize -> Close;
# GET /orders/ -> Try it out -> status=shipping -> Execute; then the status shown.
SCRIPT = """
(async (key) => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const until = async (find, what) => {
    for (let i = 0; i < 400; i++) {
      const found = find();
      if (found) return found;
      await sleep(50);
    }
    throw new Error("not found: " + what);
  };
  const type = (input, value) => {
    const proto = input instanceof HTMLSelectElement ? HTMLSelectElement : HTMLInputElement;
    Object.getOwnPropertyDescriptor(proto.prototype, "value").set.call(input, value);
    const event = proto === HTMLInputElement ? "input" : "change";
    input.dispatchEvent(new Event(event, {bubbles: true}));
  };
  (await until(() => document.querySelector(".auth-wrapper .btn.authorize"), "Authorize")).click();
  const section = await until(() => [...document.querySelectorAll(".modal-ux .auth-container")]
    .find(s => s.textContent.includes("apiKey")), "apiKey section");
  type(section.querySelector("input"), key);
  section.querySelector("button.authorize").click();
  await until(() => [...document.querySelectorAll(".modal-ux .auth-container")].find(
    s => s.textContent.includes("apiKey") && /Logout/.test(s.textContent)), "authorised");
  document.querySelector(".modal-ux .btn-done, .modal-ux .close-modal").click();
  const block = await until(() => document.getElementById("operations-orders-listOrders"), "op");
  const summary = block.querySelector(".opblock-summary-control") ||
    block.querySelector(".opblock-summary");  // the toggle button in Swagger UI 5
  summary.click();
  (await until(() => block.querySelector(".try-out__btn"), "Try it out")).click();
  const status = await until(
    () => block.querySelector("tr[data-param-name='status'] :is(select, input)"),
    "status parameter");
  type(status, "shipping");
  (await until(() => block.querySelector(".execute"), "Execute")).click();
  const shown = await until(
    () => block.querySelector(".live-responses-table tbody .response-col_status"), "response");
  const curl = block.querySelector(".curl-command, .curl")?.textContent || "";
  return JSON.stringify({status: shown.textContent.trim(), curl: curl});
})
"""


@pytest.mark.parametrize("valid", [True, False], ids=["session-key", "unknown-key"])
def test_swagger_ui_authorises_with_the_key_and_lists_orders(edge_stack, valid):
    key = auth_headers()["apikey"] if valid else "not-a-key"
    with Browser() as browser:
        page = browser.open(f"{edge_stack.v1.url}/docs")
        shown = json.loads(browser.evaluate(page, f"{SCRIPT}({json.dumps(key)})", timeout=60))
    # The page shows what the edge answered: 200 with the key, 401 with a wrong one.
    assert shown["status"].startswith("200" if valid else "401"), shown["status"]
    assert f"apikey: {key}" in shown["curl"] and "status=shipping" in shown["curl"]
