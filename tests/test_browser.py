"""The DevTools-protocol tab the JupyterLab browser test drives (tests/browser.py), on a local
page: a real click, typed text, Shift+Enter and a screenshot reach the page as a user's would."""

from __future__ import annotations

from browser import browser

PAGE = """<!doctype html><html><body>
<textarea id="cell" style="width:400px;height:60px"></textarea>
<button id="go" style="width:120px;height:40px" onclick="document.getElementById('out').textContent = 'clicked'">Go</button>
<pre id="out"></pre>
<script>
document.getElementById('cell').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && event.shiftKey) {
    event.preventDefault();
    document.getElementById('out').textContent = 'ran: ' + document.getElementById('cell').value;
  }
});
</script></body></html>"""


def test_click_type_run_and_screenshot(tmp_path):
    page_file = tmp_path / "page.html"
    page_file.write_text(PAGE)
    with browser(tmp_path / "chromium") as page:
        page.call("Page.enable")
        page.navigate(page_file.as_uri())
        page.wait_for("document.getElementById('go') !== null", 30, "the button")
        page.click("#go")
        assert page.wait_for("document.getElementById('out').textContent", 10, "the click's result") == "clicked"
        page.click("#cell")
        page.type("print(6 * 7)")
        page.press("Enter", 13, modifiers=8)
        assert page.wait_for("document.getElementById('out').textContent.startsWith('ran')", 10, "the run")
        assert page.text().endswith("ran: print(6 * 7)")
        png = page.screenshot(tmp_path / "page.png")
    assert png.stat().st_size > 1000
