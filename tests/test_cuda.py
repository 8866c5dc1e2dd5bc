"""The same promises on a CUDA GPU, where there is one: training and sampling in bf16, merged requests exact."""
import numpy as np
import pytest
import torch

import pixelar
from pixelar.sampling import Request, sample_many

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


@pytest.mark.parametrize("kind", ["v3", "v4"])
def test_training_and_sampling_on_cuda_in_auto_precision(kind):
    data = pixelar.load_dataset("mnist-5k")
    small = {"hidden": 64} if kind == "v3" else {"channels": 16, "layers": 2}
    model = pixelar.build_model(kind, **small)
    config = pixelar.TrainConfig(steps=30, batch_size=64 if kind == "v3" else 8, eval_every=0, eval_images=10, device="cuda")
    result = pixelar.train(model, data, config)
    assert result.device.startswith("cuda") and result.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert result.held_out_nll < 4.0
    trace = pixelar.sample(model, 4, labels=[1, 2, 3, 4], seed=0)
    assert trace.tokens.shape == (4, 784)
    merged = sample_many(model, [Request.of(model, n=3, seed=1), Request.of(model, n=2, seed=2, temperature=0.8)])
    alone = pixelar.sample(model, 2, seed=2, temperature=0.8)
    assert np.array_equal(merged[1].tokens, alone.tokens)
