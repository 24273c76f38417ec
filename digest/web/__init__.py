"""`digest web`: sign-up with double opt-in, each reader's preferences, one-click
unsubscribe (RFC 8058), and the public archive with its Atom feed.

An ASGI app (Starlette) served by uvicorn. What it holds to: a GET never changes
anything (mail scanners follow links), nothing redirects to a URL taken from the
request, no page lists subscribers, no page runs a script (the Content-Security-
Policy forbids it), and every form carries a CSRF token.
"""

from digest.web.routes import create_app

__all__ = ["create_app"]
