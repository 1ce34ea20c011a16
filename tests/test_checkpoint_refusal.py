"""A checkpoint holding arbitrary Python objects is refused without advising the unsafe way round."""

from __future__ import annotations

import os

import pytest
import torch

from ferxai.models import CheckpointError, load_checkpoint, load_user_checkpoint


class RunsACommand:
    """Unpickling this calls os.system: what a hostile checkpoint would do."""

    def __reduce__(self):
        return (os.system, ("echo unpickled > /dev/null",))


class PlainObject:
    def __init__(self):
        self.note = "not a tensor"


@pytest.mark.parametrize("payload, refused", [
    (RunsACommand(), "system"),  # a module torch blocks outright (os/posix)
    (PlainObject(), "PlainObject"),
], ids=["blocked-module", "unlisted-class"])
def test_refused_pickle_names_the_file_and_never_suggests_weights_only_false(tmp_path, payload, refused):
    path = tmp_path / "model_from_the_internet.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "meta": {"arch": "fer_cnn", "extra": payload}}, path)
    for load in (lambda: load_checkpoint(path), lambda: load_user_checkpoint(path, "fer_cnn", ["a", "b"], 1, 32)):
        with pytest.raises(CheckpointError) as info:
            load()
        message = str(info.value)
        assert str(path) in message and refused in message
        assert "pickled Python objects" in message and "state_dict()" in message
        # torch's own text advises retrying with weights_only=False; ours must not pass that on.
        for unsafe in ("weights_only=False", "weights_only", "set to `False`", "Re-running"):
            assert unsafe not in message
