"""JupyterLab as a data scientist uses it, in a browser tab (tests/browser.py): the login page,
the launcher, a new notebook on a kernel, a cell run and its output read from the page."""

from __future__ import annotations

import json

from browser import Page

# The pop-up JupyterLab shows unless its news setting is decided (gpubox decides it: no).
NEWS_QUESTION = "official Jupyter news"


def shows_login(page: Page, url: str) -> str:
    """Open a URL without its token: the login page's text (fails if the lab opens instead)."""
    page.navigate(url)
    page.wait_for("document.location.pathname.endsWith('/login') && document.querySelector('input[type=password]') !== null",
                  60, "the login page with its token field")
    assert page.evaluate("document.querySelector('.jp-LabShell') === null"), "the lab opened without a token"
    return page.text()


def launcher_notebooks(page: Page, url: str) -> list[str]:
    """Open the lab (the URL with its token) on a fresh workspace, so that a notebook an earlier
    visit left open does not hide the launcher: the launcher's notebook kernels, by their names."""
    page.navigate(f"{url}&reset" if "?" in url else f"{url}?reset")
    page.wait_for("document.querySelectorAll('.jp-LauncherCard[data-category=\"Notebook\"]').length > 0", 180,
                  "the launcher's notebook kernels")
    return page.evaluate("Array.from(document.querySelectorAll('.jp-LauncherCard[data-category=\"Notebook\"]'))"
                         ".map((card) => card.getAttribute('title') || card.innerText.trim())")


def run_in_new_notebook(page: Page, kernel: str, code: str, timeout: float = 300) -> str:
    """From the open launcher: a new notebook on the named kernel, one cell of code run with
    Shift+Enter; the cell's output as the page shows it."""
    page.click(f".jp-LauncherCard[data-category=\"Notebook\"][title={json.dumps(kernel)}]")
    page.wait_for("document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content') !== null", 120,
                  "a new notebook")
    page.wait_for(f"Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-KernelName'))"
                  f".some((e) => e.innerText.trim() === {json.dumps(kernel)})", 120, f"the kernel {kernel} in the toolbar")
    # A cell run before the kernel is up is only skipped over: wait until the status bar says it is idle.
    page.wait_for(f"document.body.innerText.includes({json.dumps(kernel + ' | Idle')})", 180, f"the kernel {kernel} idle")
    editor = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content"
    page.click(editor)
    page.type(code)
    page.wait_for(f"document.querySelector({json.dumps(editor)}).innerText === {json.dumps(code)}", 30, "the typed code")
    page.press("Enter", 13, modifiers=8)  # Shift+Enter: run the cell
    # Done when the cell's prompt shows its execution count ("[*]" while it runs).
    cell = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell"
    page.wait_for(f"/\\[[0-9]+\\]/.test(document.querySelector({json.dumps(cell + ' .jp-InputPrompt')}).innerText)",
                  timeout, "the cell's execution count")
    return page.evaluate(f"Array.from(document.querySelector({json.dumps(cell)}).querySelectorAll('.jp-OutputArea-output'))"
                         ".map((out) => out.innerText.trim()).join('\\n')")
