"""Advice in an error line names only options of the failing command (or the recipe field, for `run`)."""

from __future__ import annotations

from prunequant.cli.hints import fit_hints


def test_hints_name_only_the_command_s_options() -> None:
    line = "x.pt is a plain state_dict; pass model= (CLI: --model NAME) with its architecture"
    assert fit_hints(line, {"--model"}) == line
    assert fit_hints(line, {"--json"}) == "x.pt is a plain state_dict; pass model= with its architecture"
    run = fit_hints(line, {"--json"}, recipe=True)
    assert run == "x.pt is a plain state_dict; pass model= (recipe: [model] arch) with its architecture"
    assert fit_hints("pick the task (--task)", {"-o"}, recipe=True) == "pick the task ([task])"
    assert fit_hints("use --quiet", {"--quiet"}, recipe=True) == "use --quiet"
