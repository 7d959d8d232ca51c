"""Torch devices: ``"auto"`` resolved, and a device this machine lacks named early.

One home for the featurizer's ``device`` and the torch solver's. torch is
imported on first use only, so importing this module stays cheap.
"""

__all__ = ["DeviceUnavailableError", "device_problem", "resolve_device"]


class DeviceUnavailableError(RuntimeError):
    """A valid torch device that this machine does not have.

    Parameters
    ----------
    device : str or torch.device
        The device asked for.
    problem : str
        What is missing (see :func:`device_problem`).
    """

    def __init__(self, device, problem):
        super().__init__(f"device={device!r}: {problem}; use 'cpu' or 'auto'")
        self.device, self.problem = device, problem


def device_problem(device):
    """Why torch device ``device`` is not on this machine, or None if it is.

    Parameters
    ----------
    device : torch.device
        A parsed device.

    Returns
    -------
    problem : str or None
        What is missing (no CUDA, an index past the last GPU, no MPS).

    Examples
    --------
    >>> import torch
    >>> from skhead2toe._device import device_problem
    >>> device_problem(torch.device("cpu")) is None
    True
    """
    import torch

    if device.type == "cuda":
        if not torch.cuda.is_available():
            return (
                "CUDA is not available on this machine "
                "(torch.cuda.is_available() is False)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            if count == 1:
                return "this machine has 1 CUDA device (cuda:0)"
            return f"this machine has {count} CUDA devices (cuda:0 to cuda:{count - 1})"
    elif device.type == "mps" and not torch.backends.mps.is_available():
        return "MPS is not available on this machine"
    return None


def resolve_device(device):
    """The torch device of ``device``, checked to exist on this machine.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else the CPU) or any torch device.

    Returns
    -------
    device : torch.device
        The device to run on.

    Raises
    ------
    ValueError
        When ``device`` is not a torch device name.
    DeviceUnavailableError
        A RuntimeError: this machine lacks it (see :func:`device_problem`); raised
        before any work is moved there.

    Examples
    --------
    >>> from skhead2toe._device import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' "
            "or 'cuda:<index>'"
        ) from exc
    problem = device_problem(resolved)
    if problem is not None:
        raise DeviceUnavailableError(device, problem)
    return resolved
