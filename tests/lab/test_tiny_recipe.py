"""The shared tiny recipe's variants: every value set lands in the recipe, none is lost silently."""

import pytest

from prunequant.lab import parse_recipe

from ..tiny_recipe import BASE


def test_a_variant_sets_lines_and_inline_entries_and_drops_lines(tiny_variant):
    text = tiny_variant(arch="resnet20", kwargs=None, size=64, epochs=1, max_drop=0.5)
    recipe = parse_recipe(text)
    assert recipe.model.arch == "resnet20" and recipe.model.kwargs == {}
    assert recipe.data.options["size"] == 64 and recipe.data.options["noise"] == 0.6
    assert recipe.baseline.epochs == 1 and recipe.task.max_drop == 0.5
    assert tiny_variant() == BASE and parse_recipe(BASE).data.options["size"] == 256


@pytest.mark.parametrize(("values", "words"), [({"epoch": 1}, "0 times"), ({"size": None}, "inline table")])
def test_a_key_not_once_in_the_recipe_or_an_entry_dropped_is_a_key_error(tiny_variant, values, words):
    with pytest.raises(KeyError, match=words):
        tiny_variant(**values)
