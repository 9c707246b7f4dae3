"""Long commands show the library's Progress events as tqdm bars on a terminal, and stay plain in logs."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios

from ocrtrain.cli._progress import EventBars
from ocrtrain.events import Message, Progress
from ocrtrain.synth import SynthConfig, generate_dataset


def test_bars_follow_real_generation_events(tmp_path):
    out = io.StringIO()
    with EventBars(file=out, disable=False) as bars:
        generate_dataset(SynthConfig(count=30, seed=3, workers=1), tmp_path / "ds", callback=bars)
        bars(Message("fonts skipped for 2 labels", level="warning"))
        bars(Message("a note"))  # info is the command's own output's business
    text = out.getvalue()
    assert "generate: 100%" in text and "30/30" in text
    assert "warning: fonts skipped for 2 labels" in text and "a note" not in text


def test_bar_total_and_postfix_from_events():
    out = io.StringIO()
    with EventBars(file=out, disable=False) as bars:
        for done in range(0, 11):
            bars(Progress("evaluate", done, 10, {"source": "english_g2"}))
        bars(Progress("stream", 5))  # unknown total: a counter, closed by close()
    text = out.getvalue()
    assert "evaluate: 100%" in text and "10/10" in text and "source=english_g2" in text
    assert "stream: 5" in text
    assert not bars._bars


def test_synth_command_draws_a_bar_on_a_terminal_and_none_in_a_log(tmp_path):
    cmd = [sys.executable, "-m", "ocrtrain", "synth", "--out", str(tmp_path / "a"), "--count", "20", "--workers", "1"]
    piped = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0 and "%|" not in piped.stderr and "wrote" in piped.stdout
    cmd[5] = str(tmp_path / "b")
    code, shown = _on_a_terminal(cmd)
    assert code == 0, shown
    assert "generate: 100%" in shown and "20/20" in shown and "wrote" in shown


def _on_a_terminal(cmd: list) -> tuple[int, str]:
    """(exit code, everything shown) of `cmd` run with stdout and stderr on a pseudo-terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout and stderr are the terminal, 100 columns wide
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        os.execv(sys.executable, cmd)
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")


def test_predictor_reports_each_batch_and_reads_the_same(tmp_path):
    from conftest import draw_line
    from ocrtrain.inference import Predictor

    lines = ["Melk 42,90", "TOTAL 1234,56", "Kaffe 59,90", "Brod 3", "Ost 129,00"]
    images = [draw_line(t) for t in lines]
    predictor = Predictor.from_origin("english_g2", batch_size=2, reader_compatible=True, contrast_ths=1.01)
    events = []
    with_events = predictor.predict(images, callback=events.append)
    assert [r.text for r in with_events] == [r.text for r in predictor.predict(images)]
    first = [(e.done, e.total) for e in events if e.stage == "predict"]
    # width buckets, at most 2 lines a batch: the count climbs to 5 in steps of 1 or 2
    assert first[-1] == (5, 5) and all(0 < b - a <= 2 for (a, _), (b, _) in zip([(0, 5)] + first, first))
    # contrast_ths above 1: every line is read again with more contrast, reported as its own stage
    assert [(e.done, e.total) for e in events if e.stage == "retry low contrast"][-1] == (5, 5)


def test_predict_command_draws_bars_on_stderr_and_keeps_stdout_to_readings(tmp_path):
    from conftest import draw_line

    for i, text in enumerate(["Melk 42,90", "TOTAL 1234,56", "Kaffe 59,90"]):
        draw_line(text).save(tmp_path / f"{i}.png")
    cmd = [sys.executable, "-m", "ocrtrain", "predict", str(tmp_path), "--batch-size", "2"]
    piped = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "%|" not in piped.stderr and "predict" not in piped.stderr
    assert [line.split("\t")[1] for line in piped.stdout.splitlines()] == ["Melk 42,90", "TOTAL 1234,56", "Kaffe 59,90"]
    code, shown = _on_a_terminal(cmd)
    assert code == 0, shown
    assert "load: 100%" in shown and "predict: 100%" in shown and "3/3" in shown and "TOTAL 1234,56" in shown
