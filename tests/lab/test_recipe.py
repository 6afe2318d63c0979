import sys
from dataclasses import replace
from pathlib import Path

import pytest

from prunequant.builtin import ASSETS, BUILTIN_CHECKPOINTS
from prunequant.cli.main import main
from prunequant.errors import ConfigError
from prunequant.lab import load_recipe, parse_recipe
from prunequant.models import build, save_checkpoint


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_recipe(text, name="r.toml")
    return str(info.value)


def test_a_full_recipe_parses_with_defaults_from_the_baseline(tiny_base, tiny_sweeps):
    recipe = parse_recipe(tiny_base + tiny_sweeps, name="r.toml")
    assert recipe.stages() == ["profile", "post_prune", "aware_prune", "post_quant", "aware_quant", "combine"]
    assert recipe.post_prune.amounts == (0.25, 0.5)
    assert recipe.post_prune.scope == "global" and recipe.post_prune.include_bias is False
    assert recipe.aware_quant.bits == (4,) and recipe.aware_quant.refine_epochs == 0
    assert recipe.aware_prune.lrs == () and recipe.combine.source == "aware"
    assert recipe.model.kwargs == {"width": 4}
    assert recipe.data.options["input_shape"] == [1, 8, 8]
    config = recipe.baseline.train_config()
    assert (config.lr, config.epochs, config.batch_size, config.lr_schedule) == (0.1, 3, 32, "constant")
    assert recipe.name == "r" and recipe.checkpoint_path == ""


def test_a_typo_names_the_key_the_line_and_the_fix(tiny_base):
    message = _error(tiny_base + "\n[post_prune]\namonts = [0.1]\n")
    line = (tiny_base + "\n[post_prune]\n").count("\n") + 1
    assert message.startswith(f"r.toml:{line}: [post_prune] unknown key 'amonts'; did you mean 'amounts'?")


def test_a_wrong_type_names_the_key(tiny_base):
    message = _error(tiny_base + '\n[post_prune]\namounts = "0.1"\n')
    assert "[post_prune] amounts must be a list of numbers, got '0.1'" in message
    assert message.startswith(f"r.toml:{tiny_base.count(chr(10)) + 3}:")


def test_an_amount_of_1_5_is_refused_with_its_index(tiny_base):
    message = _error(tiny_base + "\n[aware_prune]\namounts = [0.1, 1.5]\n")
    assert "[aware_prune] amounts[1] must be in [0, 1), got 1.5" in message


def test_33_bits_is_refused(tiny_base):
    message = _error(tiny_base + "\n[post_quant]\nbits = [8, 33]\n")
    assert "[post_quant] bits[1] must be an integer in 2..16, got 33" in message


def test_search_bits_accept_32_as_float_only(tiny_base):
    recipe = parse_recipe(tiny_base + "\n[search]\nbits = [32, 8]\n", name="r.toml")
    assert recipe.search.bits == (32, 8)
    assert "bits[0] must be an integer in 2..16, got 24" in _error(tiny_base + "\n[search]\nbits = [24]\n")


def test_an_unknown_section_suggests_the_right_one(tiny_base):
    message = _error(tiny_base + "\n[post_prun]\namounts = [0.1]\n")
    assert "unknown section [post_prun]; did you mean 'post_prune'?" in message


def test_missing_required_sections_and_bad_toml():
    assert _error('[model]\narch = "small_cnn"\n') == "r.toml: missing section [data]"
    assert _error("[model\n").startswith("r.toml: not valid TOML")


def test_unknown_dataset_and_arch_get_suggestions(tiny_base):
    assert "dataset 'fashon-mnist' is unknown; did you mean 'fashion-mnist'?" in _error(
        tiny_base.replace('"synthetic"', '"fashon-mnist"')
    )
    assert "arch 'small_cn' is not in the zoo; did you mean 'small_cnn'?" in _error(
        tiny_base.replace('"small_cnn"', '"small_cn"')
    )


def test_cross_stage_requirements(tiny_base):
    assert "[combine] needs a pruning or quantization sweep" in _error(tiny_base + "\n[combine]\n")
    assert "allocation 'sensitivity' needs the [sensitivity] stage" in _error(
        tiny_base + '\n[search]\nallocations = ["sensitivity"]\n'
    )
    assert "schedule 'stepwise' prunes while fine-tuning" in _error(
        tiny_base + '\n[structured]\namounts = [0.5]\nschedules = ["stepwise"]\nepochs = 0\n'
    )


def test_checkpoints_resolve_relative_to_the_recipe_and_must_exist(tmp_path, tiny_base):
    text = tiny_base.replace("[model]\n", '[model]\ncheckpoint = "models/base.pt"\n')
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"checkpoint {tmp_path / 'models' / 'base.pt'} does not exist"):
        load_recipe(path)
    unknown = tiny_base.replace("[model]\n", '[model]\ncheckpoint = "builtin:cifar"\n')
    assert "unknown builtin checkpoint 'cifar'" in _error(unknown)


def test_the_context_hash_follows_what_trials_depend_on(tiny_base):
    recipe = parse_recipe(tiny_base)
    assert (
        recipe.context_hash() == parse_recipe(tiny_base + "\n[post_prune]\namounts = [0.1]\n").context_hash()
    )
    assert recipe.context_hash() != replace(recipe, run=replace(recipe.run, seed=1)).context_hash()
    assert recipe.context_hash() != parse_recipe(tiny_base.replace("lr = 0.1", "lr = 0.2")).context_hash()


def test_the_cli_refuses_a_bad_recipe_before_creating_anything(recipe_file, tmp_path, capsys):
    path = recipe_file("\n[post_quant]\nbits = [33]\n")
    out = tmp_path / "runs" / "bad"
    assert main(["run", str(path), "-o", str(out), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "bits[0] must be an integer in 2..16, got 33" in captured.err
    assert not out.exists() and not out.parent.exists()


@pytest.mark.parametrize("name", ["seed000", "seed002", "seed003", "demo"])
def test_the_shipped_recipes_are_valid(name):
    path = Path(__file__).resolve().parents[2] / "recipes" / f"{name}.toml"
    text = path.read_text()
    if not ASSETS.joinpath(BUILTIN_CHECKPOINTS["fashion-mnist"]).is_file():  # until the asset ships
        text = text.replace('checkpoint = "builtin:fashion-mnist"', "")
    recipe = parse_recipe(text, name=path.name, base_dir=path.parent)
    assert recipe.stages()[0] == "profile" and len(recipe.stages()) >= 4
    assert recipe.data.dataset == "fashion-mnist"
    assert recipe.model.arch == "small_cnn" or recipe.model.checkpoint == "builtin:fashion-mnist"


def test_model_and_data_errors_stop_the_run_before_the_run_dir_exists(
    recipe_file, tiny_base, tmp_path, capsys
):
    out = tmp_path / "run"
    bad_option = recipe_file(base=tiny_base.replace("width = 4", "widht = 4"))
    assert main(["run", str(bad_option), "-o", str(out)]) == 2
    assert "model 'small_cnn' has no option widht" in capsys.readouterr().err and not out.exists()
    checkpoint = tmp_path / "ten_classes.pt"
    save_checkpoint(build("small_cnn", num_classes=10, in_channels=1, input_size=8, width=4), checkpoint)
    wrong_classes = recipe_file(
        base=tiny_base.replace("[model]\n", f'[model]\ncheckpoint = "{checkpoint}"\n')
    )
    assert main(["run", str(wrong_classes), "-o", str(out)]) == 2
    assert "the model has 10 outputs but synthetic has 4 classes" in capsys.readouterr().err
    assert not out.exists()


def test_the_ray_backend_without_ray_fails_before_any_work(recipe_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    out = tmp_path / "run"
    assert main(["run", str(recipe_file()), "-o", str(out), "--backend", "ray"]) == 2
    assert "pip install 'prunequant[dist]'" in capsys.readouterr().err and not out.exists()


def test_structured_options_are_checked_against_the_registries(tiny_base):
    text = tiny_base + '\n[structured]\namounts = [0.5]\nimportance = ["l1", "gamma"]\n'
    assert "[structured] importance[1] must be one of activation_l1, apoz, bn_gamma" in _error(text)
    text = tiny_base + '\n[structured]\namounts = [0.5]\nformats = ["w8a8", "w8x8"]\n'
    assert "formats[1] must be 'fp32' or like 'w8a8', got 'w8x8'" in _error(text)


def test_the_task_section_names_a_task_a_metric_and_an_absolute_or_relative_budget(tiny_base):
    recipe = parse_recipe(tiny_base.replace("max_drop = 0.05", 'metric = "top5"\nmax_drop = "3%"'))
    budget = recipe.task.budget(recipe.task.build())
    assert (budget.metric.name, budget.max_drop, budget.relative) == ("top5", 0.03, True)
    line = tiny_base.split("\n").index("[task]") + 2
    message = _error(tiny_base.replace("max_drop = 0.05", 'metric = "epe"'))
    assert message.startswith(f"r.toml:{line}: [task] metric: task 'classification' has no metric 'epe'")
    assert "[task] name: unknown task 'segmentaton'" in _error(
        tiny_base.replace("max_drop = 0.05", 'name = "segmentaton"')
    )
    assert "percentage" in _error(tiny_base.replace("max_drop = 0.05", 'max_drop = "3 px"'))


def test_budget_keys_of_older_recipes_point_to_the_task_section(tiny_base):
    old = tiny_base.replace("[run]\nseed = 0\n", "[run]\nseed = 0\nmax_drop = 0.01\n")
    assert _error(old).startswith("r.toml:3: [run] max_drop moved to the [task] section")


def test_data_takes_a_registered_dataset_or_a_factory_but_not_both(tiny_base):
    both = tiny_base.replace('dataset = "synthetic"', 'dataset = "synthetic"\nfactory = "pkg.mod:splits"')
    assert "dataset or factory is required (one of them)" in _error(both)
    bad = tiny_base.replace('dataset = "synthetic"', 'factory = "no_colon"')
    assert "factory must be 'package.module:function'" in _error(bad)


def test_a_user_architecture_is_rebuilt_from_a_plain_state_dict_in_every_trial(tmp_path):
    import torch

    from prunequant.lab.compress import load_baseline_model
    from prunequant.lab.env import environment, model_from_bytes, model_to_bytes

    sys.path.insert(0, str(Path(__file__).parent))
    from standins import models

    torch.manual_seed(0)
    torch.save(models.unet(width=4).state_dict(), tmp_path / "unet.pt")
    recipe = parse_recipe(
        '[task]\nname = "standins.tasks:segmentation_task"\n'
        '[model]\narch = "standins.models:unet"\nkwargs = { width = 4 }\ncheckpoint = "unet.pt"\n'
        '[data]\nfactory = "standins.data:segmentation_data"\n[baseline]\nbatch_size = 8\n',
        base_dir=tmp_path,
    )
    env = environment(recipe)
    model, meta, needs_training = load_baseline_model(recipe, env)
    assert not needs_training and meta["arch"] == "standins.models:unet" and meta["arch_kwargs"]["width"] == 4
    again, _ = model_from_bytes(model_to_bytes(model, **meta), recipe.model.arch)  # no registration call
    before, after = model.state_dict(), again.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def _zoo_state_dict(tmp_path: Path, width: int) -> None:
    """state.pt: a plain state_dict of the tiny recipe's small_cnn (1x8x8, 4 classes) of `width`."""
    import torch

    torch.manual_seed(0)
    model = build("small_cnn", num_classes=4, in_channels=1, input_size=8, width=width)
    torch.save(model.state_dict(), tmp_path / "state.pt")


def test_a_zoo_arch_loads_a_plain_state_dict_of_it(tiny_base, tmp_path):
    import torch

    from prunequant.lab.compress import load_baseline_model
    from prunequant.lab.env import environment

    _zoo_state_dict(tmp_path, width=4)
    text = tiny_base.replace("kwargs = { width = 4 }\n", 'kwargs = { width = 4 }\ncheckpoint = "state.pt"\n')
    recipe = parse_recipe(text, base_dir=tmp_path)
    model, meta, needs_training = load_baseline_model(recipe, environment(recipe))
    saved = torch.load(tmp_path / "state.pt", weights_only=True)
    assert not needs_training and meta["arch"] == "small_cnn" and meta["arch_kwargs"]["width"] == 4
    assert all(torch.equal(saved[key], value) for key, value in model.state_dict().items())


def test_a_state_dict_that_does_not_fit_the_arch_is_one_line_naming_the_shapes(tiny_base, tmp_path, capsys):
    _zoo_state_dict(tmp_path, width=8)
    text = tiny_base.replace("kwargs = { width = 4 }\n", 'kwargs = { width = 4 }\ncheckpoint = "state.pt"\n')
    path = tmp_path / "r.toml"
    path.write_text(text)
    assert main(["run", str(path), "-o", str(tmp_path / "run"), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "state.pt does not match the model (shape mismatch: " in err
    assert "[8, 1, 3, 3] vs model [4, 1, 3, 3]" in err and "small_cnn(" in err and "width=4" in err
    assert "(recipe: [model] arch)" in err and "pass model=" not in err
    assert not (tmp_path / "run").exists()
