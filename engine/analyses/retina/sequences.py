"""Training sequences and model runs of the retina analysis, never across a recording block.

A *segment* is a ``(start, stop)`` frame range inside one recording block (see
:func:`engine.data.retina_blocks.block_segments`).  :class:`Sequences` draws every training
sequence -- its frame history included -- from inside one segment, and :func:`run_blocks`
restarts the CfC's state at each segment, so no state, window or increment pairs frames of
two blocks.
"""

from __future__ import annotations

import numpy as np

Segment = tuple[int, int]


class Sequences:
    """Random sequences of frame windows and targets from a stimulus in memory.

    A batch is ``(frames (B, L, N, H, W), targets (B, L, cells))``: ``L`` steps,
    each with the last ``N`` frames; the CfC carries its state along the ``L`` steps.
    Sequence ``s`` reads frames ``s - N + 1 .. s + L - 1``, all inside one of ``segments``;
    segments too short for one sequence are left out.
    """

    def __init__(self, stim, resp, segments: list[Segment], n_frames: int, seq_len: int,
                 batch: int, seed: int = 0, per_epoch: int = 50):
        self.stim, self.resp = stim, resp
        self.n, self.L, self.B = n_frames, seq_len, batch
        # first and last start of every segment that holds one sequence
        ranges = [(lo + n_frames - 1, hi - seq_len) for lo, hi in segments if hi - seq_len >= lo + n_frames - 1]
        if not ranges:
            raise ValueError(f"frames {segments} hold no {seq_len}-step sequence of {n_frames}-frame windows "
                             f"inside one recording block")
        self.ranges = ranges
        self._count = np.array([b - a + 1 for a, b in ranges], dtype=np.int64)
        self._offset = np.concatenate([[0], np.cumsum(self._count)])
        self.seed, self.per_epoch = seed, per_epoch

    @property
    def n_starts(self) -> int:
        """Number of distinct sequence starts."""
        return int(self._offset[-1])

    def start_of(self, k) -> np.ndarray:
        """The frame each of the flat start indices ``k`` (0 .. n_starts - 1) stands for."""
        k = np.asarray(k, dtype=np.int64)
        seg = np.searchsorted(self._offset, k, side="right") - 1
        first = np.array([a for a, _ in self.ranges], dtype=np.int64)
        return first[seg] + (k - self._offset[seg])

    def make(self, starts):
        import torch

        from engine.models.retina_cfc import frame_windows

        # windows as a view of the stacked movies (not stacked windows: n times the memory), so
        # the DoG front end sees one sliding view and projects each frame once
        x = frame_windows(torch.stack([self.stim[s - self.n + 1: s + self.L] for s in starts]), self.n)
        y = torch.stack([self.resp[s: s + self.L] for s in starts])
        return x, y

    def draw(self, epoch: int) -> list[list[int]]:
        """The starts of one epoch's batches (what :meth:`__call__` builds)."""
        import torch

        g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        return [self.start_of(torch.randint(0, self.n_starts, (self.B,), generator=g).numpy()).tolist()
                for _ in range(self.per_epoch)]

    def __call__(self, epoch: int):
        for starts in self.draw(epoch):
            yield self.make(starts)

    def fixed(self, n_batches: int) -> list:
        """Evenly spaced batches (validation)."""
        total = n_batches * self.B
        starts = self.start_of(np.linspace(0, self.n_starts - 1, total).astype(np.int64)).tolist()
        return [self.make(starts[i:i + self.B]) for i in range(0, total, self.B)]


def run_model(model, stim, n_frames: int, chunk: int = 512, reporter=None, h0=None):
    """Run the CfC over a whole stimulus (one block), carrying its state: returns numpy
    arrays ``u`` (T', F) encoder features, ``states`` (T', units), ``rates`` (T', cells),
    for the times ``n_frames-1 .. T-1``."""
    import torch

    from engine.models.retina_cfc import frame_windows

    T = stim.shape[0]
    starts = range(n_frames - 1, T, chunk)
    us, states, rates = [], [], []
    h = h0
    with torch.no_grad():
        for i, s in enumerate(starts):
            e = min(T, s + chunk)
            frames = frame_windows(stim[s - n_frames + 1: e], n_frames)[None]
            u = model.encode(frames)
            out, st = model.run_cfc(u, h)
            h = st[:, -1]
            us.append(u[0])
            states.append(st[0])
            rates.append(model.readout(out)[0])
            if reporter is not None:
                reporter.progress(i + 1, len(starts), "running the CfC")
                if reporter.cancelled:
                    from engine.reporting import Cancelled

                    raise Cancelled()
    cat = lambda xs: torch.cat(xs).double().numpy()  # noqa: E731
    return cat(us), cat(states), cat(rates)


def run_blocks(model, stim, n_frames: int, segments: list[Segment], reporter=None):
    """:func:`run_model` over each segment from a zero state (a block starts afresh).

    Returns ``times`` (int64, the frame each output row belongs to: ``lo + n_frames - 1 ..
    hi - 1`` of every segment long enough for one window) and per-segment lists ``us``,
    ``states``, ``rates``.
    """
    times, us, states, rates = [], [], [], []
    for lo, hi in segments:
        if hi - lo < n_frames:
            continue
        u, x, r = run_model(model, stim[lo:hi], n_frames, reporter=reporter)
        times.append(np.arange(lo + n_frames - 1, hi, dtype=np.int64))
        us.append(u)
        states.append(x)
        rates.append(r)
    if not times:
        raise ValueError(f"no segment of {segments} holds a {n_frames}-frame window")
    return np.concatenate(times), us, states, rates


def control_inputs(u, mean, comps, discrete_time: bool, shape=None, bounds=None):
    """Control inputs from encoder features: their projections on ``comps`` (principal
    components or drive directions).  ``shape`` (k, q): each projection ``d`` becomes the
    polynomial ``shape[:, 0] d + shape[:, 1] d^2 + ...`` (a drive's own nonlinearity, see
    :func:`engine.analyses.retina.sindy.drive_shapes`; None: ``d`` itself), with ``d`` first
    held inside ``bounds`` (k, 2), the range the polynomial was fitted on, when given.  A
    discrete-time model of the CfC pairs the state at frame k with the input of frame k+1,
    since the CfC step that makes h[k+1] reads u[k+1]; the last frame repeats."""
    upc = (u - mean) @ comps.T
    if shape is not None:
        if bounds is not None:
            # a polynomial fitted on one range turns wild outside it (a cubic's d^3 overtakes
            # its d): beyond the fitted range the drive keeps its edge value
            upc = np.clip(upc, np.asarray(bounds)[:, 0], np.asarray(bounds)[:, 1])
        shape = np.asarray(shape, dtype=float)
        upc = sum(shape[:, j] * upc ** (j + 1) for j in range(shape.shape[1]))
    return np.concatenate([upc[1:], upc[-1:]]) if discrete_time else upc
