"""The README's Task section stays true: its code is the shipped example, which runs, and whose recipe
validates."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_the_readme_task_code_is_the_example_file_verbatim():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Any CNN, any task") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    source = (EXAMPLES / "depth_task.py").read_text()
    blocks = [block.strip() for block in code.split("\n\n\n") if block.strip()]
    assert len(blocks) >= 3 and all(block in source for block in blocks)


def test_the_example_recipe_validates(monkeypatch):
    from prunequant.lab import load_recipe

    monkeypatch.syspath_prepend(str(EXAMPLES))
    recipe = load_recipe(EXAMPLES / "depth.toml")
    assert recipe.task.name == "depth_task:DepthTask" and recipe.task.max_drop == "5%"


@pytest.mark.slow
def test_the_example_script_runs_end_to_end(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(ROOT / "src")])}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "depth_task.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = {line.split(":")[0]: line for line in done.stdout.splitlines()}
    assert {"trained", "half the channels", "int8 on onnxruntime"} <= set(lines)
    assert (tmp_path / "depth_int8.onnx").stat().st_size > 0
