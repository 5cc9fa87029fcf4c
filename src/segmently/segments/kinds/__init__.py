"""The condition kinds, one module per kind or per family of kinds.

Every module here whose name does not start with an underscore is imported by
`registry.kinds()`, and registers its kinds with `registry.register` when imported: a
model (derived from `conditions.Condition`), a lowering `(lowerer, condition) -> Node`
(lower.py calls it), the docs/rules.md row, builder hints and an example. Adding a kind is
adding a module here (and its tests); nothing else lists kinds.
"""
