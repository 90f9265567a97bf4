"""snakeviz's page for one profile, behind a token: the server `perflab snakeviz` runs.

snakeviz's own server (`python -m snakeviz`) shows any path of the machine, directory
listings included, to whoever reaches its port: on a shared machine, every local user, with
the rights of the user who started it. This one serves snakeviz's handlers with two routes
only, its page for the one profile perflab wrote and snakeviz's static files, and answers
only a browser that holds the run's random token (from the URL perflab prints, then a
cookie). The token comes in the environment, not the command line, which `ps` shows to all.

    python -m perflab.lab.snakeviz_server PROFILE PORT     (token in PERFLAB_SNAKEVIZ_TOKEN)
"""

from __future__ import annotations

import hmac
import os
import sys
from typing import Any

import tornado.ioloop
import tornado.web
from snakeviz.main import VizHandler
from snakeviz.main import settings as snakeviz_settings

HOST = "127.0.0.1"
TOKEN_ENV = "PERFLAB_SNAKEVIZ_TOKEN"
COOKIE = "perflab_snakeviz"


def _allowed(handler: tornado.web.RequestHandler) -> None:
    """The token from the query (then kept in a cookie for the page's own requests), or 403."""
    token = str(handler.settings["perflab_token"])
    given = handler.get_query_argument("token", None)
    if given is not None and hmac.compare_digest(given.encode(), token.encode()):
        handler.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return
    cookie = handler.get_cookie(COOKIE) or ""
    if not hmac.compare_digest(cookie.encode(), token.encode()):
        raise tornado.web.HTTPError(403)


class ProfileHandler(VizHandler):  # type: ignore[misc] # snakeviz is untyped
    def prepare(self) -> None:
        _allowed(self)

    def get(self, profile_name: str) -> None:
        if profile_name != self.settings["perflab_profile"]:
            raise tornado.web.HTTPError(404)  # no other file, and no directory listing
        super().get(profile_name)


class StaticHandler(tornado.web.StaticFileHandler):
    def prepare(self) -> None:
        _allowed(self)


def make_app(profile: str, token: str) -> tornado.web.Application:
    # No access log: its lines would carry the token (in the URL) into the terminal's scrollback.
    settings: dict[str, Any] = {**snakeviz_settings, "debug": False, "static_handler_class": StaticHandler,
                                "log_function": lambda handler: None,
                                "perflab_profile": profile, "perflab_token": token}
    return tornado.web.Application([(r"/snakeviz/(.*)", ProfileHandler)], **settings)


def main(argv: list[str]) -> int:
    profile, port = argv[0], int(argv[1])
    token = os.environ.pop(TOKEN_ENV, "")
    if len(token) < 16:
        print(f"snakeviz_server: no token in {TOKEN_ENV}", file=sys.stderr)
        return 2
    make_app(os.path.abspath(profile), token).listen(port, address=HOST)
    tornado.ioloop.IOLoop.current().start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
