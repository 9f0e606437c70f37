"""The one exception type the core raises for user mistakes; the CLI prints it as one line."""


class SeparateError(Exception):
    """A problem the user can fix (bad file, unknown model, bad option). Its message is shown as is."""
