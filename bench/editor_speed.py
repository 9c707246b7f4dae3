"""How many pre-read lines a minute the Transcribe tab lets you verify: the tool's own latency.

A scripted user drives the dashboard in a real browser (Voila + headless Debian chromium through
Playwright) over `--lines` pre-read lines of a document set: where the model's reading already
matches the ground truth (ignoring case and spaces, the sroie-dev convention) it presses Enter;
otherwise it selects the field, types the ground truth key by key (each key is saved as typed)
and presses Enter. After each Enter it waits until the editor has saved and moved the focus to
the next line (the next page's first line after a page's last), so the time measured is the
tool's round trip (browser -> kernel -> disk -> browser) plus keystrokes, with no time to read
or think: **an upper bound for a person**, who reads each crop before deciding.

Data: by default the first receipts of ../shared/realdata/sroie-dev (real scans, ICDAR box
files) imported through the engine, their box texts kept aside as the ground truth, every line
pre-read by english_g2 (``preread_pages``) and set back to unreviewed with the reading in its
field. `--docset DIR` uses a document set of your own instead (copied first: yours is never
changed); its verified lines' texts are the ground truth, other lines are accepted as read.

    python -m bench.editor_speed [--data ../shared/realdata/sroie-dev | --docset DIR] [--lines 50]
                                 [--model english_g2] [--type-delay-ms 0] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "realdata" / "sroie-dev"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
_ACTIVE_ROW = """() => [...document.querySelectorAll('.ocrtrain-line-row')]
    .findIndex(r => r.contains(document.activeElement))"""
_PAGE_LABEL = """() => { const s = document.querySelector('.ocrtrain-docset-page select');
    return s && s.selectedIndex >= 0 ? s.options[s.selectedIndex].text : ''; }"""


def _loose(text: str) -> str:
    return re.sub(r"\s+", "", text or "").casefold()


def sroie_docset(data: Path, out: Path, lines: int) -> Path:
    """Import the first receipts of `data` (ICDAR boxes) until they hold `lines` text lines."""
    from ocrtrain.documents import PageImportConfig, import_pages

    src = out.parent / "sroie-src"
    (src / "img").mkdir(parents=True)
    (src / "box").mkdir()
    total = 0
    for box in sorted((data / "box").glob("*.csv")):
        image = data / "img" / f"{box.stem}.jpg"
        if not image.is_file():
            continue
        shutil.copy(image, src / "img" / image.name)
        shutil.copy(box, src / "box" / box.name)
        total += sum(1 for row in box.read_text(encoding="utf-8", errors="replace").splitlines() if row.strip())
        if total >= lines:
            break
    if total < lines:
        raise SystemExit(f"{data} holds only {total} box lines, fewer than --lines {lines}: lower --lines")
    return import_pages(src, out, PageImportConfig(format="icdar"))


def prepare(docs, model: str, preread: bool) -> dict:
    """Ground truth aside; every usable line pre-read and set back to unreviewed with its reading.

    Returns {line id: the text the scripted user must leave in the field}."""
    from ocrtrain.documents import PrereadConfig, preread_pages

    truth = {}
    for page in docs.pages:
        for line in docs.lines(page.id):
            if line.status in ("verified", "unreviewed"):
                truth[line.id] = line.text if line.status == "verified" else None
    if preread:
        preread_pages(docs, PrereadConfig(model=model, all_lines=True))
    for page in docs.pages:
        lines = docs.lines(page.id)
        for i, line in enumerate(lines):
            if line.id in truth:
                shown = line.reading if line.reading is not None else line.text
                if truth[line.id] is None:
                    truth[line.id] = shown  # not verified: the scripted user accepts what is read
                lines[i] = line.replace(text=shown, status="unreviewed")
        docs.save_lines(page.id, lines)
    return truth


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_voila(home: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    voila = Path(sys.executable).with_name("voila")
    log = open(home / "voila.log", "wb")
    proc = subprocess.Popen(
        [str(voila), "notebooks/dashboard.ipynb", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         "--MappingKernelManager.cull_idle_timeout=300", "--MappingKernelManager.cull_interval=60"],
        cwd=ROOT, env={**os.environ, "OCRTRAIN_HOME": str(home)}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # the TCP port, not a GET (a GET starts a kernel)
        if proc.poll() is not None:
            raise SystemExit(f"voila exited with {proc.returncode}: see {home / 'voila.log'}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}/"
        time.sleep(0.2)
    raise SystemExit("voila did not open its port in 90 s")


def stop_voila(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def plan(docs, truth: dict, n: int) -> list[dict]:
    """The lines in the order the editor shows them (filter: unreviewed, reading order)."""
    from ocrtrain.documents.review import select_lines

    steps = []
    for page in docs.pages:
        shown = [l for l in select_lines(docs.lines(page.id), "unreviewed") if l.id in truth]
        for k, line in enumerate(shown):
            steps.append({"id": line.id, "page": page.id, "row": k, "rows": len(shown), "shown": line.text,
                          "truth": truth[line.id], "accept": _loose(line.text) == _loose(truth[line.id])})
    return steps[:n]


def _wait_moved(page, step: dict, last: bool, timeout_ms: int) -> bool:
    """Wait until the editor moved on after `step`'s Enter; False if the focus never arrived."""
    try:
        if last:
            row = page.locator(".ocrtrain-line-row").nth(step["row"])
            page.wait_for_function("e => e.classList.contains('ocrtrain-line-verified')",
                                   arg=row.element_handle(), timeout=timeout_ms, polling="raf")
        elif step["row"] + 1 < step["rows"]:
            page.wait_for_function(f"() => ({_ACTIVE_ROW})() === {step['row'] + 1}", timeout=timeout_ms,
                                   polling="raf")
        else:  # the page's last line: the next page, its first line focused
            page.wait_for_function(f"() => !({_PAGE_LABEL})().startsWith({json.dumps(step['page'] + ' (')})"
                                   f" && ({_ACTIVE_ROW})() === 0", timeout=timeout_ms, polling="raf")
        return True
    except Exception as exc:  # playwright's TimeoutError
        if "Timeout" not in type(exc).__name__:
            raise
        return False


def open_editor(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".ocrtrain-workbench .ocrtrain-tabs")
    page.locator(".lm-TabBar-tab", has_text="6 · Transcribe").click()
    page.wait_for_selector(".ocrtrain-transcribe .ocrtrain-line-row")
    before = page.locator(".ocrtrain-line-row").first.element_handle()
    page.locator(".ocrtrain-line-filter select").select_option(label="unreviewed")
    page.wait_for_function("e => !e.isConnected", arg=before)  # the rows are rebuilt for the filter
    page.wait_for_selector(".ocrtrain-transcribe .ocrtrain-line-row")
    page.locator(".ocrtrain-line-row .ocrtrain-line-text input").first.click()


def drive(url: str, steps: list[dict], type_delay_ms: float, timeout_ms: int = 20_000) -> list[dict]:
    """The scripted user: Enter or retype + Enter on every step; times each until the editor moved on."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(90_000)
            open_editor(page, url)
            for i, step in enumerate(steps):
                field = page.locator(".ocrtrain-line-row").nth(step["row"]).locator("input")
                if field.input_value() != step["shown"]:
                    raise SystemExit(f"line {step['id']}: the editor shows {field.input_value()!r}, "
                                     f"expected {step['shown']!r}: the plan and the editor disagree")
                t0 = time.perf_counter()
                if not step["accept"]:
                    page.keyboard.press("Control+A")
                    page.keyboard.type(step["truth"], delay=type_delay_ms)
                page.keyboard.press("Enter")
                step["moved"] = _wait_moved(page, step, i == len(steps) - 1, timeout_ms)
                step["seconds"] = time.perf_counter() - t0
                if not step["moved"]:  # focus lost: click the next line, as a person would
                    nxt = steps[i + 1] if i + 1 < len(steps) else None
                    if nxt:
                        page.locator(".ocrtrain-line-row").nth(nxt["row"]).locator("input").click()
        finally:
            browser.close()
    return steps


def check_saved(docset: Path, steps: list[dict], timeout: float = 30) -> int:
    """Lines saved verified with the text the scripted user left (waits for the last saves)."""
    from ocrtrain.documents import DocumentSet

    want = {s["id"]: s["truth"] if not s["accept"] else s["shown"] for s in steps}
    deadline = time.monotonic() + timeout
    while True:
        docs = DocumentSet(docset)
        got = {l.id: l for l in docs.iter_lines() if l.id in want}
        right = sum(1 for i, t in want.items() if got[i].status == "verified" and got[i].text == t)
        if right == len(want) or time.monotonic() > deadline:
            return right
        time.sleep(0.5)


def summary(steps: list[dict], right: int) -> dict:
    accepts = [s["seconds"] for s in steps if s["accept"]]
    fixes = [s["seconds"] for s in steps if not s["accept"]]
    total = sum(s["seconds"] for s in steps)
    return {"lines": len(steps), "accepted_as_read": len(accepts), "corrected": len(fixes),
            "typed_chars": sum(len(s["truth"]) for s in steps if not s["accept"]),
            "seconds": round(total, 2), "lines_per_minute": round(60 * len(steps) / total, 1),
            "accept_median_s": round(statistics.median(accepts), 3) if accepts else None,
            "correct_median_s": round(statistics.median(fixes), 3) if fixes else None,
            "focus_lost": sum(1 for s in steps if not s["moved"]), "saved_right": right}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="sroie-dev folder (img/, box/)")
    parser.add_argument("--docset", type=Path, help="a document set of your own (copied, never changed)")
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--model", default="english_g2", help="origin spec that pre-reads the lines")
    parser.add_argument("--no-preread", action="store_true", help="--docset only: keep its readings")
    parser.add_argument("--type-delay-ms", type=float, default=0.0, help="pause between typed keys")
    parser.add_argument("--json", type=Path, help="write the summary and every line's timing here")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from ocrtrain.documents import DocumentSet

    with tempfile.TemporaryDirectory(prefix="editor-speed-") as tmp:
        home = Path(tmp)
        target = home / "docsets" / "bench"
        if args.docset:
            shutil.copytree(args.docset, target)
        else:
            sroie_docset(args.data, target, args.lines)
        docs = DocumentSet(target)
        truth = prepare(docs, args.model, preread=not (args.docset and args.no_preread))
        steps = plan(docs, truth, args.lines)
        if len(steps) < args.lines:
            raise SystemExit(f"only {len(steps)} usable lines in {target}, fewer than --lines {args.lines}")
        proc, url = start_voila(home)
        try:
            drive(url, steps, args.type_delay_ms)
        finally:
            stop_voila(proc)
        result = summary(steps, check_saved(target, steps))
    result.update(source=str(args.docset or args.data), model=args.model, load=os.getloadavg()[0])
    print(f"{result['lines']} lines in {result['seconds']} s: {result['lines_per_minute']} lines/minute "
          f"({result['accepted_as_read']} accepted as read, median {result['accept_median_s']} s; "
          f"{result['corrected']} retyped ({result['typed_chars']} keys), median {result['correct_median_s']} s); "
          f"saved right {result['saved_right']}/{result['lines']}, focus lost {result['focus_lost']}; "
          f"load {result['load']:.1f}. Scripted user, no reading time: an upper bound for a person.")
    if args.json:
        args.json.write_text(json.dumps({"summary": result, "lines": steps}, indent=2, ensure_ascii=False))
    return 0 if result["saved_right"] == result["lines"] else 1


if __name__ == "__main__":
    sys.exit(main())
