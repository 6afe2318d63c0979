"""The HTML report renders in headless Chromium, and its tables sort on a header click."""

import re
import subprocess
from pathlib import Path

import pytest

from prunequant.report.html import SORT_JS, table_html
from prunequant.report.tables import Table

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120)


def test_the_report_renders_to_a_non_blank_screenshot(synthetic_report, tmp_path):
    from PIL import Image

    page = synthetic_report["html"]
    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    assert len(image.getcolors(maxcolors=1 << 20)) > 200  # text, tables and plots, not an empty page


def test_clicking_a_header_sorts_the_table_numerically(tmp_path):
    table = Table(
        "t",
        "T",
        ["name", "value"],
        [
            [("a", "a"), ("10", 10.0)],
            [("b", "b"), ("9", 9.0)],
            [("c", "c"), ("-", None)],
            [("d", "d"), ("100", 100.0)],
        ],
        {1},
    )
    click = 'document.querySelectorAll("th")[1].click();'
    page = tmp_path / "sort.html"
    page.write_text(
        f"<html><body>{table_html(table)}<script>{SORT_JS}</script><script>{click}</script></body></html>"
    )
    result = _chromium(tmp_path, "--dump-dom", page.as_uri())
    names = re.findall(r'<td class="" data-v="(\w)">', result.stdout)
    assert names == ["b", "a", "d", "c"], result.stderr[-2000:]  # 9 < 10 < 100, then the empty cell
