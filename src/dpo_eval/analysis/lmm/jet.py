"""Second-order forward-mode automatic differentiation of array expressions.

A :class:`Jet` carries an array's value with its exact gradient and Hessian in ``k`` parameters;
sums, products, matrix products, solves, log-determinants and smooth elementwise functions
propagate them by the product and chain rules up to second order (Griewank & Walther, 2008,
Evaluating Derivatives, 2nd ed., chapter 13). The REML engine evaluates its whitening with jets,
so the criterion's Hessian and the Satterthwaite derivatives need no numerical differences.
"""

from __future__ import annotations

from functools import reduce

import numpy as np


class Jet:
    """An array with its exact first and second derivatives in k parameters (forward mode).

    ``d`` has shape ``(k,) + v.shape`` and ``h`` ``(k, k) + v.shape``; ``None`` stands for
    zero. ``order`` is the highest derivative carried (0, 1 or 2)."""

    __slots__ = ("v", "d", "h", "order")

    def __init__(self, v, d=None, h=None, order: int = 0):
        self.v, self.d, self.h, self.order = np.asarray(v, dtype=float), d, h, order

    def expand(self, ndim: int) -> "Jet":
        extra = ndim - self.v.ndim
        if extra <= 0:
            return self
        shape = (1,) * extra + self.v.shape
        return Jet(self.v.reshape(shape),
                   None if self.d is None else self.d.reshape(self.d.shape[:1] + shape),
                   None if self.h is None else self.h.reshape(self.h.shape[:2] + shape), self.order)

    def __add__(self, other):
        return _jadd(self, _jet(other))

    __radd__ = __add__

    def __sub__(self, other):
        return _jsub(self, _jet(other))

    def __rsub__(self, other):
        return _jsub(_jet(other), self)

    def __mul__(self, other):
        return bilinear(np.multiply, self, _jet(other))

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self * reciprocal(_jet(other))


def _jet(x) -> Jet:
    return x if isinstance(x, Jet) else Jet(x)


def _sum(*parts):
    parts = [p for p in parts if p is not None]
    return reduce(np.add, parts) if parts else None


def _accumulate(total, part):
    """total + part, in place when total (a fresh array) already has the broadcast shape."""
    if total is None:
        return part
    if part is None:
        return total
    if np.broadcast_shapes(total.shape, part.shape) == total.shape:
        total += part
        return total
    return total + part


def _sum_fresh(*parts):
    """The sum of freshly computed arrays, accumulated in place into the largest: the
    derivative arrays are the size of the data times k^2, so each temporary saved counts."""
    total = None
    for part in sorted((p for p in parts if p is not None), key=lambda p: p.size, reverse=True):
        total = _accumulate(total, part)
    return total


def _difference(a, b):
    if b is None:
        return a
    return -b if a is None else a - b


def _jsub(u: Jet, v: Jet) -> Jet:
    nd = max(u.v.ndim, v.v.ndim)
    u, v = u.expand(nd), v.expand(nd)
    return Jet(u.v - v.v, _difference(u.d, v.d), _difference(u.h, v.h), max(u.order, v.order))


def _jadd(u: Jet, v: Jet) -> Jet:
    nd = max(u.v.ndim, v.v.ndim)
    u, v = u.expand(nd), v.expand(nd)
    return Jet(u.v + v.v, _sum(u.d, v.d), _sum(u.h, v.h), max(u.order, v.order))


def linear(fn, u: Jet) -> Jet:
    """A linear map applied to value and derivatives (fn must accept leading axes)."""
    return Jet(fn(u.v), None if u.d is None else fn(u.d), None if u.h is None else fn(u.h), u.order)


def bilinear(fn, u: Jet, v: Jet) -> Jet:
    """A bilinear map (product, matrix product) with the product rule up to second order."""
    nd = max(u.v.ndim, v.v.ndim)
    u, v = u.expand(nd), v.expand(nd)
    order = max(u.order, v.order)
    value = fn(u.v, v.v)
    d = None
    if order >= 1:
        d = _sum_fresh(None if u.d is None else fn(u.d, v.v), None if v.d is None else fn(u.v, v.d))
    h = None
    if order >= 2:
        h = _sum_fresh(None if u.h is None else fn(u.h, v.v), None if v.h is None else fn(u.v, v.h))
        if u.d is not None and v.d is not None:
            cross = fn(u.d[:, None], v.d[None])
            transposed = np.swapaxes(cross, 0, 1)  # a view: never the accumulator
            h = cross + transposed if h is None else _accumulate(_accumulate(h, cross), transposed)
    return Jet(value, d, h, order)


def elementwise(u: Jet, f0, f1, f2) -> Jet:
    """f(u) for a scalar function with derivatives f1, f2 (chain rule to second order)."""
    value = f0(u.v)
    if u.d is None:
        return Jet(value, order=u.order)
    g1 = f1(u.v)
    d = g1 * u.d
    h = None
    if u.order >= 2:
        h = g1 * u.h if u.h is not None else 0.0
        h = h + f2(u.v) * u.d[:, None] * u.d[None]
    return Jet(value, d, h, u.order)


def reciprocal(u: Jet) -> Jet:
    return elementwise(u, lambda x: 1.0 / x, lambda x: -1.0 / x**2, lambda x: 2.0 / x**3)


def jsqrt(u: Jet) -> Jet:
    return elementwise(u, np.sqrt, lambda x: 0.5 / np.sqrt(x), lambda x: -0.25 / x**1.5)


def jlog1p(u: Jet) -> Jet:
    return elementwise(u, np.log1p, lambda x: 1.0 / (1.0 + x), lambda x: -1.0 / (1.0 + x) ** 2)


def jsolve(M: Jet, c: Jet) -> Jet:
    """x = M^-1 c for batched small matrices, with dx = M^-1 (dc - dM x)."""
    nd = max(M.v.ndim, c.v.ndim)
    M, c = M.expand(nd), c.expand(nd)
    inverse = np.linalg.inv(M.v)
    x = inverse @ c.v
    order = max(M.order, c.order)
    d = h = None
    if order >= 1:
        rhs = _sum(c.d, None if M.d is None else -(M.d @ x))
        d = None if rhs is None else inverse @ rhs
    if order >= 2:
        parts = [c.h, None if M.h is None else -(M.h @ x)]
        if M.d is not None and d is not None:
            t = M.d[:, None] @ d[None]
            parts.append(-(t + np.swapaxes(t, 0, 1)))
        rhs = _sum(*parts)
        h = None if rhs is None else inverse @ rhs
    return Jet(x, d, h, order)


def jlogdet(M: Jet) -> Jet:
    """sum over the batch of log|M_g|: d = tr(M^-1 dM), h = tr(M^-1 d2M) - tr(M^-1 dM M^-1 dM)."""
    sign, logdet = np.linalg.slogdet(M.v)
    if np.any(sign <= 0):
        raise np.linalg.LinAlgError("matrix not positive definite")
    value = logdet.sum()
    if M.order == 0 or M.d is None:
        return Jet(value, order=M.order)
    inverse = np.linalg.inv(M.v)
    P = inverse @ M.d  # k x G x q x q
    d = np.trace(P, axis1=-2, axis2=-1).sum(axis=-1)
    h = None
    if M.order >= 2:
        h = -np.einsum("agij,bgji->ab", P, P)
        if M.h is not None:
            h = h + np.trace(inverse @ M.h, axis1=-2, axis2=-1).sum(axis=-1)
    return Jet(value, d, h, M.order)


def parameter_jets(values: np.ndarray, order: int) -> list[Jet]:
    """The parameters themselves as jets (derivative: unit vectors)."""
    k = len(values)
    eye = np.eye(k)
    return [Jet(np.array([v]), eye[i][:, None] if order >= 1 else None, None, order)
            for i, v in enumerate(values)]


def concat_rows(a, b, shape_a, shape_b, lead: int, k: int):
    """Concatenate derivative arrays along the row axis (None = zeros)."""
    if a is None and b is None:
        return None
    a = np.zeros((k,) * lead + shape_a) if a is None else a
    b = np.zeros((k,) * lead + shape_b) if b is None else b
    return np.concatenate([a, b], axis=-2)
