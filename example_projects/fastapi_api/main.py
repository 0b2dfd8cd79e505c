"""A to-do API with FastAPI: ``uvicorn main:app``.

- ``/``: a small HTML page that uses the API (an automatic page call per view).
- ``/api/...``: JSON, no page calls; writes are tracked ("Todo Created", "Todo Completed").
- ``Authorization: Bearer <token>``: the user's id on every call (the ``user_id`` hook).
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
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
)


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
def home() -> str:
    return PAGE


PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Todos</title>
<style>body { font: 16px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; }</style>
</head>
<body>
<h1>Todos</h1>
<form id="new"><input name="title" required placeholder="What next?"> <button>Add</button></form>
<ul id="todos"></ul>
<script>
  // Same-origin fetches send the ajs_anonymous_id cookie this page set: the API's
  // "Todo Created" joins this page view's visitor.
  const list = document.getElementById("todos");
  async function refresh() {
    const todos = await (await fetch("/api/todos")).json();
    list.replaceChildren(...todos.map((todo) => {
      const item = document.createElement("li");
      item.textContent = (todo.done ? "✓ " : "") + todo.title;
      if (!todo.done) item.onclick = () =>
        fetch(`/api/todos/${todo.id}/complete`, { method: "POST" }).then(refresh);
      return item;
    }));
  }
  document.getElementById("new").onsubmit = async (event) => {
    event.preventDefault();
    const title = event.target.title.value;
    await fetch("/api/todos", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ title }),
    });
    event.target.reset();
    refresh();
  };
  refresh();
</script>
</body>
</html>
"""
