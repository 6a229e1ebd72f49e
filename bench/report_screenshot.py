"""A full-page screenshot of a run's report.html in headless Chromium, and where each section sits.

    .venv/bin/python bench/report_screenshot.py outputs/runs/<run> [--out report.png] [--width 1280]

Opens the page as the browser test does (Debian's chromium through Playwright, no network), records
every request the page makes, saves the screenshot (default: ``<run>/report.png``) and prints, top to
bottom, each section's heading and its vertical offset, then the headline sentence — what a person
sees on opening the page. Exits 1 if the page requested anything beyond the file itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser import chromium_page  # noqa: E402  (the tests' launcher: one set of Chromium flags)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder holding report.html")
    parser.add_argument("--out", type=Path, help="the PNG (default: <run>/report.png)")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    page_path = args.run / "report.html"
    out = args.out or args.run / "report.png"
    requests: list[str] = []
    with chromium_page(width=args.width) as page:
        page.on("request", lambda request: requests.append(request.url))
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        height = page.evaluate("document.documentElement.scrollHeight")
        print(f"page: {page_path}  ({args.width} x {height} px)")
        for section in page.locator("main > section").all():
            box = section.bounding_box()
            print(f"  y={box['y']:6.0f}  {section.locator('h2').first.inner_text()}")
        print("headline:", page.locator("#answer p.headline").inner_text())
        page.screenshot(path=str(out), full_page=True)
    external = [u for u in requests if not u.startswith(("file:", "data:"))]
    print(f"screenshot: {out}")
    print(f"requests: {len(requests)}, beyond this machine: {len(external)} {external if external else ''}")
    return 1 if external else 0


if __name__ == "__main__":
    sys.exit(main())
