"""torch's spelling of dtypes and shapes: `torch.float32` and `torch.Size([27, 10])`.

A `dtype` equals, hashes like and stands in for the numpy dtype the engine computes with
(`np.zeros(3, t.dtype)` works, `t.dtype == np.float32` holds, `t.dtype.kind` is numpy's), but
prints as torch does, so lecture code that prints `x.dtype` or `x.shape` prints what torch prints.
"""
import numpy as np


class dtype:
    """A dtype as torch names it (torch.float32); equal to, and usable as, the numpy dtype."""
    __slots__ = ("dtype", "name")

    def __init__(self, name):
        self.dtype, self.name = np.dtype(name), name

    def __repr__(self):
        return "torch." + self.name

    __str__ = __repr__

    def __eq__(self, other):
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.dtype)

    def __getattr__(self, attr):  # kind, itemsize, type, char...: numpy's
        return getattr(object.__getattribute__(self, "dtype"), attr)

    is_floating_point = property(lambda self: self.dtype.kind == "f")
    is_signed = property(lambda self: self.dtype.kind in "if")


float16 = dtype("float16")
float32 = dtype("float32")
float64 = dtype("float64")
uint8, int8, int16 = dtype("uint8"), dtype("int8"), dtype("int16")
int32 = dtype("int32")
int64 = dtype("int64")
bool_ = dtype("bool")

_BY_NUMPY = {d.dtype: d for d in (float16, float32, float64, uint8, int8, int16, int32, int64, bool_)}


def torch_dtype(np_dtype):
    """The torch-spelled dtype for a numpy dtype (numpy's own for dtypes torch lacks, e.g. uint16)."""
    return _BY_NUMPY.get(np_dtype, np_dtype)


class Size(tuple):
    """A shape, as torch.Size: a tuple that prints as torch.Size([27, 10])."""
    __slots__ = ()

    def __repr__(self):
        return f"torch.Size({list(self)})"

    __str__ = __repr__

    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n
