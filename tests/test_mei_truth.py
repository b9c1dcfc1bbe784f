"""mei truth: stimuli judged by the generator's neuron at equal contrast (known answers)."""

import numpy as np
import pytest
import torch

from engine.analyses.mei.truth import compare_one, contrast_match, true_response
from engine.data.allen import SyntheticV1Config, gabor


def _rf(size=16):
    g = gabor(size, 7.5, 7.5, 0.3, 6.0, 0.4, 2.5)
    return g / np.linalg.norm(g)


def test_contrast_match():
    rng = np.random.default_rng(0)
    x = rng.random((16, 16))
    y = contrast_match(x, 0.4, 2.0)
    assert y.mean() == pytest.approx(0.4) and np.linalg.norm(y - y.mean()) == pytest.approx(2.0)
    assert np.corrcoef(x.ravel(), y.ravel())[0, 1] == pytest.approx(1.0)


def test_the_receptive_field_is_the_optimum_at_equal_contrast():
    cfg, rf = SyntheticV1Config(), _rf()
    rng = np.random.default_rng(1)
    images = rng.random((20, 16, 16))
    opt = contrast_match(rf, 0.5, 3.0)
    r = compare_one(opt, opt, images, rf, 1.0, 0.5, cfg)
    assert r["mei_vs_optimum"] == pytest.approx(1.0) and r["gabor_vs_optimum"] == pytest.approx(1.0)
    assert r["best_natural_vs_optimum"] < 1.0
    # half the drive direction: less than the optimum; the opposite sign: near the floor
    mixed = contrast_match(rf + contrast_match(rng.normal(size=rf.shape), 0, 1.0), 0.5, 3.0)
    assert compare_one(mixed, opt, images, rf, 1.0, 0.5, cfg)["mei_vs_optimum"] < 0.95
    anti = contrast_match(-rf, 0.5, 3.0)
    assert true_response(anti, rf, 1.0, 0.5, cfg)[0] < 0.2 * true_response(opt, rf, 1.0, 0.5, cfg)[0]


def test_test_images_are_apart_from_training_and_validation():
    from engine.analyses.mei.steps import _split

    tr, va, te = _split(118, 0.2, 0, 0.15)
    assert len(va) == 24 and len(te) == 18 and len(tr) == 76
    assert not (set(tr) & set(va)) and not (set(tr) & set(te)) and not (set(va) & set(te))
    assert _split(118, 0.2, 0, 0.0)[2].size == 0 and np.array_equal(_split(118, 0.2, 0)[1], va)
    with pytest.raises(ValueError, match="fractions"):
        _split(10, 0.5, 0, 0.6)


def test_in_range_optimum_is_the_best_displayable_image():
    from engine.analyses.mei.truth import contrast_match_in_range
    from engine.mei import MEIConfig, optimize_meis

    cfg, rf = SyntheticV1Config(), _rf()
    # low contrast: the scaled RF fits in [0, 1] and is the optimum
    np.testing.assert_allclose(contrast_match_in_range(rf, 0.5, 1.0), contrast_match(rf, 0.5, 1.0), atol=1e-8)
    # natural-image contrast: the scaled RF leaves [0, 1]; the in-range optimum keeps mean and contrast
    c = 4.0
    assert contrast_match(rf, 0.5, c).max() > 1.0
    opt = contrast_match_in_range(rf, 0.5, c)
    assert opt.min() >= 0.0 and opt.max() <= 1.0 and opt.mean() == pytest.approx(0.5)
    assert np.linalg.norm(opt - opt.mean()) == pytest.approx(c)
    drive = lambda img: float(((img - img.mean()) * rf).sum())  # noqa: E731
    assert drive(opt) < drive(contrast_match(rf, 0.5, c))  # below the unreachable one
    clipped = np.clip(contrast_match(rf, 0.5, c), 0, 1)
    assert drive(opt) > drive(contrast_match(clipped, 0.5, min(c, np.linalg.norm(clipped - clipped.mean()))))
    # a long gradient ascent on the linear neuron under the same constraints gets no further

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.as_tensor(rf, dtype=torch.float32)[None])

        def forward(self, x):
            return torch.einsum("bhw,nhw->bn", x - 0.5, self.w)

    mei = optimize_meis(Linear(), [0], rf.shape, MEIConfig(steps=300, starts=1, norm=c, blur=(0.0, 0.0))).images[0]
    ref = contrast_match_in_range(rf, float(mei.mean()), float(np.linalg.norm(mei - mei.mean())))
    assert drive(mei) <= drive(ref) + 1e-4 and drive(mei) > 0.97 * drive(ref)
    # a stack is matched image by image, each in range at the mean and contrast asked for
    stack = contrast_match_in_range(np.stack([rf, -rf, np.random.default_rng(2).random(rf.shape)]), 0.5, c)
    np.testing.assert_allclose(stack[0], opt, atol=1e-9)
    assert stack.min() >= 0 and stack.max() <= 1 and np.allclose(stack.mean((1, 2)), 0.5)
    np.testing.assert_allclose(np.linalg.norm((stack - 0.5).reshape(3, -1), axis=1), c, rtol=1e-6)
    r = compare_one(opt, opt, np.random.default_rng(0).random((5, 16, 16)), rf, 1.0, 0.5, cfg)
    assert r["mei_vs_in_range_optimum"] == pytest.approx(1.0, abs=1e-6) and r["mei_vs_optimum"] < 1.0
