"""Most exciting inputs (MEIs) by regularised gradient ascent, and what to compare them with.

:func:`optimize_meis` follows seed 002 (and Walker et al. 2019): starting from
noise, the image climbs the gradient of one model neuron's rate; each step

1. preconditions the gradient in the Fourier domain (amplitude scaled by
   ``1 / |f|^e``, so low spatial frequencies move first and the ascent does
   not fill the image with pixel noise; ``e`` anneals from
   ``precondition[0]`` to ``precondition[1]``);
2. takes a step of fixed length relative to the contrast budget;
3. blurs the image with a Gaussian whose sigma decays linearly from
   ``blur[0]`` to ``blur[1]`` pixels (coarse structure first, detail last);
4. projects onto the constraints: mean luminance ``mean``, L2 norm of the
   deviation from it at most ``norm`` (the seed's contrast term, as a hard
   constraint), pixels clipped to ``value_range``.

All neurons and all random starts go through the model as one batch; the best
start per neuron is kept.  :func:`optimize_meis_joblib` runs the same thing on
chunks of neurons in joblib workers (same starts, same result).

Comparisons (all numpy): :func:`fit_gabor` (best-fitting Gabor, least squares),
:func:`top_images_mean`, :func:`circular_mask` with :func:`masked_luminance`
and :func:`masked_contrast`, :func:`power_spectrum`, :func:`axial_average` and
:func:`symmetry_index` (n-fold), :func:`pixel_corr`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MEIConfig", "MEIResult", "optimize_meis", "optimize_meis_joblib", "fourier_precondition",
    "gaussian_blur", "pixel_corr", "fit_gabor", "GaborFit", "top_images_mean", "circular_mask",
    "masked_luminance", "masked_contrast", "power_spectrum", "axial_average", "symmetry_index",
    "energy_centre",
]


@dataclass
class MEIConfig:
    """Settings of the gradient ascent.

    Parameters
    ----------
    steps : int
        Gradient steps.
    lr : float
        Step length as a fraction of ``norm`` (steps are normalised per image).
    starts : int
        Random starts per neuron; the one with the highest final rate is kept.
    precondition : (float, float)
        Exponent of the 1/|f| gradient filter at the first and the last step
        (0 = plain gradient).  It anneals like the blur: a fixed filter would
        bias the optimum under the norm constraint towards a low-passed image,
        so by default the last steps climb the plain gradient.
    blur : (float, float)
        Gaussian blur sigma in pixels at the first and the last step.
    mean : float
        Mean luminance the image is held at.
    norm : float
        Largest L2 norm of ``image - mean`` (contrast budget).
    value_range : (float, float)
        Valid pixel range.
    init_std : float
        Pixel sd of the white-noise starts.
    jitter : int
        Each step shows the model the image shifted (circularly) by up to this many
        pixels in x and y, one random shift per step (Lucid/sinzlab ``jitter``): detail
        that excites the model only at one exact position gets no steady gradient.
    seed : int
        Starts of neuron ``i`` depend only on (seed, i), so chunked runs agree.
    """

    steps: int = 200
    lr: float = 0.1
    starts: int = 3
    precondition: tuple[float, float] = (1.0, 0.0)
    blur: tuple[float, float] = (2.0, 0.0)
    mean: float = 0.5
    norm: float = 6.4
    value_range: tuple[float, float] = (0.0, 1.0)
    init_std: float = 0.05
    jitter: int = 0
    seed: int = 0

    def validate(self) -> None:
        if int(self.steps) < 1 or int(self.starts) < 1:
            raise ValueError(f"MEI steps and starts must be >= 1, got {self.steps}, {self.starts}")
        if not self.lr > 0 or not self.norm > 0:
            raise ValueError(f"MEI lr and norm must be > 0, got {self.lr}, {self.norm}")
        lo, hi = self.value_range
        if not lo < self.mean < hi:
            raise ValueError(f"MEI mean {self.mean} must lie inside value_range {self.value_range}")
        if int(self.jitter) < 0:
            raise ValueError(f"MEI jitter must be >= 0, got {self.jitter}")
        if min(self.blur) < 0 or min(self.precondition) < 0:
            raise ValueError("MEI blur and precondition must be >= 0")


@dataclass
class MEIResult:
    """MEIs of several neurons.

    Attributes
    ----------
    neurons : ndarray (n,)
    images : ndarray (n, height, width)
        Best start per neuron.
    activation : ndarray (n,)
        Model rate of each neuron for its MEI.
    all_activations : ndarray (n, starts)
        Final rate of every start.
    trace : ndarray (steps, n)
        Rate of the best start along the ascent.
    """

    neurons: np.ndarray
    images: np.ndarray
    activation: np.ndarray
    all_activations: np.ndarray
    trace: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


# --------------------------------------------------------------------------- torch helpers


def fourier_precondition(grad, exponent: float = 1.0):
    """Scale the gradient's spectrum by 1/|f|^exponent (mean filter weight 1), per image."""
    import torch

    if exponent <= 0:
        return grad
    h, w = grad.shape[-2:]
    fy = torch.fft.fftfreq(h, device=grad.device)[:, None]
    fx = torch.fft.rfftfreq(w, device=grad.device)[None, :]
    f = torch.sqrt(fx**2 + fy**2).clamp_min(1.0 / max(h, w))
    filt = f ** (-exponent)
    filt = filt / filt.mean()
    return torch.fft.irfft2(torch.fft.rfft2(grad) * filt, s=(h, w))


def gaussian_blur(x, sigma: float):
    """Separable Gaussian blur of (batch, h, w) images with reflect padding; no-op below 0.1 px."""
    import torch
    import torch.nn.functional as F

    if sigma < 0.1:
        return x
    radius = max(1, int(np.ceil(3 * sigma)))
    radius = min(radius, min(x.shape[-2:]) - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    y = x.unsqueeze(1)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return y.squeeze(1)


def _project(x, cfg: MEIConfig):
    import torch

    x = x - x.mean(dim=(-2, -1), keepdim=True)
    n = x.flatten(1).norm(dim=1).clamp_min(1e-12)
    x = x * torch.clamp(cfg.norm / n, max=1.0)[:, None, None]
    return (x + cfg.mean).clamp(*cfg.value_range)


def _starts(neurons, shape, cfg: MEIConfig) -> np.ndarray:
    out = np.empty((len(neurons), cfg.starts, *shape), dtype=np.float32)
    for i, n in enumerate(neurons):
        rng = np.random.default_rng([cfg.seed, int(n)])
        out[i] = cfg.mean + cfg.init_std * rng.standard_normal((cfg.starts, *shape))
    return out


def optimize_meis(model, neurons, shape: tuple[int, int], config: MEIConfig | None = None,
                  reporter=None, device=None) -> MEIResult:
    """MEIs of ``neurons`` (indices into the model's outputs), all as one batch.

    ``model(images (B, h, w)) -> rates (B, n_neurons)``; it is put in eval mode
    and its parameters are not changed.
    """
    import torch

    cfg = config or MEIConfig()
    cfg.validate()
    neurons = np.asarray(neurons, dtype=int).ravel()
    if neurons.size == 0:
        raise ValueError("no neurons to optimise")
    h, w = shape
    dev = device or next(model.parameters()).device
    model.eval()
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    n, s = len(neurons), cfg.starts
    x = torch.as_tensor(_starts(neurons, (h, w), cfg).reshape(n * s, h, w), device=dev)
    x = _project(x, cfg)
    target = torch.as_tensor(np.repeat(neurons, s), device=dev)
    rows = torch.arange(n * s, device=dev)
    trace = np.zeros((cfg.steps, n * s), dtype=np.float32)
    shifts = np.random.default_rng([cfg.seed, 1]).integers(-cfg.jitter, cfg.jitter + 1, size=(cfg.steps, 2))
    try:
        for step in range(cfg.steps):
            if reporter is not None:
                if reporter.cancelled:
                    from engine.reporting import Cancelled

                    raise Cancelled("MEI optimisation cancelled")
                if step % 20 == 0:
                    reporter.progress(step, cfg.steps, "MEI gradient ascent")
            x = x.detach().requires_grad_(True)
            dy, dx = (int(v) for v in shifts[step])
            act = model(torch.roll(x, (dy, dx), dims=(-2, -1)) if dy or dx else x)[rows, target]
            (grad,) = torch.autograd.grad(act.sum(), x)
            trace[step] = act.detach().cpu().numpy()
            frac = step / max(1, cfg.steps - 1)
            pre = cfg.precondition[0] + (cfg.precondition[1] - cfg.precondition[0]) * frac
            g = fourier_precondition(grad, pre)
            g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
            x = x.detach() + cfg.lr * cfg.norm * g
            x = gaussian_blur(x, cfg.blur[0] + (cfg.blur[1] - cfg.blur[0]) * frac)
            x = _project(x, cfg)
        with torch.no_grad():
            final = model(x)[rows, target].cpu().numpy().reshape(n, s)
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
    best = final.argmax(axis=1)
    images = x.detach().cpu().numpy().reshape(n, s, h, w)[np.arange(n), best]
    trace = trace.reshape(cfg.steps, n, s)[:, np.arange(n), best]
    return MEIResult(neurons=neurons, images=images, activation=final[np.arange(n), best],
                     all_activations=final, trace=trace)


def _chunk_worker(model, neurons, shape, cfg):
    import torch

    torch.set_num_threads(1)  # one thread per worker: the workers are the parallelism
    return optimize_meis(model, neurons, shape, cfg, device=torch.device("cpu"))


def optimize_meis_joblib(model, neurons, shape: tuple[int, int], config: MEIConfig | None = None,
                         chunk_size: int = 16, n_jobs: int = 2, backend: str | None = None) -> MEIResult:
    """:func:`optimize_meis` over chunks of neurons in joblib workers (CPU), same result.

    The chunks go through :func:`engine.parallel.pmap`: loky processes here, or the
    session's dask/ray cluster; ``backend`` forces one for this call."""
    from engine.parallel import pmap

    cfg = config or MEIConfig()
    neurons = np.asarray(neurons, dtype=int).ravel()
    model = model.cpu().eval()
    chunks = [neurons[i:i + chunk_size] for i in range(0, len(neurons), chunk_size)]
    parts = pmap(lambda c: _chunk_worker(model, c, shape, cfg), chunks, n_jobs=n_jobs, backend=backend,
                 message="MEIs")
    return MEIResult(
        neurons=np.concatenate([p.neurons for p in parts]),
        images=np.concatenate([p.images for p in parts]),
        activation=np.concatenate([p.activation for p in parts]),
        all_activations=np.concatenate([p.all_activations for p in parts]),
        trace=np.concatenate([p.trace for p in parts], axis=1),
    )


# --------------------------------------------------------------------------- comparisons


def pixel_corr(a, b) -> float:
    """Pearson correlation of two images' pixels (NaN if either is constant)."""
    a = np.asarray(a, float).ravel()
    b = np.asarray(b, float).ravel()
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else float("nan")


def top_images_mean(images: np.ndarray, responses: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the ``k`` images with the highest response, and their indices (best first)."""
    responses = np.asarray(responses, float)
    if len(images) != len(responses):
        raise ValueError(f"{len(images)} images but {len(responses)} responses")
    idx = np.argsort(responses)[::-1][:k]
    return np.asarray(images)[idx].mean(axis=0), idx


def energy_centre(img: np.ndarray, mean: float | None = None) -> tuple[float, float]:
    """(x, y) centre of mass of the squared deviation from ``mean`` (default: the image mean)."""
    img = np.asarray(img, float)
    e = (img - (img.mean() if mean is None else mean)) ** 2
    tot = e.sum()
    if tot <= 0:
        return ((img.shape[1] - 1) / 2, (img.shape[0] - 1) / 2)
    y, x = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    return float((x * e).sum() / tot), float((y * e).sum() / tot)


def circular_mask(h: int, w: int, center: tuple[float, float] | None = None, radius: float | None = None) -> np.ndarray:
    """Boolean disc of ``radius`` pixels around ``center`` = (x, y) (default: image centre, h/4)."""
    cx, cy = center if center is not None else ((w - 1) / 2, (h - 1) / 2)
    r = radius if radius is not None else min(h, w) / 4
    y, x = np.ogrid[:h, :w]
    return (x - cx) ** 2 + (y - cy) ** 2 <= r**2


def masked_luminance(img: np.ndarray, mask: np.ndarray) -> float:
    """Mean pixel value inside the mask."""
    return float(np.asarray(img, float)[mask].mean())


def masked_contrast(img: np.ndarray, mask: np.ndarray) -> float:
    """Pixel standard deviation inside the mask (RMS contrast)."""
    return float(np.asarray(img, float)[mask].std())


def power_spectrum(img: np.ndarray) -> np.ndarray:
    """Centred (fftshift) power spectrum of the mean-subtracted image."""
    img = np.asarray(img, float)
    return np.abs(np.fft.fftshift(np.fft.fft2(img - img.mean()))) ** 2


def axial_average(power: np.ndarray, n_bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Power averaged in ``n_bins`` angle bins over [-pi, pi) around the spectrum's centre.

    Returns (mean power per bin, bin centre angles); the DC pixel is left out.
    """
    h, w = power.shape
    y, x = np.indices((h, w))
    theta = np.arctan2(y - h // 2, x - w // 2)
    keep = (y != h // 2) | (x != w // 2)
    bins = np.minimum(((theta + np.pi) / (2 * np.pi) * n_bins).astype(int), n_bins - 1)
    s = np.bincount(bins[keep], weights=power[keep], minlength=n_bins)
    c = np.bincount(bins[keep], minlength=n_bins)
    centres = -np.pi + (np.arange(n_bins) + 0.5) * 2 * np.pi / n_bins
    return s / np.maximum(c, 1), centres


def symmetry_index(img: np.ndarray, n: int, n_bins: int = 32) -> float:
    """n-fold symmetry index of the image's power spectrum (seed 002).

    ``|sum P(theta) exp(i 2 n theta)| / sum P(theta)`` over angle bins: 1 when all
    power lies along one orientation (a grating, a Gabor), near 0 for isotropic
    power.  The seed's bins run over the full circle; so do these.
    """
    p, theta = axial_average(power_spectrum(img), n_bins)
    tot = p.sum()
    return float(np.abs((p * np.exp(1j * 2 * n * theta)).sum()) / tot) if tot > 0 else float("nan")


@dataclass
class GaborFit:
    """Best-fitting Gabor: parameters (pixels, radians), the fitted image and R² of the fit."""

    x0: float
    y0: float
    theta: float
    wavelength: float
    phase: float
    sigma: float
    amplitude: float
    offset: float
    r2: float
    image: np.ndarray

    def params(self) -> dict:
        return {k: float(getattr(self, k)) for k in
                ("x0", "y0", "theta", "wavelength", "phase", "sigma", "amplitude", "offset", "r2")}


def _gabor_model(p, y, x):
    x0, y0, theta, lam, phase, sigma, amp, off = p
    xr = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
    yr = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
    return off + amp * np.exp(-(xr**2 + yr**2) / (2 * sigma**2)) * np.cos(2 * np.pi * xr / lam + phase)


def fit_gabor(img: np.ndarray) -> GaborFit:
    """Least-squares Gabor fit: coarse grid (phase solved linearly), then ``least_squares``.

    The centre starts at the image's energy centre; orientation, wavelength and
    width come from a grid; everything is refined jointly.
    """
    from scipy.optimize import least_squares

    img = np.asarray(img, float)
    if img.ndim != 2 or min(img.shape) < 4 or not np.all(np.isfinite(img)):
        raise ValueError(f"fit_gabor needs a finite 2-D image of at least 4x4, got shape {img.shape}")
    h, w = img.shape
    y, x = np.mgrid[0:h, 0:w].astype(float)
    off0 = float(np.median(img))
    d = (img - off0).ravel()
    x0, y0 = energy_centre(img, off0)
    best: tuple[float, list[float] | None] = (np.inf, None)
    s = min(h, w)
    for lam in np.geomspace(s / 10, s, 10):
        for sig in (0.2 * lam, 0.35 * lam, 0.5 * lam):
            for theta in np.linspace(0, np.pi, 12, endpoint=False):
                xr = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
                yr = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
                env = np.exp(-(xr**2 + yr**2) / (2 * sig**2))
                basis = np.stack([(env * np.cos(2 * np.pi * xr / lam)).ravel(), (env * np.sin(2 * np.pi * xr / lam)).ravel()], 1)
                coef, *_ = np.linalg.lstsq(basis, d, rcond=None)
                err = ((basis @ coef - d) ** 2).sum()
                if err < best[0]:
                    a, b = coef
                    best = (err, [x0, y0, theta, lam, np.arctan2(-b, a), sig, np.hypot(a, b), off0])
    p0 = np.array(best[1])
    lo = [-0.5, -0.5, -np.inf, 2.0, -np.inf, 0.5, 0.0, -np.inf]
    hi = [w - 0.5, h - 0.5, np.inf, 4.0 * s, np.inf, s, np.inf, np.inf]
    p0 = np.clip(p0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    res = least_squares(lambda p: (_gabor_model(p, y, x) - img).ravel(), p0, bounds=(lo, hi), max_nfev=400)
    fitted = _gabor_model(res.x, y, x)
    ss = ((img - img.mean()) ** 2).sum()
    r2 = 1 - ((fitted - img) ** 2).sum() / ss if ss > 0 else float("nan")
    x0, y0, theta, lam, phase, sigma, amp, off = res.x
    theta = np.mod(theta, 2 * np.pi)
    if theta >= np.pi:  # the same Gabor with theta - pi and the phase mirrored
        theta, phase = theta - np.pi, -phase
    return GaborFit(x0=x0, y0=y0, theta=float(theta), wavelength=lam,
                    phase=float(np.mod(phase, 2 * np.pi)), sigma=sigma, amplitude=amp, offset=off,
                    r2=float(r2), image=fitted)
