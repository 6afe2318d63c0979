"""The [finetune], [joint] and [iterative] recipe tables: defaults, one-line errors, trial plans."""

import pytest

from prunequant.errors import ConfigError
from prunequant.lab import parse_recipe
from prunequant.lab.plans import finetune_plan
from prunequant.lab.recovery import recovery_options, without_early_stop


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_recipe(text, name="r.toml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_without_finetune_the_plans_and_trial_ids_stay_as_before(tiny_base):
    recipe = parse_recipe(tiny_base + "\n[aware_prune]\namounts = [0.5]\n")
    assert finetune_plan(recipe, recipe.aware_prune) == {"epochs": 3, "lr": 0.1, "refine_epochs": 3}
    assert recovery_options(finetune_plan(recipe, recipe.aware_prune), None).distill is None


def test_finetune_options_go_into_every_plan(tiny_base, tiny_model):
    text = (
        "\n[finetune]\ndistill = true\ndistill_kind = 'mse'\nearly_stop_patience = 2\nbn_recalibrate = true\n"
    )
    recipe = parse_recipe(tiny_base + text + "\n[joint]\namounts = [0.5]\n")
    plan = finetune_plan(recipe, recipe.joint)
    assert plan["recovery"]["distill_kind"] == "mse" and plan["recovery"]["bn_batches"] == 20
    options = recovery_options(plan, tiny_model)
    assert (options.distill.kind, options.distill.weight, options.distill.temperature) == ("mse", 0.5, 4.0)
    assert (options.bn_recalibrate, options.early_stop_patience) == (20, 2)
    assert recovery_options(without_early_stop(plan), tiny_model).early_stop_patience == 0
    with pytest.raises(ConfigError, match="teacher"):
        recovery_options(plan, None)
    assert recipe.joint.formats == ("w8a8",) and recipe.joint.importance == "activation_l1"
    assert recipe.stages() == ["profile", "joint"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[finetune]\ndistill_weight = 1.5\n", "[finetune] distill_weight must be in [0, 1], got 1.5"),
        ("[finetune]\ndistill_temperature = 0\n", "[finetune] distill_temperature must be a positive number"),
        ("[finetune]\ndistill_kind = 'cos'\n", "[finetune] distill_kind must be one of auto, kl, mse, l1"),
        ("[finetune]\ndistill_features = ['conv1']\n", "[finetune] distill_features needs distill = true"),
        ("[finetune]\nearly_stop_patience = -1\n", "[finetune] early_stop_patience must be an integer"),
        ("[finetune]\nbn_recalibrate = 1\n", "[finetune] bn_recalibrate must be true or false, got 1"),
        ("[finetune]\ndistil = true\n", "unknown key 'distil'; did you mean 'distill'?"),
        ("[joint]\namounts = [0.5]\nformats = ['fp32']\n", "[joint] formats[0] must quantize"),
        ("[joint]\namounts = [0.5]\nimportance = 'magic'\n", "[joint] importance must be one of"),
        ("[joint]\namounts = [0.5]\nepochs = 0\n", "[joint] epochs must be at least 1"),
        ("[iterative]\nstep = 0.1\n", "[iterative] target_macs_reduction or target_speedup is required"),
        ("[iterative]\nstep = 0\ntarget_speedup = 2.0\n", "[iterative] step must be in (0, 1)"),
        ("[iterative]\ntarget_speedup = 0.5\n", "[iterative] target_speedup must be above 1"),
        ("[iterative]\ntarget_macs_reduction = 1.0\n", "[iterative] target_macs_reduction must be in [0, 1)"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(tiny_base, table, message):
    found = _error(tiny_base + "\n" + table)
    assert message in found and found.startswith("r.toml:")
