"""MEI gradient ascent on a model with known receptive fields; comparisons; PNG."""

import struct
import zlib

import numpy as np
import pytest
import torch

from engine.data.allen import gabor, one_over_f_images
from engine.mei import (MEIConfig, axial_average, circular_mask, fit_gabor, fourier_precondition, gaussian_blur,
                        masked_contrast, masked_luminance, optimize_meis, optimize_meis_joblib, pixel_corr,
                        power_spectrum, symmetry_index, top_images_mean)
from engine.png import encode_gray, tile

S = 16


class LN(torch.nn.Module):
    """Linear-nonlinear neurons: rate = softplus(<rf, x - 0.5>); the MEI under a norm budget is the RF."""

    def __init__(self, rfs):
        super().__init__()
        self.w = torch.nn.Parameter(torch.as_tensor(rfs, dtype=torch.float32))

    def forward(self, x):
        return torch.nn.functional.softplus(torch.einsum("bhw,nhw->bn", x - 0.5, self.w))


def _rfs():
    rfs = np.stack([gabor(S, 7 + dx, 8, th, 8.0, ph, 2.5) for dx, th, ph in
                    [(0, 0.3, 0.0), (1, 1.2, 1.0), (-1, 2.0, 2.0), (0.5, 2.8, 4.0)]])
    return rfs / np.linalg.norm(rfs.reshape(4, -1), axis=1)[:, None, None]


def test_mei_recovers_receptive_fields_and_beats_images():
    rfs = _rfs()
    model = LN(rfs)
    imgs = one_over_f_images(100, S, np.random.default_rng(0))
    norm = float(np.linalg.norm((imgs - imgs.mean((1, 2), keepdims=True)).reshape(100, -1), axis=1).mean())
    cfg = MEIConfig(steps=60, starts=2, norm=norm, blur=(1.0, 0.0))
    res = optimize_meis(model, [0, 1, 2, 3], (S, S), cfg)
    corr = [pixel_corr(res.images[i], rfs[i]) for i in range(4)]
    assert min(corr) > 0.9, corr
    with torch.no_grad():
        nat = model(torch.as_tensor(imgs)).numpy()
    best_image = nat.max(0)
    assert np.all(res.activation > best_image)
    # constraints hold: range, mean, contrast budget
    assert res.images.min() >= 0 and res.images.max() <= 1
    dev = res.images - res.images.mean((1, 2), keepdims=True)
    assert np.all(np.linalg.norm(dev.reshape(4, -1), axis=1) <= norm + 1e-4)
    assert res.trace.shape == (60, 4) and res.trace[-1].mean() > res.trace[0].mean()
    assert all(p.requires_grad for p in model.parameters())  # left as found
    # the top natural image correlates with the RF far less than the MEI does
    top, _ = top_images_mean(imgs, nat[:, 0], 1)
    assert pixel_corr(top, rfs[0]) < corr[0] - 0.3


def test_joblib_chunks_give_the_same_meis():
    model = LN(_rfs())
    cfg = MEIConfig(steps=15, starts=2, norm=3.0)
    a = optimize_meis(model, [0, 1, 2, 3], (S, S), cfg)
    b = optimize_meis_joblib(model, [0, 1, 2, 3], (S, S), cfg, chunk_size=2, n_jobs=2)
    np.testing.assert_allclose(a.images, b.images, atol=1e-5)
    np.testing.assert_array_equal(a.neurons, b.neurons)


def test_preconditioning_and_blur():
    g = torch.randn(3, S, S)
    lowpass = fourier_precondition(g, 1.0)
    p_in, p_out = (np.abs(np.fft.rfft2(t.numpy())) ** 2 for t in (g, lowpass))
    assert p_out[:, :2, :2].sum() / p_out.sum() > p_in[:, :2, :2].sum() / p_in.sum()
    assert torch.equal(fourier_precondition(g, 0.0), g)
    b = gaussian_blur(g, 1.5)
    assert b.shape == g.shape and b.std() < g.std() and torch.equal(gaussian_blur(g, 0.0), g)
    with pytest.raises(ValueError, match="mean"):
        MEIConfig(mean=2.0).validate()
    with pytest.raises(ValueError, match="no neurons"):
        optimize_meis(LN(_rfs()), [], (S, S))


def test_gabor_fit_and_image_statistics():
    true = 0.5 + 0.3 * gabor(24, 10.0, 13.0, 0.7, 7.0, 1.0, 3.0)
    noisy = true + np.random.default_rng(0).normal(0, 0.02, true.shape)
    fit = fit_gabor(noisy)
    assert fit.r2 > 0.7 and abs(fit.x0 - 10) < 0.5 and abs(fit.y0 - 13) < 0.5
    assert abs(fit.wavelength - 7) < 0.5 and abs(((fit.theta - 0.7) + np.pi / 2) % np.pi - np.pi / 2) < 0.1
    assert pixel_corr(fit.image, true) > 0.98
    grating = np.cos(2 * np.pi * np.arange(32) / 8)[None, :].repeat(32, 0)
    noise = np.random.default_rng(1).normal(size=(32, 32))
    assert symmetry_index(grating, 1) > 0.95 and symmetry_index(noise, 1) < 0.3
    p, theta = axial_average(power_spectrum(grating))
    assert abs(abs(theta[np.argmax(p)]) - np.pi) < 0.2 or abs(theta[np.argmax(p)]) < 0.2  # horizontal frequency
    m = circular_mask(24, 24, (10, 13), 5)
    assert m.sum() == pytest.approx(np.pi * 25, rel=0.1) and m[13, 10]
    assert masked_luminance(true, m) == pytest.approx(true[m].mean())
    assert masked_contrast(true, m) > masked_contrast(true, ~m)
    with pytest.raises(ValueError, match="2-D"):
        fit_gabor(np.zeros(5))


def _decode_png(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    w, h = struct.unpack(">II", chunks[b"IHDR"][:8])
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, w + 1)
    return raw[:, 1:]


def test_png_roundtrip():
    img = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7)
    np.testing.assert_array_equal(_decode_png(encode_gray(img)), img)
    grid = tile(np.random.default_rng(0).random((5, 4, 4)), cols=3)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1) and grid.dtype == np.uint8
    with pytest.raises(ValueError, match="2-D"):
        encode_gray(np.zeros((2, 2, 2)))


class _PixelPair(torch.nn.Module):
    """A detector of one exact 1-pixel edge at (8, 8)|(8, 9): detail that no shift keeps."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return (x[:, 8, 8] - x[:, 8, 9])[:, None] + 0 * self.dummy


def test_jitter_keeps_shift_robust_features_and_starves_pixel_exact_ones():
    cfg = dict(steps=60, starts=1, norm=3.0, blur=(0.0, 0.0))
    exact = optimize_meis(_PixelPair(), [0], (S, S), MEIConfig(**cfg)).activation[0]
    jittered = optimize_meis(_PixelPair(), [0], (S, S), MEIConfig(**cfg, jitter=3)).activation[0]
    assert exact > 0.9 and jittered < 0.6 * exact
    rfs = _rfs()  # Gabors of wavelength 8: a 1-pixel shift barely changes them
    res = optimize_meis(LN(rfs), [0, 1, 2, 3], (S, S), MEIConfig(**cfg, jitter=1))
    assert min(pixel_corr(res.images[i], rfs[i]) for i in range(4)) > 0.9
    with pytest.raises(ValueError, match="jitter"):
        MEIConfig(jitter=-1).validate()
