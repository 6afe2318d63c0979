"""The README walk: every command of its CLI quick start runs verbatim, in order, from a fresh folder.

The commands run at smoke scale ($PRUNEQUANT_LIMIT caps every dataset), so the walk checks that each one
works and hands the next what it needs, not the figures.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE_LIMIT = "160"


def readme_commands(readme: str) -> list[str]:
    """The commands of the README's "Quick start: CLI" bash block: continuations joined, comments cut."""
    section = readme[readme.index("## Quick start: CLI") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        code = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if code:
            commands.append(" ".join(code.split()))
    return commands


def test_the_walk_reads_every_command_of_the_block():
    commands = readme_commands((ROOT / "README.md").read_text())
    assert commands, "the README has no CLI quick start commands"
    assert all(shlex.split(command)[0] == "prunequant" for command in commands), commands
    assert not any("\\" in command or "#" in command for command in commands)


@pytest.mark.slow
def test_every_readme_command_runs_verbatim_in_order(tmp_path):
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "prunequant").exists():
        pytest.skip("the prunequant console script is not installed in this environment")
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
        "PRUNEQUANT_LIMIT": SMOKE_LIMIT,
    }
    for command in readme_commands((ROOT / "README.md").read_text()):
        done = subprocess.run(
            command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"README command failed: {command}\n{done.stderr[-3000:]}"
