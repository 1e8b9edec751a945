"""`HackerNewsTools`: read top stories, items and users from the Hacker News API.

The toolkit talks to the public Hacker News API (``https://hacker-news.firebaseio.com/v0``),
and only when a model calls one of its tools: creating it sends nothing. Point it elsewhere
with ``base_url`` or the ``HACKERNEWS_API_BASE_URL`` environment variable (a mirror, a proxy,
a local server in tests)::

    from pilothouse import Agent
    from pilothouse.tools.hackernews import HackerNewsTools

    agent = Agent(tools=[HackerNewsTools()])
    agent.print_response("Summarize the top 5 stories on Hacker News")

httpx is imported when a tool is first called, so importing this module costs nothing more
than the toolkit itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pilothouse.exceptions import PilothouseError
from pilothouse.tools.toolkit import Toolkit

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

__all__ = ["BASE_URL_ENV_VAR", "DEFAULT_BASE_URL", "HackerNewsError", "HackerNewsTools"]

logger = logging.getLogger("pilothouse")

DEFAULT_BASE_URL = "https://hacker-news.firebaseio.com/v0"
BASE_URL_ENV_VAR = "HACKERNEWS_API_BASE_URL"


class HackerNewsError(PilothouseError):
    """A Hacker News API call failed: unreachable, too slow, an error status, or no such item.

    ``status_code`` is the HTTP status when the API answered with an error (None otherwise).
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class HackerNewsTools(Toolkit):
    """Tools that read Hacker News: the top stories, one story's details, a user's profile.

    Args:
        get_top_stories: Offer the ``get_top_hackernews_stories`` tool.
        get_story_details: Offer the ``get_story_details`` tool.
        get_user_details: Offer the ``get_user_details`` tool.
        base_url: Root of the API. Default: the ``HACKERNEWS_API_BASE_URL`` environment
            variable when set and not empty, else ``https://hacker-news.firebaseio.com/v0``.
        timeout: Seconds to wait for each HTTP request (connecting, sending, reading).
        max_stories: The most stories ``get_top_hackernews_stories`` returns in one call;
            larger requests are reduced to this.

    Raises:
        ValueError: ``timeout`` is not positive, or ``max_stories`` is below 1.
    """

    def __init__(
        self,
        *,
        get_top_stories: bool = True,
        get_story_details: bool = True,
        get_user_details: bool = True,
        base_url: str | None = None,
        timeout: float = 10.0,
        max_stories: int = 30,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"HackerNewsTools: timeout must be positive, got {timeout!r}")
        if max_stories < 1:
            raise ValueError(f"HackerNewsTools: max_stories must be at least 1, got {max_stories}")
        if base_url is None:
            # Read once, here: a toolkit keeps the address it was made with for its lifetime.
            base_url = os.environ.get(BASE_URL_ENV_VAR) or DEFAULT_BASE_URL
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.max_stories = max_stories
        tools: list[Callable[..., Any]] = []
        if get_top_stories:
            tools.append(self.get_top_hackernews_stories)
        if get_story_details:
            tools.append(self.get_story_details)
        if get_user_details:
            tools.append(self.get_user_details)
        super().__init__(name="hackernews", tools=tools)

    async def get_top_hackernews_stories(self, num_stories: int = 10) -> str:
        """Get the current top stories on Hacker News.

        Returns a JSON list with, for each story: id, title, url (null for text posts such as
        "Ask HN"), score, by (the author's username), time (Unix seconds) and descendants
        (the number of comments).

        Args:
            num_stories: How many stories to return, from the top of the front page. Numbers
                above the toolkit's limit are reduced to it.
        """
        count = min(max(num_stories, 1), self.max_stories)
        # One client per call: tools may run on different event loops (sync and async runs),
        # and an httpx client must not be shared across loops.
        async with self._client() as client:
            listed = await self._get(client, "topstories.json")
            if not isinstance(listed, list):
                raise HackerNewsError(
                    f"Hacker News API returned {type(listed).__name__} instead of a list of ids "
                    f"for {self._url('topstories.json')}"
                )
            ids = [i for i in listed if isinstance(i, int)][:count]
            # return_exceptions: a failing item must not close the client under the others
            # still in flight; the first error is raised once all have finished.
            items = await asyncio.gather(
                *(self._get(client, f"item/{i}.json") for i in ids),
                return_exceptions=True,
            )
        stories: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, BaseException):
                raise item
            # An id on the list may be deleted before it is fetched: skip it, keep the rest.
            if not isinstance(item, dict) or item.get("deleted") or item.get("dead"):
                continue
            stories.append(
                {
                    "id": item.get("id"),
                    "title": item.get("title"),
                    "url": item.get("url"),
                    "score": item.get("score"),
                    "by": item.get("by"),
                    "time": item.get("time"),
                    "descendants": item.get("descendants"),
                }
            )
        logger.debug("hackernews: %d top stories from %s", len(stories), self.base_url)
        return json.dumps(stories, ensure_ascii=False)

    async def get_story_details(self, story_id: int) -> str:
        """Get the details of one Hacker News story (or any item, such as a comment) by its id.

        Returns a JSON object with id, type, title, url, text (the HTML body of text posts
        and comments), score, by (the author's username), time (Unix seconds), descendants
        (total comments) and kids_count (direct replies).

        Args:
            story_id: The item id, as in news.ycombinator.com/item?id=<story_id>.
        """
        async with self._client() as client:
            item = await self._get(client, f"item/{story_id}.json")
        if item is None:
            raise HackerNewsError(f"no Hacker News item with id {story_id}")
        if not isinstance(item, dict):
            raise HackerNewsError(
                f"Hacker News API returned {type(item).__name__} instead of an object for "
                f"item {story_id}"
            )
        details: dict[str, Any] = {
            "id": item.get("id"),
            "type": item.get("type"),
            "title": item.get("title"),
            "url": item.get("url"),
            "text": item.get("text"),
            "score": item.get("score"),
            "by": item.get("by"),
            "time": item.get("time"),
            "descendants": item.get("descendants"),
            "kids_count": len(item.get("kids") or ()),
        }
        # Only when true, so that the model is told why the other fields are empty.
        for flag in ("deleted", "dead"):
            if item.get(flag):
                details[flag] = True
        return json.dumps(details, ensure_ascii=False)

    async def get_user_details(self, username: str) -> str:
        """Get the public profile of a Hacker News user.

        Returns a JSON object with id (the username), karma, created (Unix seconds), about
        (HTML, may be null) and submitted_count (stories, comments and polls they posted).

        Args:
            username: The user's name, case-sensitive, e.g. "pg".
        """
        name = username.strip()
        if not name:
            raise HackerNewsError("a Hacker News username cannot be empty")
        # Quoted without safe characters so that a name cannot reach another API path.
        async with self._client() as client:
            user = await self._get(client, f"user/{quote(name, safe='')}.json")
        if user is None:
            raise HackerNewsError(f"no Hacker News user named {name!r}")
        if not isinstance(user, dict):
            raise HackerNewsError(
                f"Hacker News API returned {type(user).__name__} instead of an object for "
                f"user {name!r}"
            )
        return json.dumps(
            {
                "id": user.get("id"),
                "karma": user.get("karma"),
                "created": user.get("created"),
                "about": user.get("about"),
                "submitted_count": len(user.get("submitted") or ()),
            },
            ensure_ascii=False,
        )

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def _client(self) -> httpx.AsyncClient:
        import httpx  # imported on first call: a toolkit that is never used never loads it

        return httpx.AsyncClient(
            timeout=self.timeout,
            headers={"Accept": "application/json"},
            follow_redirects=True,
        )

    async def _get(self, client: httpx.AsyncClient, path: str) -> Any:
        """GET ``path`` and return the decoded JSON (None for the API's ``null``)."""
        import httpx

        url = self._url(path)
        logger.debug("hackernews: GET %s", url)
        try:
            response = await client.get(url)
        except httpx.TimeoutException as exc:
            raise HackerNewsError(
                f"Hacker News API at {url} did not answer within {self.timeout:g} seconds"
            ) from exc
        except httpx.TransportError as exc:
            raise HackerNewsError(
                f"Hacker News API unreachable at {url}: {str(exc) or type(exc).__name__}"
            ) from exc
        if response.is_error:
            raise HackerNewsError(
                f"Hacker News API returned HTTP {response.status_code} "
                f"{response.reason_phrase} for {url}",
                status_code=response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise HackerNewsError(f"Hacker News API returned invalid JSON for {url}") from exc
