"""The masking base (encoder -> masker -> decoder) of Conv-TasNet, TasNet/LTL, dual-path models, TDANet."""

from __future__ import annotations

import pytest
import torch

from separate import models
from separate.errors import SeparateError
from separate.models.masking import MaskingSeparator

MASKING = ["convtasnet", "tasnet", "ltl", "dprnn", "dptnet", "galr", "tdanet"]


@pytest.mark.parametrize("name", MASKING)
def test_masking_architectures_share_the_base(name: str) -> None:
    assert issubclass(models.ARCHITECTURES[name], MaskingSeparator)


def test_masking_models_refuse_stereo_with_one_line() -> None:
    model = models.build(
        "convtasnet",
        n_filters=8,
        kernel_size=8,
        stride=4,
        bottleneck=4,
        hidden=8,
        skip=4,
        blocks=1,
        repeats=1,
    )
    with pytest.raises(SeparateError, match="ConvTasNet takes mono audio"):
        model(torch.zeros(1, 2, 64))
