import numpy as np
import pytest

from pixelar import load_dataset
from pixelar.fidelity import class_fidelity, load_classifier, save_classifier, train_classifier
from helpers import tiny

pytestmark = pytest.mark.slow  # trains models or a classifier


@pytest.fixture(scope="module")
def judge():
    return train_classifier(load_dataset("mnist-5k"), epochs=3)


def test_the_judge_reads_real_held_out_digits(judge, tmp_path):
    assert judge.metadata["held_out_accuracy"] > 0.85 and judge.metadata["held_out_images"] == 500
    again = load_classifier(save_classifier(judge, tmp_path / "judge.safetensors"))
    images = load_dataset("mnist-5k").held_out.subset(50)
    assert np.array_equal(again.predict(images.images.float().numpy() / 255), judge.predict(images.images.float().numpy() / 255))


def test_fidelity_scores_every_class_at_every_temperature(judge):
    result = class_fidelity(tiny("v3"), judge, temperatures=(0.5, 1.0), per_class=2)
    assert set(result.overall) == {0.5, 1.0}
    assert all(len(result.per_class[t]) == 10 and 0 <= result.overall[t] <= 1 for t in (0.5, 1.0))
    assert np.isclose(result.overall[1.0], np.mean(result.per_class[1.0]))
    assert "all" in result.table([str(d) for d in range(10)])


def test_fidelity_needs_a_conditional_model(judge):
    with pytest.raises(ValueError, match="class-conditional"):
        class_fidelity(tiny("v2"), judge)
