"""print(compiled_step): the captured program, one line per array operation, like jax.make_jaxpr.

    forward:   %7 (32, 200) = Tanh %6 (32, 200)
    backward:  %15 (32, 200) = Tanh.backward %14 (32, 200)
               hidden.weight.grad += %17 (200, 30)
    update:    SGD.step: p -= lr * p.grad for 5 parameters

Slots are named by where their array comes from: the function's argument names, the dotted
names of parameters of any nn.Module among the arguments (or in the function's closure, or
its `self`), `const` for constants, `%n` for what an op made.
"""
from .compile_record import CONST, EXT, INPUT, LEAF, Acc, Bwd, Fit, Fwd, Leaf, Reset, Swept, Write, _Ref


def slot_names(rec, argnames, args, kwargs, fn):
    """A name per slot of the recording."""
    from .nn import Module
    from .tensor import Tensor
    labels, inputs = {}, []
    named = [(argnames[i] if i < len(argnames) else f"arg{i}", v) for i, v in enumerate(args)]
    for name, v in named + [(k, kwargs[k]) for k in sorted(kwargs)]:  # in _signature's order
        if isinstance(v, Tensor) and v.requires_grad:
            labels[id(v)] = name
        elif isinstance(v, Tensor) or hasattr(v, "dtype"):
            inputs.append(name)
    owners = list(args) + list(kwargs.values()) + [getattr(fn, "__self__", None)]
    owners += [c.cell_contents for c in (getattr(fn, "__closure__", None) or ()) if _filled(c)]
    for o in owners:
        if isinstance(o, Module):
            for name, t in o._named_tensors():
                labels.setdefault(id(t), name)
    names, unnamed = [], 0
    for s, (kind, t) in enumerate(rec.kinds):
        if kind == INPUT:
            names.append(inputs[t] if t < len(inputs) else f"input{t}")
        elif kind in (LEAF, EXT):
            if id(t) not in labels:
                labels[id(t)], unnamed = f"p{unnamed}", unnamed + 1
            names.append(labels[id(t)])
        elif kind == CONST:
            names.append("const")
        else:
            names.append(f"%{s}")
    tensors = {}
    for s, (kind, t) in enumerate(rec.kinds):
        if kind in (LEAF, EXT):
            tensors[id(t)] = names[s]
    return {"slots": names, "tensors": {**labels, **tensors}}


def _filled(cell):
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


def _shape(shape):
    return f"({shape[0]},)" if len(shape) == 1 else str(tuple(shape))


def format_program(prog):
    """The lines of one program: forward, the backward the tape derived, the update."""
    names, tnames = prog.names["slots"], prog.names["tensors"]

    def slot(s):
        shape, dtype = prog.meta[s]
        return f"{names[s]} {_shape(shape)}"

    def tname(t):
        return tnames.get(id(t), "tensor")

    sections = {"forward": [], "backward": [], "update": []}
    section = "forward"
    for i, step in enumerate(prog.steps):
        t = type(step)
        mark = "" if i in prog.hot else "   [generic]"
        if t is Fwd:
            if section == "backward":
                section = "update"  # arithmetic after the backward: a hand-written update
            params = ", ".join(f"{k}={_param(v, slot)}" for k, v in step.params.items())
            args = ", ".join(slot(s) for s in step.ins) + (", " + params if params and step.ins else params)
            line = f"{slot(step.out)} = {type(step.fn).__name__} {args}{mark}"
        elif t is Bwd:
            section = "backward"
            outs = ", ".join("_" if o is None else slot(o) for o in step.outs)
            split = "   [weight and bias gradients on a second thread]" if i in prog.split else ""
            line = f"{outs} = {type(step.fn).__name__}.backward {slot(step.g)}{mark}{split}"
        elif t is Fit:
            line = f"{slot(step.out)} = sum {slot(step.src)} over axes {step.axes} (broadcast)"
        elif t is Acc:
            line = f"{slot(step.out)} = {slot(step.a)} + {slot(step.b)}"
        elif t is Leaf:
            line = f"{tname(step.tensor)}.grad += {slot(step.gi)}"
        elif t is Reset:
            line = f"{tname(step.tensor)}.grad = None"
        elif t is Write:
            line = f"{slot(step.dst)}[...] = {slot(step.src)}  (in place)"
        elif t is Swept:
            continue  # the end of a sweep: no array call
        else:
            section = "update"
            opt = step.opt
            params = ", ".join(f"{tname(p)} {_shape(p.shape)}" for p in opt.params)
            if i in prog.hot:
                fused = prog.fused.get(i, 0)
                how = f"; lr * p.grad in one call for {fused}, their gradients in one buffer" if fused else ""
                line = f"{type(opt).__name__}.step: p -= lr * p.grad  (lr read each call{how}) for {params}"
            else:
                line = f"{type(opt).__name__}.step, its own in-place update, for {params}"
        if t is Reset and section == "forward":
            sections["backward"].append(line)  # zero_grad before backward: shown where it acts
        else:
            sections[section].append(line)
    return sections


def _param(v, slot):
    if type(v) is _Ref:
        return slot(v.slot)
    if type(v) in (tuple, list) and any(type(x) is _Ref for x in v):
        return "(" + ", ".join(_param(x, slot) for x in v) + ")"
    return repr(v)


def format_compiled(compiled):
    name = getattr(compiled.fn, "__name__", "fn")
    if not compiled.programs:
        return f"tg.compile({name}): not captured yet (the first two calls run eagerly and record it)"
    out = []
    for prog in compiled.programs.values():
        ins = ", ".join(f"{n} {_shape(prog.meta[s][0])} {prog.meta[s][1]}"  # input slots come first
                        for s, n in enumerate(prog.names["slots"][:len(prog.inputs)]))
        steps = sum(type(s) is not Swept for s in prog.steps)
        out.append(f"tg.compile({name}) for {ins}: {steps} steps, {len(prog.instrs)} instructions")
        for section, lines in format_program(prog).items():
            if lines:
                out.append(f"  {section}:")
                out.extend(f"    {line}" for line in lines)
    return "\n".join(out)
