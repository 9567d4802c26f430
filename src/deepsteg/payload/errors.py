"""The payload layer's errors: one for packing, exactly three for extraction (all :class:`DeepstegError`)."""

from __future__ import annotations

from deepsteg.errors import DeepstegError


class PayloadError(DeepstegError):
    """Base class of every payload error (also raised for bad packing arguments, e.g. an empty passphrase)."""


class PayloadTooLarge(PayloadError):
    """The data does not fit in the cover at the chosen error correction; raised before anything is written."""

    def __init__(self, message: str, needed: int, available: int) -> None:
        super().__init__(message)
        self.needed = needed  #: payload bytes to hide (after compression)
        self.available = available  #: the most payload bytes this cover holds


class NoMessageFound(PayloadError):
    """No container header was found: nothing hidden, a wrong or missing passphrase, or a header beyond repair."""


class WrongPassphraseOrTampered(PayloadError):
    """A container was found and error-corrected, but it fails authentication or is inconsistent."""


class TooDamaged(PayloadError):
    """A container was found but some Reed–Solomon blocks have more byte errors than they can correct."""

    def __init__(self, errors: int, correctable: int, failed_blocks: int, blocks: int, per_block: int) -> None:
        self.errors = errors  #: byte errors in the message (a lower bound: failed blocks count as per_block + 1)
        self.correctable = correctable  #: byte errors the message's blocks could correct in all
        self.failed_blocks = failed_blocks
        self.blocks = blocks
        self.per_block = per_block  #: byte errors each block corrects
        super().__init__(
            f"the hidden message is too damaged to recover: {failed_blocks} of {blocks} error-correction blocks "
            f"have more than {per_block} byte errors each (at least {errors} byte errors in the message; "
            f"up to {per_block} per block, {correctable} in all, are correctable)"
        )
