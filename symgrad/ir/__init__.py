"""The bottom layer: the op table (every fact about an op), the IR, the expression parser and the size limits.

Nothing here imports sympy or any other layer of symgrad."""
