"""Dependency graph: trace a model and find the groups of coupled channels (seeds 003/004).

Each tensor's channel dimension gets a layout of channel spaces (see spaces.py). Convs and linears start
new spaces and read their input's; BN and depthwise convs pass channels through; element-wise ops
(residual add, SE multiply) tie spaces together; concatenation joins them at offsets; flatten turns a
channel into a block of H*W features; a channel shuffle ties its groups channel by channel, and so does
chunk its pieces; a channel pad adds zero channels, prunable where pruning can rewrite the module that
pads them. Every op that is not understood marks the spaces it touches unsafe. Where a shuffle or chunk
cannot tie its pieces (ShuffleNetV2), a second walk routes every chunk and shuffle instead (routed_graph.py)
and is kept when it frees more channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import fx, nn

from prunequant.models.export_trace import op_name
from prunequant.models.layers import is_plain_layer, layer_role
from prunequant.pruning.structured import op_tables as ops
from prunequant.pruning.structured.groups import IN, OUT, PAD_BACK, PAD_FRONT, ChannelGroup
from prunequant.pruning.structured.layer_ops import rewrites_pad
from prunequant.pruning.structured.routed_graph import Routed, RoutedTracker, as_expr
from prunequant.pruning.structured.routing import Cat, Chunk, Region, Shuffle
from prunequant.pruning.structured.spaces import FIXED_PADDING, Layout, Spaces
from prunequant.pruning.structured.subclass_check import subclass_problem
from prunequant.pruning.structured.tracing import UntraceableModelError, shape_of, trace
from prunequant.tasks.io import Inputs


@dataclass
class DependencyGraph:
    """The channel groups of a model, and the layers left alone because of unsupported patterns."""

    groups: list[ChannelGroup]
    skipped_layers: dict[str, str] = field(default_factory=dict)
    regions: list[Region] = field(default_factory=list)

    @property
    def prunable(self) -> list[ChannelGroup]:
        return [group for group in self.groups if group.prunable]

    def group(self, name: str) -> ChannelGroup:
        """The group named `name` (the layer that first produces its channels)."""
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(name)


def dependency_groups(model: nn.Module, example_input: Inputs) -> DependencyGraph:
    """Trace `model` on `example_input` (batch >= 1) and return its coupled channel groups.

    `example_input` is a tensor, a tuple or a dict of tensors (every one is a graph input); every output
    tensor of a tensor, tuple, list or dict output is a sink whose channels stay. A model neither torch.fx
    nor torch.export can trace gets no groups: all its layers are skipped.
    """
    try:
        traced = trace(model, example_input)
    except UntraceableModelError as exc:
        layers = [name for name, m in model.named_modules() if layer_role(m) is not None]
        return DependencyGraph([], dict.fromkeys(layers, str(exc)))
    analyzer, groups, regions = _analyse(traced, model, routed=False)
    if analyzer.spaces.untied:  # ShuffleNetV2's halves: try routing its chunks and shuffles instead
        second = _analyse(traced, model, routed=True)
        if _prunable_channels(*second[1:]) > _prunable_channels(groups, regions):
            analyzer, groups, regions = second
    return DependencyGraph(groups, _skipped(groups, model, traced.opaque, analyzer.refused), regions)


def _analyse(
    traced: Any, model: nn.Module, *, routed: bool
) -> tuple[_Analyzer, list[ChannelGroup], list[Region]]:
    """Walk the traced graph (chunks and shuffles along the channels routed when `routed`)."""
    analyzer = _Analyzer(traced.graph_module, traced.opaque, dict(model.named_modules()), routed=routed)
    for node in traced.graph_module.graph.nodes:
        analyzer.visit(node)
    regions = analyzer.tracker.regions(analyzer.spaces)
    groups = analyzer.spaces.groups()
    sources = {source: region.name for region in regions for source in region.widths}
    for group in groups:
        group.region = sources.get(group.name)
    return analyzer, groups, regions


def _prunable_channels(groups: list[ChannelGroup], regions: list[Region]) -> int:
    """Channels that pruning can remove: of the prunable groups and of the regions' sources."""
    return sum(g.channels for g in groups if g.prunable) + sum(sum(r.widths.values()) for r in regions)


def _skipped(
    groups: list[ChannelGroup], root: nn.Module, opaque: dict[str, str], refused: dict[str, str]
) -> dict[str, str]:
    """Conv/linear/norm layers left as they are because of an unsupported pattern: layers refused by name,
    the layers of unsafe groups and every such layer inside a submodule that could not be traced."""
    modules = dict(root.named_modules())
    skipped: dict[str, str] = dict(refused)
    for group in groups:
        if group.expected:
            continue
        for member in group.producers:
            if layer_role(modules.get(member.module)) is not None:
                skipped.setdefault(member.module, "; ".join(group.unsafe))
    for name, reason in opaque.items():
        for inner, module in modules[name].named_modules(prefix=name):
            if layer_role(module) is not None:
                skipped.setdefault(inner, f"inside '{name}', which could not be traced ({reason})")
    return skipped


@dataclass(frozen=True)
class Shuffling:
    """A channel dimension viewed as (groups, channels / groups) on dims cdim, cdim + 1 of a channel
    shuffle (swapped when `transposed`); merging the two dims back gives `layout` again or, once
    swapped, its shuffle (Spaces.shuffled)."""

    layout: Layout
    groups: int
    transposed: bool = False


def _parts(value: Any) -> tuple[Layout, ...]:
    """The channel layouts a node's value holds: a split's pieces, a shuffle's layout, or itself."""
    if isinstance(value, Shuffling):
        return _parts(value.layout)
    if isinstance(value, Routed):
        return value.layouts()
    if isinstance(value, tuple):
        return value
    return (value,) if isinstance(value, Layout) else ()


def _arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _normalize(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


class _Analyzer:
    """Walks the fx graph in topological order, giving every tensor node a channel layout."""

    def __init__(
        self, root: fx.GraphModule, opaque: dict[str, str], owners: dict[str, nn.Module], *, routed: bool
    ) -> None:
        self.routed = routed
        self.tracker = RoutedTracker()
        self.modules = dict(root.named_modules())
        self.owners = owners  # the model's modules, also those fx traced through (not in `root`)
        self._pads: dict[str, tuple[Layout, Layout]] = {}
        self.opaque = opaque
        self.spaces = Spaces()
        self.layouts: dict[fx.Node, Layout | tuple | Shuffling | None] = {}
        self._calls: dict[str, tuple[Layout | None, Layout | None]] = {}
        self.refused: dict[str, str] = {}

    # --- helpers -------------------------------------------------------------------------------------
    def layout(self, value: Any) -> Layout | None:
        return self.layouts.get(value) if isinstance(value, fx.Node) else None

    def tensor_inputs(self, node: fx.Node) -> list[fx.Node]:
        found: list[fx.Node] = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n))
        return found

    def fresh(self, node: fx.Node, origin: str, reason: str | None = None) -> Layout | None:
        """A new space for `node`'s channels (dim 1), marked unsafe when `reason` is given."""
        shape = shape_of(node)
        if shape is None or len(shape) < 2:
            return None
        layout = self.spaces.new(shape[1], origin)
        if reason:
            self.spaces.mark(layout, reason)
        return layout

    def refuse(self, node: fx.Node, name: str, reason: str) -> Layout | None:
        """Leave layer `name` (and the channels it reads and writes) as it is, naming it with `reason`."""
        self.refused.setdefault(name, reason)
        return self.unknown(node, reason)

    def unknown(self, node: fx.Node, reason: str) -> Layout | None:
        for source in self.tensor_inputs(node):
            for part in _parts(self.layouts.get(source)):
                self.spaces.mark(part, reason)
        return self.fresh(node, node.name, reason)

    # --- dispatch ------------------------------------------------------------------------------------
    def visit(self, node: fx.Node) -> None:
        if not node.users and node.op != "output":  # asserts and other side effects carry no channels
            return
        try:
            self.layouts[node] = self.dispatch(node)
        except Exception as exc:  # noqa: BLE001 - an op whose arguments a rule does not expect: never guess
            reason = f"'{node.name}' could not be analysed ({type(exc).__name__})"
            self.layouts[node] = self.unknown(node, reason)

    def dispatch(self, node: fx.Node) -> Layout | None:
        if node.op == "placeholder":
            return self.fresh(node, node.name, "model input")
        if node.op == "output":
            for source in self.tensor_inputs(node):
                for part in _parts(self.layouts.get(source)):
                    self.spaces.mark(part, "model output")
            return None
        if node.op == "get_attr":
            return None
        shuffling = [v for v in map(self.layouts.get, self.tensor_inputs(node)) if isinstance(v, Shuffling)]
        if shuffling:
            return self.shuffle_step(node, shuffling[0])
        if any(isinstance(self.layouts.get(n), Routed) for n in self.tensor_inputs(node)):
            return self.routed_step(node)
        if node.op == "call_module":
            return self.visit_module(node, self.modules[node.target])
        return self.visit_function(node, op_name(node.target))

    def visit_module(self, node: fx.Node, module: nn.Module) -> Layout | None:
        source = self.layout(node.args[0]) if node.args else None
        name = str(node.target)
        role = layer_role(module)
        if name in self.opaque:
            return self.unknown(node, f"'{name}' could not be traced ({self.opaque[name]})")
        if source is None and not isinstance(module, ops.ELEMENTWISE_MODULES):
            reason = f"'{name}' gets an input whose channels are not tracked"
            return self.refuse(node, name, reason) if role else self.unknown(node, reason)
        if role is not None and not is_plain_layer(module):
            problem = subclass_problem(module, role, shape_of(node.args[0]))
            if problem:
                return self.refuse(node, name, f"'{name}' ({type(module).__name__}) {problem}")
        if role in ("conv", "conv_transpose"):
            return self.conv(node, name, module, source)
        if role == "linear":
            return self.linear(node, name, module, source)
        if role in ("batch_norm", "instance_norm"):  # num_features follows the channels even without state
            return self.per_channel(node, name, source)
        if role == "group_norm":
            return self.group_norm(node, name, module, source)
        if role == "layer_norm":
            return self.layer_norm(node, name, module, source)
        if isinstance(module, nn.PReLU):
            return self.per_channel(node, name, source) if module.num_parameters > 1 else source
        if isinstance(module, ops.ELEMENTWISE_MODULES):
            return self.elementwise(node)
        if type(module) in ops.SPATIAL_MODULES:
            return self.spatial(node, source, ops.SPATIAL_MODULES[type(module)])
        if isinstance(module, nn.PixelShuffle):
            return self.pixel_shuffle(node, source, module.upscale_factor)
        if isinstance(module, nn.PixelUnshuffle):
            return self.pixel_unshuffle(node, source, module.downscale_factor)
        if isinstance(module, nn.Flatten):
            return self.flatten(node, source, module.start_dim, module.end_dim)
        if isinstance(module, (nn.Softmax, nn.LogSoftmax)):
            return self.along_dim(node, source, module.dim)
        reason = f"'{name}' ({type(module).__name__}) is not a supported layer type"
        has_weights = any(True for _ in module.parameters())
        return self.refuse(node, name, reason) if has_weights else self.unknown(node, reason)

    def visit_function(self, node: fx.Node, name: str) -> Layout | None:
        source = self.layout(node.args[0]) if node.args else None
        if isinstance(source, tuple):  # an element of a chunk/split
            index = node.args[1] if name == "getitem" else None
            if isinstance(index, int):
                return source[index]
            return self.unknown(node, f"'{node.name}' uses the pieces of a split as one value")
        if name in ops.SPLITS and source is not None:
            return self.split(node, source)
        if name in ops.NON_TENSOR or (name == "getitem" and source is None and shape_of(node) is None):
            return None
        if shape_of(node) is None:
            return self.unknown(node, f"'{node.name}' ({name}) returns no single tensor")
        if name in ops.ELEMENTWISE:
            return self.elementwise(node)
        if name in ops.CONCATS:
            return self.concat(node)
        if source is None:
            return self.unknown(node, f"'{node.name}' ({name}) reads channels that are not tracked")
        if name in ops.SPATIAL_FUNCTIONS:
            return self.spatial(node, source, ops.SPATIAL_FUNCTIONS[name])
        if name == "pad":
            return self.pad(node, source, list(_arg(node, 1, "pad")))
        if name == "pixel_shuffle":
            return self.pixel_shuffle(node, source, _arg(node, 1, "upscale_factor"))
        if name == "pixel_unshuffle":
            return self.pixel_unshuffle(node, source, _arg(node, 1, "downscale_factor"))
        if name in ops.REDUCTIONS:
            return self.reduction(node, source)
        if name == "flatten":
            return self.flatten(node, source, _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1))
        if name in ops.RESHAPES:
            return self.reshape(node, source)
        if name in ("softmax", "log_softmax"):
            return self.along_dim(node, source, _arg(node, 1, "dim"))
        if name in ("unsqueeze", "squeeze", "permute", "transpose", "getitem"):
            return getattr(self, name)(node, source)
        return self.unknown(node, f"'{node.name}' uses {name}, which is not supported")

    # --- layers --------------------------------------------------------------------------------------
    def called(self, name: str, source: Layout, make_output: Any) -> Layout:
        """A layer called again must read the same channels and produce the same ones as its first call."""
        previous = self._calls.get(name)
        if previous is None:
            output = make_output()
            self._calls[name] = (source, output)
            return output
        self.spaces.unify(previous[0], source, f"'{name}' (called twice)")
        return previous[1]

    def conv(self, node: fx.Node, name: str, conv: nn.modules.conv._ConvNd, source: Layout) -> Layout | None:
        """Conv or transposed conv of any dimension: reads its input's channels, makes new ones (or, when
        depthwise, repeats each input channel `out/in` times)."""
        if source.cdim != 1 or self.spaces.positions(source) != conv.in_channels:
            return self.unknown(node, f"'{name}' reads channels that are not on dimension 1")
        groups = conv.groups
        if groups > 1 and groups == conv.in_channels:  # depthwise: channel c -> outputs c*k .. c*k+k-1
            multiplier = conv.out_channels // conv.in_channels

            def depthwise() -> Layout:
                output = source.repeated(multiplier)
                self.spaces.add_members(output, name, OUT)
                return output

            return self.called(name, source, depthwise)

        def regular() -> Layout:
            if groups > 1:
                if len(source.segments) != 1 or not source.segments[0].plain:
                    self.spaces.mark(source, f"grouped conv '{name}' reads concatenated channels")
                self.spaces.constrain_blocks(source, groups)
            self.spaces.add_members(source, name, IN)
            output = self.spaces.new(conv.out_channels, name, blocks=groups)
            self.spaces.add_members(output, name, OUT)
            return output

        return self.called(name, source, regular)

    def linear(self, node: fx.Node, name: str, linear: nn.Linear, source: Layout) -> Layout | None:
        shape = shape_of(node)
        if (
            shape is None
            or source.cdim != len(shape) - 1
            or self.spaces.positions(source) != linear.in_features
        ):
            return self.unknown(node, f"'{name}' reads features that are not on its last dimension")

        def make() -> Layout:
            self.spaces.add_members(source, name, IN)
            output = self.spaces.new(linear.out_features, name).with_cdim(len(shape) - 1)
            self.spaces.add_members(output, name, OUT)
            return output

        return self.called(name, source, make)

    def per_channel(self, node: fx.Node, name: str, source: Layout) -> Layout | None:
        if source.cdim != 1:
            return self.unknown(node, f"'{name}' normalises a dimension other than the channels")

        def make() -> Layout:
            self.spaces.add_members(source, name, OUT)
            return source

        return self.called(name, source, make)

    def group_norm(self, node: fx.Node, name: str, norm: nn.GroupNorm, source: Layout) -> Layout | None:
        """GroupNorm: per-channel parameters, statistics per group: channels go in whole groups."""
        if source.cdim != 1:
            return self.refuse(node, name, f"'{name}' normalises a dimension other than the channels")
        if norm.num_groups == 1:
            return self.refuse(node, name, f"'{name}' (GroupNorm, 1 group) normalises all channels together")
        unit = norm.num_channels // norm.num_groups
        for segment in self.spaces.resolve(source).segments:
            size = self.spaces.size(segment.space)
            if not segment.plain or segment.start % unit or size % unit:
                reason = f"'{name}' (GroupNorm) has groups of {unit} channels across concatenated inputs"
                return self.refuse(node, name, reason)

        def make() -> Layout:
            self.spaces.constrain_units(source, unit)
            self.spaces.add_members(source, name, OUT)
            return source

        return self.called(name, source, make)

    def layer_norm(self, node: fx.Node, name: str, norm: nn.LayerNorm, source: Layout) -> Layout | None:
        """LayerNorm over the channel dimension alone is pruned with its channels (its statistics are then
        taken over the kept channels); over trailing dimensions without the channels it passes them."""
        ndim = len(shape_of(node) or ())
        normalized = len(norm.normalized_shape)
        if source.cdim < ndim - normalized:
            return source
        if normalized != 1 or source.cdim != ndim - 1:
            reason = f"'{name}' (LayerNorm) normalises the channels with other dimensions"
            return self.refuse(node, name, reason)

        def make() -> Layout:
            self.spaces.add_members(source, name, OUT)
            return source

        return self.called(name, source, make)

    def pixel_shuffle(self, node: fx.Node, source: Layout, factor: int) -> Layout | None:
        """Output channel c is input channels c*r^2 .. c*r^2 + r^2 - 1: they go together."""
        output = source.coarsened(factor * factor) if source.cdim == 1 else None
        if output is None:
            reason = f"'{node.name}' shuffles channels that are not in blocks of {factor**2}"
            return self.unknown(node, reason)
        self.spaces.constrain_units(output)
        return output

    def pixel_unshuffle(self, node: fx.Node, source: Layout, factor: int) -> Layout | None:
        """Input channel c becomes output channels c*r^2 .. c*r^2 + r^2 - 1."""
        if source.cdim != 1:
            return self.unknown(node, f"'{node.name}' unshuffles a dimension other than the channels")
        return source.repeated(factor * factor)

    # --- functional ops ------------------------------------------------------------------------------
    def elementwise(self, node: fx.Node) -> Layout | None:
        """Broadcasting op: every operand whose channel dimension is full-size is tied to the output."""
        shape = shape_of(node)
        if shape is None:
            return self.unknown(node, f"'{node.name}' returns no single tensor")
        operands = self.tensor_inputs(node)
        tracked = [n for n in operands if self.layout(n) is not None and shape_of(n) is not None]
        if not tracked:
            return self.fresh(node, node.name, f"'{node.name}' creates channels from untracked values")
        ndim = len(shape)
        cdim = self.layout(tracked[0]).cdim + ndim - len(shape_of(tracked[0]))
        output: Layout | None = None
        for operand in operands:
            layout, operand_shape = self.layout(operand), shape_of(operand)
            if operand_shape is None:
                continue
            aligned = cdim - (ndim - len(operand_shape))
            size = operand_shape[aligned] if 0 <= aligned < len(operand_shape) else 1
            if size == 1 and shape[cdim] != 1:
                continue  # broadcast over the channels: no tie
            if layout is None or layout.cdim != aligned:
                reason = f"'{node.name}' mixes channels with an untracked tensor"
                self.spaces.mark(output, reason)
                for other in tracked:
                    self.spaces.mark(self.layout(other), reason)
                continue
            if output is None:
                output = layout.with_cdim(cdim)
            else:
                self.spaces.unify(output, layout, f"'{node.name}'")
        return output if output is not None else self.unknown(node, f"'{node.name}' has no channel operand")

    def concat(self, node: fx.Node) -> Layout | None:
        inputs = list(_arg(node, 0, "tensors"))
        layouts = [self.layout(n) for n in inputs]
        shape = shape_of(node)
        if any(layout is None for layout in layouts) or shape is None:
            return self.unknown(node, f"'{node.name}' concatenates untracked tensors")
        dim = _normalize(_arg(node, 1, "dim", 0), len(shape))
        cdim = layouts[0].cdim
        if any(isinstance(layout, Routed) for layout in layouts):
            if dim != 1 or any(layout.cdim != 1 for layout in layouts):
                return self.unknown(node, f"'{node.name}' concatenates routed channels along another dim")
            return Routed(Cat(tuple(as_expr(layout) for layout in layouts)))
        if any(layout.cdim != cdim for layout in layouts):
            return self.unknown(node, f"'{node.name}' concatenates tensors with channels on different dims")
        if dim == cdim:
            return self.spaces.joined(layouts)
        for layout in layouts[1:]:
            self.spaces.unify(layouts[0], layout, f"'{node.name}'")
        return layouts[0]

    def spatial(self, node: fx.Node, source: Layout | None, dims: int | None) -> Layout | None:
        """An op over the trailing `dims` dimensions (None: every dimension after the channels)."""
        shape = shape_of(node)
        if dims is None:
            dims = len(shape or ()) - 2
        if source is None or shape is None or source.cdim >= len(shape) - dims:
            return self.unknown(node, f"'{node.name}' pools or pads over the channel dimension")
        return source

    def split(self, node: fx.Node, source: Layout) -> tuple | Layout | None:
        """chunk/split: along the channels each piece reads its own channels (spaces are cut at the piece
        boundaries), tied piece by piece for chunk and kept whole for split (its sizes are fixed counts);
        along another dimension every piece has the source's channels."""
        shapes = _piece_shapes(node)
        shape_in = shape_of(node.args[0])
        if shapes is None or shape_in is None:
            return self.unknown(node, f"'{node.name}' splits into values whose shapes are not known")
        dim = _normalize(_arg(node, 2, "dim", 0), len(shape_in))
        if dim != source.cdim:
            return tuple(source for _ in shapes)
        name = op_name(node.target)
        if self.routed or isinstance(source, Routed):
            if name != "chunk":
                return self.unknown(node, f"'{node.name}' ({name}) cuts routed channels at fixed counts")
            count = _arg(node, 1, "chunks")
            return tuple(Routed(Chunk(as_expr(source), i, count)) for i in range(len(shapes)))
        ends = [sum(shape[dim] for shape in shapes[: i + 1]) for i in range(len(shapes))]
        pieces = self.spaces.pieces(source, ends)
        if pieces is None:
            self.spaces.untied.append(node.name)
            return self.unknown(node, f"'{node.name}' splits channels of a grouped conv or in runs")
        for piece in pieces[1:]:
            if name == "chunk":  # sizes follow the input's: the pieces keep as many channels
                self.spaces.unify(pieces[0], piece, f"'{node.name}' (chunk)")
            else:  # split sizes are counts written in the code (or specialised by torch.export)
                reason = f"'{node.name}' ({name}) cuts the channels at fixed counts; chunk follows pruning"
                for part in (pieces[0], piece):
                    self.spaces.mark(part, reason)
        return tuple(pieces)

    def pad(self, node: fx.Node, source: Layout, pad: list) -> Layout | None:
        """F.pad: spatial padding passes channels; constant padding of the channels (ResNet option A
        shortcuts) adds zero channels around the source's (see `padded_channels`)."""
        shape = shape_of(node)
        ndim = len(shape or ())
        if len(pad) // 2 <= ndim - 2:
            return self.spatial(node, source, len(pad) // 2)
        index = 2 * (ndim - 1 - source.cdim)
        front, back = pad[index : index + 2]
        before = pad[index + 2 :]
        mode = _arg(node, 2, "mode", "constant")
        if source.cdim != 1 or any(before) or mode != "constant" or not all(isinstance(p, int) for p in pad):
            return self.unknown(node, f"'{node.name}' pads the channel dimension")
        zeros_front, zeros_back = self.padded_channels(node, front, back)
        return self.spaces.joined([zeros_front, source, zeros_back])

    def padded_channels(self, node: fx.Node, front: int, back: int) -> tuple[Layout, Layout]:
        """The zero channels a channel pad adds before and after. Where the pad is made by a module whose
        counts pruning rewrites (its innermost traced module, e.g. ZeroPadShortcut), they are members of
        that module and prunable, the same ones on every call; elsewhere they are fixed (FIXED_PADDING)."""
        owner = _innermost_module(node)
        if not owner or not rewrites_pad(self.owners.get(owner), front, back):
            fixed = tuple(self.zeros(size, node.name) for size in (front, back))
            for zeros in fixed:
                self.spaces.mark(zeros, FIXED_PADDING)
            return fixed
        if owner not in self._pads:
            self._pads[owner] = (self.zeros(front, owner, PAD_FRONT), self.zeros(back, owner, PAD_BACK))
        return self._pads[owner]

    def zeros(self, size: int, origin: str, role: str | None = None) -> Layout:
        """A space of `size` padded zero channels (an empty layout for none); with `role`, a member of
        module `origin` in that role."""
        if size == 0:
            return Layout((), 1)
        if role is None:
            return self.spaces.new(size, origin)
        layout = self.spaces.new(size, f"{origin}.{role}")
        self.spaces.add_members(layout, origin, role)
        return layout

    def along_dim(self, node: fx.Node, source: Layout, dim: int | None) -> Layout | None:
        shape = shape_of(node)
        if dim is None or shape is None or _normalize(dim, len(shape)) == source.cdim:
            return self.unknown(node, f"'{node.name}' normalises across channels")
        return source

    def reduction(self, node: fx.Node, source: Layout) -> Layout | None:
        dims = _arg(node, 1, "dim")
        ndim = len(shape_of(node.args[0]) or ())
        if dims is None or ndim == 0:
            return self.unknown(node, f"'{node.name}' reduces over all dimensions")
        dims = {_normalize(d, ndim) for d in (dims if isinstance(dims, (list, tuple)) else (dims,))}
        if source.cdim in dims:
            return self.unknown(node, f"'{node.name}' reduces over the channel dimension")
        keepdim = _arg(node, 2, "keepdim", False)
        return source.with_cdim(source.cdim - (0 if keepdim else sum(d < source.cdim for d in dims)))

    def flatten(self, node: fx.Node, source: Layout, start: int, end: int) -> Layout | None:
        shape_in = shape_of(node.args[0])
        ndim = len(shape_in)
        start, end = _normalize(start, ndim), _normalize(end, ndim)
        cdim = source.cdim
        if cdim < start:
            return source
        if cdim > end:
            return source.with_cdim(cdim - (end - start))
        if start != cdim:
            return self.unknown(node, f"'{node.name}' merges the channels into an earlier dimension")
        return source.repeated(math.prod(shape_in[cdim + 1 : end + 1]))

    def reshape(self, node: fx.Node, source: Layout) -> Layout | None:
        """Views that keep the channels, merge them with the following dims (flatten) or split features
        into channel blocks (a Linear viewed as [C, H, W]), with the channel size left to -1 or computed."""
        shape_in, shape_out = shape_of(node.args[0]), shape_of(node)
        cdim = source.cdim
        target = _shape_args(node)
        fixed = len(target) > 1 and isinstance(target[1], int) and target[1] != -1
        if cdim != 1 or shape_in is None or shape_out is None or len(shape_out) < 2:
            return self.unknown(node, f"'{node.name}' reshapes the channel dimension")
        if (
            len(shape_out) == len(shape_in) + 1
            and shape_out[1] * shape_out[2] == shape_in[1]
            and shape_out[3:] == shape_in[2:]
            and node.users
            and all(_swaps_dims(user, 1) for user in node.users)
        ):
            return Shuffling(source, shape_out[1])
        if fixed:
            return self.unknown(node, f"'{node.name}' fixes {target[1]} channels in a view; write -1 there")
        if shape_out[:2] == shape_in[:2]:
            return source
        for end in range(2, len(shape_in) + 1):
            if shape_out[1] == math.prod(shape_in[1:end]) and shape_out[2:] == shape_in[end:]:
                return source.repeated(math.prod(shape_in[2:end]))
        for end in range(3, len(shape_out) + 1):
            if shape_in[1] == math.prod(shape_out[1:end]) and shape_in[2:] == shape_out[end:]:
                output = source.coarsened(math.prod(shape_out[2:end]))
                if output is None:
                    break
                self.spaces.constrain_units(output)
                return output.with_cdim(1)
        return self.unknown(node, f"'{node.name}' reshapes the channel dimension (e.g. a channel shuffle)")

    def shuffle_step(self, node: fx.Node, value: Shuffling) -> Shuffling | Layout | None:
        """The ops of a channel shuffle after the channels were viewed as (groups, channels / groups): the
        swap of the two dims, copies, and the view merging them back into the (shuffled) channels."""
        name = op_name(node.target) if node.op in ("call_function", "call_method") else ""
        cdim = value.layout.cdim
        if name in ops.NON_TENSOR:
            return None
        tensors = [n for n in self.tensor_inputs(node) if shape_of(n) is not None]
        if len(tensors) != 1 or node.args[0] is not tensors[0]:
            return self.unknown(node, f"'{node.name}' combines a channel shuffle's groups with other values")
        if _swaps_dims(node, cdim):
            return Shuffling(value.layout, value.groups, not value.transposed)
        if name in _COPIES:
            return value
        shape_in, shape_out = shape_of(node.args[0]), shape_of(node)
        merged = (
            shape_in is not None
            and shape_out is not None
            and shape_out[:cdim] == shape_in[:cdim]
            and shape_out[cdim] == shape_in[cdim] * shape_in[cdim + 1]
            and shape_out[cdim + 1 :] == shape_in[cdim + 2 :]
        )
        if (name in ops.RESHAPES or name == "flatten") and merged:
            if not value.transposed:
                return value.layout
            if self.routed or isinstance(value.layout, Routed):
                return Routed(Shuffle(as_expr(value.layout), value.groups))
            output = self.spaces.shuffled(value.layout, value.groups, node.name)
            if output is not None:
                return output
            return self.unknown(node, f"'{node.name}' shuffles channels that cannot be cut into its groups")
        return self.unknown(node, f"'{node.name}' ({name or node.op}) acts on a channel shuffle's groups")

    def routed_step(self, node: fx.Node) -> Any:
        """An op reading a routed tensor (second pass, routed_graph.py): chunks, concatenations and
        shuffles route it further; BN, depthwise convs, activations and pools pass it as members or
        without a trace; a conv reads it as a member and makes new channels. Anything else keeps it."""
        source = self.layout(node.args[0]) if node.args else None
        tensors = [n for n in self.tensor_inputs(node) if shape_of(n) is not None]
        single = isinstance(source, Routed) and len(tensors) == 1
        if node.op == "call_module":
            name = str(node.target)
            output = self.routed_module(name, self.modules[name], source) if single else None
            if output is not None:
                return output
        else:
            name = op_name(node.target)
            if name in ops.CONCATS:
                return self.concat(node)
            if name in ops.SPLITS and isinstance(source, Routed):
                return self.split(node, source)
            if name in ops.NON_TENSOR:
                return None
            passes = name in ops.ELEMENTWISE or name in ops.SPATIAL_FUNCTIONS or name in _COPIES
            if single and passes:
                return source
            if single and name in ops.RESHAPES:
                output = self.reshape(node, source)
                if isinstance(output, Shuffling) or output is source:
                    return output
        return self.unknown(node, f"'{node.name}' ({name}) reads channels that chunks and shuffles route")

    def routed_module(self, name: str, module: nn.Module, source: Routed) -> Any:
        """`module` on a routed tensor, or None where it is not supported there."""
        role = layer_role(module)
        passes = isinstance(module, ops.ELEMENTWISE_MODULES) or type(module) in ops.SPATIAL_MODULES
        if role is None and passes:
            return source
        if role is None or name in self._calls or name in self.opaque or not is_plain_layer(module):
            return None
        self._calls[name] = (None, None)  # a second call is not supported
        if role in ("batch_norm", "instance_norm"):
            self.tracker.add(name, OUT, source)
            return source
        if role == "conv" and not module.transposed:
            if module.groups == module.in_channels == module.out_channels:  # depthwise, multiplier 1
                self.tracker.add(name, OUT, source)
                return source
            if module.groups == 1:
                self.tracker.add(name, IN, source)
                output = self.spaces.new(module.out_channels, name)
                self.spaces.add_members(output, name, OUT)
                return output
        return None

    def unsqueeze(self, node: fx.Node, source: Layout) -> Layout | None:
        dim = _normalize(_arg(node, 1, "dim"), len(shape_of(node)))
        return source.with_cdim(source.cdim + (dim <= source.cdim))

    def squeeze(self, node: fx.Node, source: Layout) -> Layout | None:
        shape_in = shape_of(node.args[0])
        dim = _arg(node, 1, "dim")
        dims = range(len(shape_in)) if dim is None else [_normalize(d, len(shape_in)) for d in _as_tuple(dim)]
        removed = [d for d in dims if shape_in[d] == 1]
        if source.cdim in removed:
            return self.unknown(node, f"'{node.name}' squeezes the channel dimension away")
        return source.with_cdim(source.cdim - sum(d < source.cdim for d in removed))

    def permute(self, node: fx.Node, source: Layout) -> Layout | None:
        order = node.args[1:] if len(node.args) > 2 else _arg(node, 1, "dims")
        ndim = len(shape_of(node))
        order = [_normalize(d, ndim) for d in _as_tuple(order)]
        return source.with_cdim(order.index(source.cdim))

    def transpose(self, node: fx.Node, source: Layout) -> Layout | None:
        ndim = len(shape_of(node))
        a, b = _normalize(_arg(node, 1, "dim0"), ndim), _normalize(_arg(node, 2, "dim1"), ndim)
        swap = {a: b, b: a}
        return source.with_cdim(swap.get(source.cdim, source.cdim))

    def getitem(self, node: fx.Node, source: Layout | None) -> Layout | None:
        index = _as_tuple(node.args[1])
        if source is None:
            return self.unknown(node, f"'{node.name}' picks from a value whose channels are not tracked")
        leading = index[: source.cdim + 1]
        full = slice(None, None, None)
        if len(index) > source.cdim and all(item == full for item in leading):
            return source
        if len(index) <= source.cdim and all(item == full for item in index):
            return source
        return self.unknown(node, f"'{node.name}' indexes into the channel dimension")


_COPIES = frozenset({"contiguous", "clone", "detach"})


def _innermost_module(node: fx.Node) -> str:
    """Qualified name of the innermost module whose forward made `node` ('' at the model's top level)."""
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def _swaps_dims(node: fx.Node, dim: int) -> bool:
    """Whether `node` is a transpose/permute that swaps dims `dim` and `dim + 1` and nothing else."""
    name = op_name(node.target) if node.op in ("call_function", "call_method") else ""
    shape = shape_of(node)
    if name not in ("transpose", "permute") or shape is None:
        return False
    ndim = len(shape)
    if name == "transpose":
        pair = {_normalize(_arg(node, 1, "dim0"), ndim), _normalize(_arg(node, 2, "dim1"), ndim)}
        return pair == {dim, dim + 1}
    order = node.args[1:] if len(node.args) > 2 else _arg(node, 1, "dims")
    swapped = list(range(ndim))
    swapped[dim], swapped[dim + 1] = dim + 1, dim
    return [_normalize(d, ndim) for d in _as_tuple(order)] == swapped


def _piece_shapes(node: fx.Node) -> list[tuple[int, ...]] | None:
    """Shapes of the tensors of a node returning a tuple of tensors (chunk/split), else None."""
    value = node.meta.get("val", node.meta.get("tensor_meta"))
    if not isinstance(value, (tuple, list)) or not all(hasattr(v, "shape") for v in value):
        return None
    return [tuple(v.shape) for v in value]


def _shape_args(node: fx.Node) -> tuple:
    """The target shape of a view/reshape call, given as varargs or as one tuple."""
    if len(node.args) == 2 and isinstance(node.args[1], (list, tuple)):
        return tuple(node.args[1])
    return tuple(node.args[1:]) or tuple(node.kwargs.get("shape", node.kwargs.get("size", ())))


def _as_tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)
