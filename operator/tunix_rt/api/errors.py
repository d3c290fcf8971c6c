"""The one error for a manifest or spec that cannot run, whoever finds out (the file
reader, the CLI, the RayJob builder, the driver decoding its ``--spec-b64``)."""

from __future__ import annotations

from collections.abc import Sequence


class ManifestError(ValueError):
    """A manifest or spec that cannot run; each problem names its field (wire form).

    ``ManifestError("spec.cluster.pools[0].cpu", "…")`` for one field (the RayJob builder);
    ``ManifestError.of(source, [(field, message), …])`` for a file or flag with several.
    ``errors`` always holds the ``(field, message)`` pairs; ``field`` / ``reason`` the first.
    """

    def __init__(
        self,
        field: str,
        message: str,
        *,
        source: str | None = None,
        errors: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self.source = source
        self.errors: list[tuple[str, str]] = list(errors) if errors else [(field, message)]
        self.field, self.reason = self.errors[0]
        if source is not None:
            lines = "\n".join(f"  {p}: {m}" if p else f"  {m}" for p, m in self.errors)
            text = f"{source}: invalid\n{lines}"
        else:
            text = f"{field}: {message}" if field else message
        super().__init__(text)

    @classmethod
    def of(cls, source: str, errors: Sequence[tuple[str, str]]) -> ManifestError:
        """Every problem found in one file (or flag) ``source``."""
        field, message = errors[0] if errors else ("", "invalid")
        return cls(field, message, source=source, errors=errors or [(field, message)])
