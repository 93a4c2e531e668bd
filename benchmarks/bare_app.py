"""A bare FastAPI endpoint returning a constant: the HTTP baseline."""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI()
PAGE = "<!doctype html><title>ok</title><p>ok</p>"


@app.get("/V/{token}", response_class=HTMLResponse)
def constant(token: str) -> str:
    return PAGE
