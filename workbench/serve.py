"""`workbench serve`: textual-serve behind a token and an Origin check, on localhost only.

textual-serve alone answers anyone who can reach the port: another user of the server, or
a web page in the user's own browser (a page can open a websocket to ``localhost`` through
the SSH tunnel the README recommends).  Whoever connects drives the TUI: reads the session,
cancels and deletes jobs.  So, as Jupyter does:

- a random token is made at start and printed with the URL (``/?token=...``); the first
  page load with it sets a cookie (HttpOnly, SameSite=Strict) that the page's websocket
  then carries; every other request without the token or the cookie gets 403;
- the websocket must come from the page itself: its ``Origin`` must be this server
  (``http://localhost:PORT``, ``127.0.0.1`` or ``[::1]``); any other Origin gets 403, with
  or without the token (cookies travel with cross-site requests on localhost, whose
  cookies ignore the port);
- the ``Host`` header must name localhost (DNS rebinding: a page on evil.example whose
  name resolves to 127.0.0.1 sends ``Host: evil.example``);
- it binds to localhost only.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from aiohttp import web
from textual_serve.server import Server

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def new_token() -> str:
    return secrets.token_urlsafe(32)


class GuardedServer(Server):
    """textual-serve's Server with a token, an Origin check and a Host check in front."""

    def __init__(self, command: str, *, port: int, token: str, **kw: Any):
        super().__init__(command, host="localhost", port=port, **kw)
        self.token = token
        self.cookie = f"workbench-token-{port}"  # cookies on localhost are shared by every port
        self.origins = {f"http://{h}:{port}" for h in LOCAL_HOSTS}
        self.hosts = {f"{h}:{port}" for h in LOCAL_HOSTS}

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/?token={self.token}"

    def _token_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def refusal(self, request: web.Request) -> str | None:
        """Why ``request`` is refused, or None to let it through."""
        if request.host not in self.hosts:
            return "Host is not this server on localhost"
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins:
            return "Origin is not this server"
        if request.path.startswith("/static/"):
            return None  # the page's scripts and fonts: nothing of the session in them
        if request.path == "/ws" and origin is None:
            return "a websocket needs an Origin"
        if self._token_ok(request.query.get("token")) or self._token_ok(request.cookies.get(self.cookie)):
            return None
        return "no valid token (open the URL printed by `workbench serve`)"

    @web.middleware
    async def guard(self, request: web.Request, handler):
        why = self.refusal(request)
        if why is not None:
            return web.Response(status=403, text=f"403 forbidden: {why}\n")
        response = await handler(request)
        if self._token_ok(request.query.get("token")) and isinstance(response, web.Response):
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict", path="/")
        return response

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self.guard)
        return app
