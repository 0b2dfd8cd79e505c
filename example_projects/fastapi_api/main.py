"""A to-do API with FastAPI: ``uvicorn main:app --lifespan on``.

- ``/``: a small HTML page that uses the API (an automatic page call per view), with
  analytics.js loaded by ``segment_snippet(request)`` when ``SEGMENT_BROWSER_WRITE_KEY``
  is set.
- ``/api/...``: JSON, no page calls; writes are tracked ("Todo Created", "Todo Completed").
- ``Authorization: Bearer <token>``: the user's id on every call (the ``user_id`` hook).
"""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

import segment_asgi
from segment_core.scope import Analytics
from segment_core.web import DEFAULT_EXCLUDE_PATHS

# The request's Analytics object (ids and request context filled in), for views.
AnalyticsDep = Annotated[Analytics, Depends(segment_asgi.analytics)]

# A stand-in for a real token store.
USERS_BY_TOKEN = {"ada-secret-token": "user-ada"}


def user_id_from_token(request: Request) -> str | None:
    """The user id behind the request's bearer token, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return USERS_BY_TOKEN.get(token) if scheme.lower() == "bearer" else None


app = FastAPI(title="Todos")
app.add_middleware(
    segment_asgi.SegmentMiddleware,
    # None falls back to the SEGMENT_WRITE_KEY / SEGMENT_HOST variables.
    write_key=os.environ.get("SEGMENT_WRITE_KEY"),
    host=os.environ.get("SEGMENT_HOST"),
    # API calls and the API's docs are not page views; the defaults (assets, health
    # checks) stay excluded.
    exclude_paths=[*DEFAULT_EXCLUDE_PATHS, r"^/api/", r"^/(docs|redoc|openapi\.json)"],
    user_id=user_id_from_token,
    # analytics.js in the page: the website source's own write key (None: no snippet),
    # where the library comes from (None: Segment's CDN), where it sends, and which
    # side sends page views (None: the server).
    browser_write_key=os.environ.get("SEGMENT_BROWSER_WRITE_KEY") or None,
    snippet_src=os.environ.get("SEGMENT_SNIPPET_SRC") or None,
    browser_cdn=os.environ.get("SEGMENT_BROWSER_CDN") or None,
    browser_api_host=os.environ.get("SEGMENT_BROWSER_API_HOST") or None,
    page_source=os.environ.get("SEGMENT_PAGE_SOURCE") or None,  # type: ignore[arg-type]
)

# Pages render with Jinja2; segment_snippet(request) is a global of every template.
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["segment_snippet"] = segment_asgi.segment_snippet


class TodoIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class Todo(BaseModel):
    id: int
    title: str
    done: bool = False


# In memory, for one process (uvicorn's default): a real app would use a database.
_todos: dict[int, Todo] = {}
_ids = itertools.count(1)
_lock = threading.Lock()


@app.get("/api/todos")
def list_todos() -> list[Todo]:
    return list(_todos.values())


@app.post("/api/todos", status_code=201)
def create_todo(todo_in: TodoIn, analytics: AnalyticsDep) -> Todo:
    with _lock:
        todo = Todo(id=next(_ids), title=todo_in.title)
        _todos[todo.id] = todo
    analytics.track("Todo Created", {"todo_id": todo.id, "title_length": len(todo.title)})
    return todo


@app.post("/api/todos/{todo_id}/complete")
def complete_todo(todo_id: int, analytics: AnalyticsDep) -> Todo:
    todo = _todos.get(todo_id)
    if todo is None:
        raise HTTPException(status_code=404, detail="no such todo")
    if not todo.done:
        todo.done = True
        analytics.track("Todo Completed", {"todo_id": todo.id})
    return todo


@app.get("/healthz", response_class=PlainTextResponse)
def healthz() -> str:
    return "ok"


@app.get("/", response_class=HTMLResponse, name="home")
def home(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "home.html")
