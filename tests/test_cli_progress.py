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
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, shown
    assert "generate: 100%" in shown and "20/20" in shown and "wrote" in shown
