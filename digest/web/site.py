"""What every page of `digest web` shares: rendering, forms and their CSRF tokens, and
the reader's choices read from a form.

Handlers run in a worker thread (the database is blocking I/O), take what the
request carried, and return a rendered page; none redirects. A form field that is
missing, repeated, too long or not one of the values offered is an InvalidInput,
which the pages answer with a 400 and one line saying what to fix.
"""

from __future__ import annotations

import time
import zoneinfo
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest.core.addresses import check_send_time
from digest.core.config import Config
from digest.core.errors import InvalidInput
from digest.core.models import CADENCES, WEEKDAYS, ChannelChoice
from digest.core.templating import templates_root
from digest.core.topics import MAX_CHARS as MAX_TOPIC_CHARS
from digest.core.topics import parse_topics
from digest.jobs import reader_channels, signup
from digest.store import Store
from digest.store.subscriber_repo import Preferences
from digest.web import csrf

BAD_FORM = (
    "This form has expired or did not come from this site, so nothing was changed. "
    "Reload the page and try again."
)
MAX_FIELD = 2000  # no field of these forms is longer (a feed URL is the longest)


class Site:
    def __init__(self, store: Store, config: Config) -> None:
        self.store, self.config = store, config
        self.key = csrf.load_key(config.secrets.web_secret, config.state_dir)
        self.cookie = csrf.cookie_name(config.web.base_url)
        self.env = Environment(
            loader=FileSystemLoader(templates_root() / "web"),
            undefined=StrictUndefined,
            autoescape=select_autoescape(["html", "j2"]),
        )
        offered = zoneinfo.available_timezones() | {config.digest.timezone}
        self.zones = sorted(offered)
        self.zone_set = frozenset(offered)

    # ------------------------------------------------------------ rendering
    def page(self, title: str, status: int = 200, template: str = "page", **parts: Any) -> Response:
        values = {
            "message": "",
            "error": "",
            "action": "",
            "button": "",
            "links": [],
            "body": "",
            "csrf_token": "",
            **parts,
        }
        html = self.env.get_template(f"{template}.html.j2").render(title=title, **values)
        return HTMLResponse(html, status_code=status)

    def form_page(
        self, request: Request, title: str, template: str, status: int = 200, **parts: Any
    ) -> Response:
        """A page with a form: its CSRF token, bound to the browser's cookie. A cookie
        this server did not sign is replaced, never adopted."""
        nonce = csrf.cookie_nonce(self.key, request.cookies.get(self.cookie))
        cookie = None
        if nonce is None:
            nonce, cookie = csrf.new_cookie(self.key)
        token = csrf.token_for(self.key, nonce, time.time())
        response = self.page(title, status, template, csrf_token=token, **parts)
        if cookie is not None:
            response.set_cookie(
                self.cookie,
                cookie,
                max_age=7 * 24 * 3600,
                path="/",
                httponly=True,
                samesite="lax",
                secure=self.cookie == csrf.SECURE_COOKIE,
            )
        return response

    def refused_form(self, **parts: Any) -> Response:
        return self.page("Please try again", 403, error=BAD_FORM, **parts)

    def csrf_ok(self, request: Request, form: FormData) -> bool:
        token = form.getlist(csrf.FIELD)
        return len(token) == 1 and csrf.check(
            self.key,
            request.cookies.get(self.cookie),
            token[0] if isinstance(token[0], str) else None,
            time.time(),
        )

    # ------------------------------------------------------------ the reader's choices
    def choices(self, prefs: Preferences, channels: ChannelChoice | None = None) -> dict[str, Any]:
        default = self.config.digest
        return {
            "channel_choice": channels or ChannelChoice(),
            "feeds": self.store.feeds.list(),
            "chosen": prefs.shows or (),
            "zones": self.zones,
            "timezone": prefs.timezone or default.timezone,
            "send_time": prefs.send_time or default.send_time,
            "topics": prefs.topics.text,
            "topics_only": prefs.topics.only,
            "max_topics": MAX_TOPIC_CHARS,
            "cadence": prefs.cadence,
            "weekday": prefs.weekday,
            "weekdays": WEEKDAYS,
        }

    def preferences(self, form: FormData) -> Preferences:
        """The reader's choices from a form; InvalidInput says what is wrong."""
        shows = signup.shows_from_urls(field_list(form, "show"), self.store.feeds.list())
        default = self.config.digest  # a field left out or empty: the default
        zone = field(form, "timezone") or default.timezone
        if zone not in self.zone_set:
            raise InvalidInput(f"{zone[:60]!r} is not one of the time zones offered")
        send_time = check_send_time(field(form, "send_time") or default.send_time)
        only = field(form, "topics_only")
        if only not in ("", "1", "on"):
            raise InvalidInput("'topics_only' is a checkbox: 1 or absent")
        cadence = field(form, "cadence") or "daily"
        if cadence not in CADENCES:
            raise InvalidInput("'cadence' is daily or weekly")
        weekday = field(form, "weekday") or WEEKDAYS[0]
        if weekday not in WEEKDAYS:
            raise InvalidInput("'weekday' is a day of the week: monday ... sunday")
        return Preferences(
            shows,
            None if zone == default.timezone else zone,
            None if send_time == default.send_time else send_time,
            parse_topics(field(form, "topics"), bool(only)),
            "weekly" if cadence == "weekly" else "daily",
            WEEKDAYS.index(weekday),
        )

    def channel_choice(self, form: FormData) -> ChannelChoice | None:
        """Where the form asks the editions to go; None when the form offered no channels
        (a client of the original form fields), which leaves them as they are."""
        if not field(form, "channels_shown"):
            return None
        return reader_channels.choose(
            self.config,
            field_list(form, "channel"),
            field(form, "webhook_url"),
            field(form, "webhook_format"),
        )


def field(form: FormData, name: str, limit: int = MAX_FIELD) -> str:
    """A single-valued text field ("" when absent); repeated, a file or too long: refused."""
    values = form.getlist(name)
    if len(values) > 1:
        raise InvalidInput(f"the form sent {name!r} more than once")
    value = values[0] if values else ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name!r} must be text")
    if len(value) > limit:
        raise InvalidInput(f"{name!r} is longer than {limit} characters")
    return value


def field_list(form: FormData, name: str) -> list[str]:
    """A repeated text field (the ticked shows)."""
    values = form.getlist(name)
    if any(not isinstance(v, str) or len(v) > MAX_FIELD for v in values):
        raise InvalidInput(f"{name!r} must be text of at most {MAX_FIELD} characters")
    return [str(v) for v in values]
