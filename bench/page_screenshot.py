"""The README's picture of `predict.py --serve`: the page after a question, in headless Chromium.

    python bench/page_screenshot.py --head RUN [--out docs/page.png] [--question Q --context C]

Serves the head on a free port of 127.0.0.1, submits the question through the page (as
tests/test_page.py does), and saves a screenshot of what the page shows (palette PNG, to keep it small).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in "
           "France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway who, under "
           "their leader Rollo, agreed to swear fealty to King Charles III of West Francia.")
QUESTION = "In what country is Normandy located?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--head", required=True, help="a SQuAD run directory (or an SST-2 one, with --text)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "page.png")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--context", default=CONTEXT)
    parser.add_argument("--text", default="a gorgeous , witty , seductive movie .")
    args = parser.parse_args()

    import heads
    from browser import Browser
    from PIL import Image
    from predict_page import make_server

    head = heads.load(args.head)
    server = make_server(head, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fields = ({"text": args.text} if isinstance(head, heads.TrainedClassifier)
              else {"context": args.context, "question": args.question})
    try:
        with Browser() as browser:
            browser.command("Emulation.setDeviceMetricsOverride", width=900, height=900, deviceScaleFactor=1,
                            mobile=False)
            browser.open(f"http://127.0.0.1:{server.server_address[1]}/")
            fill = "; ".join(f"document.getElementById({json.dumps(k)}).value = {json.dumps(v)}" for k, v in fields.items())
            browser.evaluate(fill + "; document.getElementById('submit').click()")
            browser.wait_for("document.body.dataset.state === 'answered'", timeout=120)
            png = browser.screenshot()
    finally:
        server.shutdown()
        server.server_close()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
