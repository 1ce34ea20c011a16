"""The error a method's configuration raises, importable without torch (config validation uses it).

The checks themselves are `ferxai.explain.catalog.check_params`.
"""

from __future__ import annotations


class ExplainerConfigError(ValueError):
    """Unknown method or bad parameter; the message names the method and the parameter.

    `method` and `param` say which, where known, so config validation can name the config key
    (``explain.methods.<label>.<param>``).
    """

    def __init__(self, message: str, *, method: str | None = None, param: str | None = None):
        super().__init__(message)
        self.method, self.param = method, param
