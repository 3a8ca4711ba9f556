"""Tollgate's Python policy SDK; everything public lives in :mod:`sdk.policy`.

``from sdk import Policy`` and ``from sdk.policy import Policy`` are the same: this package
re-exports exactly the names of ``sdk.policy.__all__``.
"""

from sdk.policy import *  # noqa: F403 -- the one list of public names is sdk.policy.__all__
from sdk.policy import __all__ as __all__
