"""One cache for botocore's data files in a stack's process.

A stack makes a dozen botocore sessions (the gateway's, moto's, the engines' own with their own parsers), and
each session's loader would read and keep its own copy of the same service models: ~50 MB and a second of
JSON parsing, read again for nothing. Loaders that read botocore's own files (the default search paths, whose
contents are the same for every loader) keep what they read in one cache instead. Installed first thing by
the stack's server and by the classroom's zygote, before any session is made.
"""

from __future__ import annotations

from botocore import loaders

_shared: dict = {}


def share_loaded_data() -> None:
    if getattr(loaders.Loader.__init__, "shares_loaded_data", False):
        return
    default_paths = list(loaders.Loader().search_paths)
    made_alone = loaders.Loader.__init__

    def made_sharing(loader, *args, **kwargs):
        made_alone(loader, *args, **kwargs)
        if list(loader.search_paths) == default_paths:
            loader._cache = _shared

    made_sharing.shares_loaded_data = True
    loaders.Loader.__init__ = made_sharing
