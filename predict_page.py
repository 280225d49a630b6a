"""`predict.py --serve`: one page to try a trained head, from the standard library's HTTP server.

    GET  /             the page: a text box (classifier) or a passage and a question (QA), and the readout
    POST /api/predict  {"text"} or {"question", "context"} -> the head's answer as JSON (heads.load's keys;
                       QA adds each context token's start / end probability for the heat map)

A bad request (empty, oversized, not JSON) gets a 4xx with {"error": one line}, which the page
shows; the server logs one line and keeps serving. One request runs the model at a time.
"""

from __future__ import annotations

import html
import json
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import heads
from errors import UserError


class BadRequest(Exception):
    """A request the page can explain: (status, message)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def describe(head) -> str:
    """The readout in words: what the head reads, and (QA) when it abstains."""
    r = head.readout
    depth = head.head.config.num_hidden_layers
    words = [f"block {r.block} of {depth}", "echo (read on a second copy)" if r.echo else "no echo"]
    if isinstance(head, heads.TrainedClassifier):
        words.append({"last": "last-token pooling", "mean": "mean pooling"}[r.pool])
    else:
        threshold = head.no_answer_threshold
        words.append("always answers" if threshold is None else f"no answer above P(no answer) {threshold:.3g}")
    return ", ".join(words)


def answer_request(head, body: dict, max_chars: int) -> dict:
    """The head's answer to one request body, or BadRequest."""
    keys = ("text",) if isinstance(head, heads.TrainedClassifier) else ("question", "context")
    for key in keys:
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"the {key} is empty: type something first")
        if len(value) > max_chars:
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                             f"the {key} has {len(value):,} characters; this page takes at most {max_chars:,}")
    if isinstance(head, heads.TrainedClassifier):
        (result,) = head.classify([body["text"]])
        probs = head.probabilities([body["text"]])[0].tolist()
        return {**result, "probabilities": dict(zip(head.label_names, probs))}
    return head.answer(question=body["question"], context=body["context"], tokens=True)


def make_server(head, host: str = "127.0.0.1", port: int = 8000, max_chars: int = 100_000) -> ThreadingHTTPServer:
    """A server for `head` (port 0: any free port; see `.server_address`); call serve_forever to run it."""
    lock = threading.Lock()
    page = PAGE.replace("{{kind}}", "classify" if isinstance(head, heads.TrainedClassifier) else "answer")
    page = page.replace("{{title}}", html.escape(f"{head.info.task} head: {head.info.path.parent.name}"))
    page = page.replace("{{readout}}", html.escape(describe(head)))
    page = page.replace("{{base}}", html.escape(head.info.base_model))
    page = page.replace("{{labels}}", html.escape(", ".join(head.info.label_names)))
    max_body = 4 * max_chars + 4096  # UTF-8 bytes of the longest texts, JSON quoting included

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/":
                return self.reply(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path}: open /"})
            self.send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")

        def do_POST(self) -> None:
            try:
                if self.path != "/api/predict":
                    raise BadRequest(HTTPStatus.NOT_FOUND, f"no endpoint {self.path}: POST /api/predict")
                length = int(self.headers.get("Content-Length") or 0)
                if length > max_body:
                    raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                     f"the request has {length:,} bytes; this page takes at most {max_body:,}")
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise BadRequest(HTTPStatus.BAD_REQUEST, "the request is not JSON") from None
                if not isinstance(body, dict):
                    raise BadRequest(HTTPStatus.BAD_REQUEST, "the request is not a JSON object")
                with lock:
                    result = answer_request(head, body, max_chars)
                self.reply(HTTPStatus.OK, result)
            except BadRequest as err:
                self.reply(err.status, {"error": str(err)})
            except UserError as err:
                self.reply(HTTPStatus.BAD_REQUEST, {"error": str(err)})
            except Exception as err:  # never a traceback to the user; the server keeps serving
                print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
                self.reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"the head failed ({type(err).__name__})"})

        def reply(self, status: HTTPStatus, obj: dict) -> None:
            self.send(status, json.dumps(obj).encode(), "application/json")

        def send(self, status: HTTPStatus, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:
            print(f"{self.address_string()} {format % args}", file=sys.stderr)

    return ThreadingHTTPServer((host, port), Handler)


def serve(head, host: str = "127.0.0.1", port: int = 8000, max_chars: int = 100_000) -> None:
    """Serve the page until Ctrl-C."""
    try:
        server = make_server(head, host, port, max_chars)
    except OSError as err:
        raise UserError(f"cannot serve on {host}:{port} ({err.strerror}): pass another --port or --host") from None
    print(f"serving the {head.info.task} head at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)",
          file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>
<style>
 body { font: 15px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
 textarea, input { width: 100%; box-sizing: border-box; font: inherit; padding: .4rem; }
 button { font: inherit; padding: .3rem 1.2rem; margin-top: .5rem; }
 .meta { color: #555; font-size: 13px; } .error { color: #b00020; } .hidden { display: none; }
 #label { font-size: 1.4rem; font-weight: 600; } mark { background: #ffe066; padding: 0 .1rem; }
 .bar { height: .6rem; background: #4c8bf5; border-radius: .3rem; }
 #heat span { border-bottom: .25rem solid transparent; }
 .key { display: inline-block; width: 1rem; height: .8rem; vertical-align: middle; }
</style></head>
<body data-kind="{{kind}}">
<h1>{{title}}</h1>
<p class="meta">Base: <code>{{base}}</code>. Readout: <span id="readout">{{readout}}</span>. Outputs: {{labels}}.</p>
<form id="form">
 <div id="classify-inputs"><label>Text<textarea id="text" rows="4" placeholder="A sentence to classify"></textarea></label></div>
 <div id="answer-inputs"><label>Passage<textarea id="context" rows="8" placeholder="A passage"></textarea></label>
  <label>Question<input id="question" placeholder="A question about the passage"></label></div>
 <button id="submit" type="submit">Predict</button>
</form>
<p id="error" class="error" role="alert"></p>
<div id="result" class="hidden">
 <div id="classify-result"><p><span id="label"></span> <span id="score"></span></p><div id="bars"></div></div>
 <div id="answer-result"><p>Answer: <b id="answer"></b> <span id="answer-score"></span></p>
  <h3>The answer in the passage</h3><p id="passage"></p>
  <h3>Start and end probability of each token</h3>
  <p class="meta"><span class="key" style="background:rgba(255,120,0,.8)"></span> start (background)
   <span class="key" style="background:rgba(30,90,255,.8)"></span> end (underline)</p><p id="heat"></p></div>
</div>
<script>
const kind = document.body.dataset.kind;
document.getElementById(kind === "classify" ? "answer-inputs" : "classify-inputs").remove();
document.getElementById(kind === "classify" ? "answer-result" : "classify-result").remove();
const $ = (id) => document.getElementById(id);
function el(tag, text, attrs) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text;
  Object.assign(e, attrs || {}); return e; }
function showClassify(r) {
  $("label").textContent = r.label; $("score").textContent = "p = " + r.score.toFixed(3);
  $("bars").replaceChildren(...Object.entries(r.probabilities).map(([name, p]) => {
    const row = el("div", name + " " + p.toFixed(3)); const bar = el("div", undefined, {className: "bar"});
    bar.style.width = (100 * p).toFixed(1) + "%"; row.append(bar); return row; }));
}
function showAnswer(r, text) {
  const chars = Array.from(text);  // offsets count code points, as Python's do
  const slice = (a, b) => chars.slice(a, b).join("");
  $("answer").textContent = r.answer || "(no answer)";
  $("answer-score").textContent = "p = " + r.score.toFixed(3);
  const passage = [slice(0, r.start)];
  if (r.answer) passage.push(el("mark", slice(r.start, r.end), {id: "highlight"}));
  passage.push(slice(r.end || r.start));
  $("passage").replaceChildren(...passage);
  const heat = []; let at = 0;
  for (const t of r.tokens) {
    if (t.start > at) heat.push(slice(at, t.start));
    const s = el("span", slice(t.start, t.end), {title: "start " + t.p_start.toFixed(3) + ", end " + t.p_end.toFixed(3)});
    s.style.background = "rgba(255,120,0," + t.p_start.toFixed(3) + ")";
    s.style.borderBottomColor = "rgba(30,90,255," + t.p_end.toFixed(3) + ")";
    heat.push(s); at = t.end;
  }
  heat.push(slice(at)); $("heat").replaceChildren(...heat);
}
$("form").addEventListener("submit", async (event) => {
  event.preventDefault(); $("error").textContent = ""; $("submit").disabled = true;
  const body = kind === "classify" ? {text: $("text").value} : {question: $("question").value, context: $("context").value};
  try {
    const response = await fetch("/api/predict", {method: "POST", headers: {"Content-Type": "application/json"},
                                                  body: JSON.stringify(body)});
    const r = await response.json();
    if (!response.ok) { $("result").classList.add("hidden"); $("error").textContent = r.error; }
    else { if (kind === "classify") showClassify(r); else showAnswer(r, body.context);
           $("result").classList.remove("hidden"); }
  } catch (err) { $("error").textContent = "the server did not answer: " + err; }
  finally { $("submit").disabled = false; document.body.dataset.state = "answered"; }
});
</script></body></html>
"""
