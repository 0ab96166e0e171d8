"""``perf2score serve``: a local web page that converts a dropped performance to a score.

``jobs`` holds the conversion queue and its temporary folder, ``app`` the HTTP routes
(FastAPI), ``static/`` the page itself (HTML, CSS and JavaScript served by the package, so
the page works offline).
"""
