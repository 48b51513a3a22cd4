"""The built site in headless Chromium with the network cut.

Every page loads, every image loads, the math is typeset by the site's own MathJax
(no raw ``\\(`` left, no MathJax error), and no request leaves the machine. A screenshot
of a theorem page is kept under ``_build/site-test/`` (a CI artifact).

``test_built_site`` checks ``_build/html`` as ``make book`` leaves it: it skips when the
site has not been built, except under CI, where it fails. ``test_book_pages_offline``
builds the real pages around placeholder notebooks in a temporary folder and checks
that, so the site machinery is tested even before ``make book``.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from test_site_build import make_placeholder_book

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO / "_build" / "site-test"
THEOREM_PAGE = "notebooks/03_theorem1.html"
# Chromium as root in a container, and nothing that phones home on its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions",
                 # Any host name but the loopback address resolves to nothing: the network is cut.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

# After MathJax is done: what is left untypeset, what errored, which images did not load.
_PAGE_PROBE = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const imgs = [...document.images];
  for (const img of imgs) { img.loading = 'eager'; if (!img.complete) { img.scrollIntoView(); } }
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(r => { img.onload = img.onerror = r; })));
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, textarea, .highlight').forEach(e => e.remove());
  const text = body.innerText;
  const math = [...document.querySelectorAll('span.math, div.math')];
  return {
    mathjax: !!(window.MathJax && MathJax.startup),
    raw_tex: ['\\\\(', '\\\\)', '\\\\[', '\\\\]'].filter(d => text.includes(d)),
    math_total: math.length,
    math_untypeset: math.filter(e => !e.querySelector('mjx-container')).length,
    math_errors: document.querySelectorAll('mjx-merror').length,
    images: imgs.length,
    broken_images: imgs.filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src),
  };
}
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


def _serve(directory: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _need_browser() -> None:
    """Skip without Chromium or playwright locally; under CI their absence is a failure."""
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        problems.append("Chromium is not installed (apt-get install chromium)")
    if problems:
        if os.environ.get("CI"):
            pytest.fail("; ".join(problems))
        pytest.skip("; ".join(problems))


def check_site(html: Path, screenshot_pages: dict[str, Path]) -> tuple[list[str], dict[str, int]]:
    """Load every page of ``html``; return (problems, images loaded per page). Saves the screenshots asked for."""
    from playwright.sync_api import sync_playwright

    pages = sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                   if not p.relative_to(html).parts[0].startswith("_"))
    assert pages, f"no pages in {html}"
    server = _serve(html)
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    problems: list[str] = []
    outside: list[str] = []
    images: dict[str, int] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")

            def gate(route):
                if route.request.url.startswith(origin) or urlparse(route.request.url).scheme in ("data", "blob"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", gate)
            page = context.new_page()
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
            page.on("pageerror", lambda e: problems.append(f"JavaScript error: {e}"))
            for rel in pages:
                resp = page.goto(f"{origin}/{rel}", wait_until="load")
                if resp is None or resp.status != 200:
                    problems.append(f"{rel}: did not load ({resp and resp.status})")
                    continue
                page.wait_for_load_state("networkidle")
                r = page.evaluate(_PAGE_PROBE)
                if r["math_total"] and not r["mathjax"]:
                    problems.append(f"{rel}: has math but MathJax did not start")
                if r["raw_tex"]:
                    problems.append(f"{rel}: raw TeX delimiters left: {r['raw_tex']}")
                if r["math_untypeset"]:
                    problems.append(f"{rel}: {r['math_untypeset']} of {r['math_total']} math elements not typeset")
                if r["math_errors"]:
                    problems.append(f"{rel}: {r['math_errors']} MathJax errors")
                for src in r["broken_images"]:
                    problems.append(f"{rel}: image did not load: {src}")
                images[rel] = r["images"] - len(r["broken_images"])
                if rel in screenshot_pages:
                    screenshot_pages[rel].parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot_pages[rel]), full_page=True)
            browser.close()
    finally:
        server.shutdown()
    problems += [f"request to an outside host: {u}" for u in sorted(set(outside))]
    return problems, images


@pytest.mark.slow
def test_built_site():
    html = REPO / "_build" / "html"
    if not (html / "index.html").is_file():
        if os.environ.get("CI"):
            pytest.fail("_build/html is missing: CI runs `make book` before the tests")
        pytest.skip("_build/html not built; run `make book`")
    _need_browser()
    shot = SCREENSHOTS / "03_theorem1.png"
    problems, images = check_site(html, {THEOREM_PAGE: shot})
    assert not problems, "\n".join(problems)
    assert len(images) >= 15
    figureless = [p for p in images if p.startswith("notebooks/") and not images[p]]
    assert not figureless, f"notebook pages without a figure: {figureless}"
    assert shot.is_file() and shot.stat().st_size > 10_000, "no screenshot of the theorem page"


@pytest.mark.slow
def test_book_pages_offline(tmp_path):
    """The real pages and config, placeholder notebooks: builds, then passes the browser checks."""
    _need_browser()
    from gdalign.book import build_book

    root = make_placeholder_book(tmp_path)
    log: list[str] = []
    assert build_book(root, echo=log.append) == 0, "\n".join(log)
    html = root / "_build" / "html"
    shots = {THEOREM_PAGE: tmp_path / "theorem.png", "book/assumptions.html": SCREENSHOTS / "assumptions.png"}
    problems, images = check_site(html, shots)
    assert not problems, "\n".join(problems)
    assert len(images) >= 15
    assert all(images[f"notebooks/{nb}.html"] == 1 for nb in ("01_setting", "03_theorem1", "10_alexnet")), \
        "the fixture's histogram is missing from the notebook pages"
    assert (tmp_path / "theorem.png").stat().st_size > 10_000
    # The math of the pages is there, and typeset (checked above): assumptions use sphinx-proof.
    page = (html / "book" / "assumptions.html").read_text()
    assert page.count('class="admonition assumption') >= 5 or page.count("assumption") >= 5
    assert "mathjax/tex-chtml.js" in page
    for html_page in html.rglob("*.html"):  # not even a URL of a CDN in a script
        text = html_page.read_text()
        for host in ("cdn.jsdelivr", "unpkg.com", "cdnjs", "googleapis", "mathjax.org"):
            assert host not in text, f"{host} named in {html_page.relative_to(html)}"
