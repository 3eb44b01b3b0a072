"""One error type the CLI turns into a single stderr line; subclasses say which fix applies."""


class RagError(Exception):
    """A problem the user can fix; the message is one line and names the fix."""


class InputError(RagError):
    """Bad input from the user: empty question, missing path, a file that is not text."""


class ModelError(RagError):
    """A model file is missing, corrupt or cannot be loaded."""


class StoreError(RagError):
    """The store is missing, not yet ingested, or busy with another writer."""
