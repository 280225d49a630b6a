"""predict.py --serve: the page answers in a real (headless) browser, and bad requests get a 4xx and a message."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

import heads
from browser import CHROMIUM, Browser
from predict_page import make_server

CONTEXT = ("The Eiffel Tower is a wrought-iron lattice tower in Paris. It was designed by the company of "
           "Gustave Eiffel and completed in 1889 for the World's Fair.")
QUESTION = "When was the tower completed?"


@pytest.fixture(scope="module")
def served(runs):
    """A page per head, each on a free port of 127.0.0.1, stopped when the module's tests end."""
    servers = {}
    for name in ("sst2", "squad_v1"):
        head = heads.load(runs[name])
        server = make_server(head, port=0, max_chars=2000)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[name] = (head, f"http://127.0.0.1:{server.server_address[1]}/", server)
    yield {name: (head, url) for name, (head, url, _) in servers.items()}
    for _, _, server in servers.values():
        server.shutdown()
        server.server_close()


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url + "api/predict", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_the_server_binds_to_localhost_by_default(served):
    assert all(url.startswith("http://127.0.0.1:") for _, url in served.values())


@pytest.mark.parametrize("body, status, message", [
    (b'{"text": "   "}', 400, "the text is empty"),
    (json.dumps({"text": "x" * 2001}).encode(), 413, "at most 2,000"),
    (b"x" * 20000, 413, "bytes; this page takes at most"),
    (b"{not json", 400, "not JSON"),
    (b"[1, 2]", 400, "not a JSON object"),
])
def test_a_bad_request_gets_a_4xx_and_a_message_and_the_server_keeps_serving(served, body, status, message):
    head, url = served["sst2"]
    code, reply = post(url, body)
    assert code == status and message in reply["error"] and "Traceback" not in reply["error"]
    code, reply = post(url, json.dumps({"text": "a fine film"}).encode())
    assert code == 200 and reply["label"] == head.classify(["a fine film"])[0]["label"]


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install -y chromium)")
def test_a_browser_submits_a_sentence_and_a_question_and_reads_the_answers_from_the_page(served):
    sentence = "a gorgeous , witty , seductive movie ."
    classifier, classify_url = served["sst2"]
    answerer, answer_url = served["squad_v1"]
    expected_label = classifier.classify([sentence])[0]["label"]
    expected = answerer.answer(question=QUESTION, context=CONTEXT)
    with Browser() as browser:
        browser.open(classify_url)
        assert "block 1 of 2" in browser.evaluate("document.getElementById('readout').textContent")
        browser.evaluate(f"document.getElementById('text').value = {json.dumps(sentence)}; "
                         "document.getElementById('submit').click()")
        browser.wait_for("document.body.dataset.state === 'answered'")
        assert browser.evaluate("document.getElementById('label').textContent") == expected_label
        assert browser.evaluate("document.getElementById('error').textContent") == ""

        browser.open(answer_url)
        browser.evaluate(f"document.getElementById('context').value = {json.dumps(CONTEXT)}; "
                         f"document.getElementById('question').value = {json.dumps(QUESTION)}; "
                         "document.getElementById('submit').click()")
        browser.wait_for("document.body.dataset.state === 'answered'")
        assert browser.evaluate("document.getElementById('highlight').textContent") == expected["answer"]
        heat = browser.evaluate("Array.from(document.querySelectorAll('#heat span')).map(s => s.title)")
        assert len(heat) == len(answerer.answer(question=QUESTION, context=CONTEXT, tokens=True)["tokens"])
        assert all(t.startswith("start ") and ", end " in t for t in heat)

        browser.evaluate("document.body.dataset.state = ''; document.getElementById('question').value = ''; "
                         "document.getElementById('submit').click()")
        browser.wait_for("document.body.dataset.state === 'answered'")
        assert "the question is empty" in browser.evaluate("document.getElementById('error').textContent")


def test_a_port_in_use_is_one_line(runs, served, capsys):
    import predict as predict_script

    port = served["sst2"][1].rsplit(":", 1)[1].rstrip("/")
    with pytest.raises(SystemExit) as exit_:
        predict_script.main(["--head", str(runs["sst2"]), "--serve", "--port", port])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: cannot serve on 127.0.0.1:") and err.count("\n") == 1
