"""Retake the README's screenshots from a real browser (Chromium driven by Playwright).

Not a project dependency: run it from any environment with Playwright
(`pip install playwright`) and a Chromium (`apt-get install chromium`, or
`playwright install chromium`), after `make repro` and `dvc exp run -S alpha=0.3`
in the clone, with `mlflow ui --port 5055` started in its root::

    python docs/screenshots/take.py --base-run <evaluate run id> --exp-run <evaluate run id> \\
        --plots dvc_plots/index.html [--mlflow http://127.0.0.1:5055] [--experiment 1]

The `dvc plots` page is loaded with every network request refused, and the
script prints what it refused (nothing, when the page renders offline).
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent


def close_assistant(page) -> None:
    """MLflow 3.17 opens an 'Assistant' side panel; close it so the runs fill the page."""
    loc = page.locator('button[aria-label="Close"]')
    if loc.count():
        loc.last.click(timeout=2000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-run", required=True)
    ap.add_argument("--exp-run", required=True)
    ap.add_argument("--plots", required=True)
    ap.add_argument("--mlflow", default="http://127.0.0.1:5055")
    ap.add_argument("--experiment", default="1")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default=str(HERE))
    a = ap.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(f"{a.mlflow}/#/experiments/{a.experiment}/runs?workflowType=machine_learning")
        page.wait_for_timeout(6000)
        close_assistant(page)
        for newest_first in (True, False):  # expand the two pipeline runs' stage runs
            buttons = page.locator('button[data-component-id*="runnamecellrenderer"]').all()
            if buttons:
                buttons[-1 if newest_first else 0].click(timeout=2000)
                page.wait_for_timeout(1500)
        page.screenshot(path=f"{a.out}/mlflow-runs.png")

        runs = urllib.parse.quote(json.dumps([a.base_run, a.exp_run]))
        exps = urllib.parse.quote(json.dumps([a.experiment]))
        page.set_viewport_size({"width": 1500, "height": 1900})
        page.goto(f"{a.mlflow}/#/compare-runs?runs={runs}&experiments={exps}")
        page.wait_for_timeout(6000)
        close_assistant(page)
        for i in (0, 1):  # params, then metrics: show what differs
            page.get_by_text("Show diff only").nth(i).click(timeout=3000)
        chip = page.get_by_text("system/cpu_utilization_percentage").first  # the default metric axis
        chip.locator("xpath=..").locator("svg").first.click(timeout=3000)
        for name in ("acc_mean", "ece_mean"):
            box = page.get_by_text("Metrics:").locator("xpath=following::input[1]")
            box.click(timeout=3000)
            box.fill(name)
            page.wait_for_timeout(500)
            page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        page.mouse.click(1300, 60)
        page.wait_for_timeout(1500)
        page.screenshot(path=f"{a.out}/mlflow-compare.png", full_page=True)
        browser.close()

        browser = p.chromium.launch(executable_path=a.chromium, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        refused: list[str] = []

        def offline(route) -> None:
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort()

        context.route("**/*", offline)
        page = context.new_page()
        page.goto(Path(a.plots).resolve().as_uri())
        page.wait_for_timeout(6000)
        page.screenshot(path=f"{a.out}/dvc-plots.png", full_page=True)
        print("network requests refused on the plots page:", refused or "none")
        browser.close()


if __name__ == "__main__":
    main()
