"""The one exception type medft raises for bad input: the CLI prints it on one line."""


class MedftError(Exception):
    """A user-facing error: what is wrong and where, without a traceback."""


def unknown_name(kind: str, name: str, valid: list[str] | tuple[str, ...]) -> MedftError:
    """Error for a name not among ``valid``, listing the valid names."""
    return MedftError(f"unknown {kind} {name!r}; valid: {', '.join(valid)}")
