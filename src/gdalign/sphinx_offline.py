"""A Sphinx extension for a site that makes no request outside its own folder.

Jupyter Book 1 always loads ``sphinx_thebe``, which puts on every page an inline
script naming thebe's CDN URL and a loader for it, even with thebe switched off;
under Sphinx 7 that inline script is added twice, and the second copy is a
JavaScript error (``THEBE_JS_URL`` declared twice). This book has no live code
(launch buttons and thebe are off in ``_config.yml``), so the thebe scripts are
dropped from every page.

MathJax is served from the site itself by ``sphinx-mathjax-offline``.
"""
from __future__ import annotations


def _is_thebe(js) -> bool:
    filename = str(getattr(js, "filename", "") or "")
    body = str(getattr(js, "attributes", {}).get("body", ""))
    return "thebe" in filename or "THEBE_JS_URL" in body


def drop_thebe_scripts(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = [js for js in context["script_files"] if not _is_thebe(js)]


def setup(app):
    app.connect("html-page-context", drop_thebe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
