"""The difference-of-Gaussians front end: its filters are the generator's DoGs, it
round-trips through a config dict, and its centres move to a cell's receptive field."""

import numpy as np
import pytest
import torch

from engine.data.retina_gen import _dog
from engine.models.dog_front import DoGFront
from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig, frame_windows

SMALL = dict(n_cells=2, n_frames=4, frame_size=(20, 20), encoder_features=5, front="dog", dog_filters=4)
FRONT = dict(n_frames=4, frame_size=(20, 20), filters=4, features=5)


def test_filters_are_differences_of_gaussians_like_the_generators():
    front = DoGFront(**FRONT)
    with torch.no_grad():
        front.cy[0], front.cx[0] = 7.3 / front.unit, 11.6 / front.unit
        front.log_centre[0] = np.log(2.0)
        front.log_ratio[0] = np.log(2.5)
        front.surround[0] = np.log(0.6 / 0.4)
    mine = front.filters()[0].reshape(20, 20).detach().numpy()
    theirs = _dog(20, 7.3, 11.6, 2.0, 5.0, 0.6)
    # the generator scales its filter to unit absolute sum; the shape is the same
    np.testing.assert_allclose(mine / np.abs(mine).sum(), theirs, atol=1e-6)
    np.testing.assert_allclose(front.centres()[0].numpy(), [7.3, 11.6], atol=1e-5)


def test_a_pooled_front_end_puts_its_filters_on_the_pooled_grid_in_frame_pixels():
    front = DoGFront(**FRONT, pool=2)
    with torch.no_grad():
        front.cy[0], front.cx[0] = 8.5 / front.unit, 12.5 / front.unit  # a pooled pixel's centre
    f = front.filters()[0].reshape(10, 10)
    assert divmod(int(f.argmax()), 10) == (4, 6)  # pooled pixel (4, 6) covers frame pixels 8-9, 12-13
    assert front(torch.rand(3, 4, 20, 20)).shape == (3, 5)


@pytest.mark.parametrize("pool", [1, 2])
def test_sliding_windows_are_projected_once_with_the_same_features_and_gradients(pool):
    torch.manual_seed(0)
    front = DoGFront(**FRONT, pool=pool)
    movie = torch.rand(2, 9, 20, 20)
    windows = frame_windows(movie, 4)  # (2, 6, 4, 20, 20), a view sharing frames
    assert windows.stride(1) == windows.stride(2)
    fast = front.windows(windows)
    slow = front(windows.reshape(12, 4, 20, 20)).reshape(2, 6, -1)  # every window on its own
    torch.testing.assert_close(fast, slow)
    g_fast = torch.autograd.grad(fast.square().sum(), front.cy)[0]
    g_slow = torch.autograd.grad(slow.square().sum(), front.cy)[0]
    torch.testing.assert_close(g_fast, g_slow)
    # windows that are not one sliding view take the window-by-window path
    shuffled = windows[:, torch.tensor([3, 0, 5, 1, 4, 2])]
    torch.testing.assert_close(front.windows(shuffled), slow[:, torch.tensor([3, 0, 5, 1, 4, 2])])


def test_a_dog_model_round_trips_through_its_config_and_old_configs_stay_conv():
    torch.manual_seed(0)
    model = RetinaCfC(RetinaCfCConfig(**SMALL)).eval()
    clone = RetinaCfC.from_config(model.config.to_dict()).eval()
    clone.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 4, 20, 20)
    torch.testing.assert_close(clone(x)[0], model(x)[0])
    old = {k: v for k, v in RetinaCfCConfig().to_dict().items() if k not in ("front", "dog_filters", "dog_temporal")}
    assert RetinaCfCConfig.from_dict(old).front == "conv"
    with pytest.raises(ValueError, match="front"):
        RetinaCfCConfig(front="gabor").validate()


def test_its_centre_moves_onto_a_cells_receptive_field():
    """One ON-OFF cell at (7, 12): the single filter starts at the frame's centre (10, 10),
    3.6 px away, and must find it from the responses alone at the training's learning rate
    (with its centre in pixels it ends 2.1 px away: Adam moves it a fraction of a pixel a step)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    size, n, steps = 20, 4, 400
    scenes = rng.standard_normal((steps // 4 + 1, size, size)).astype(np.float32)
    movie = torch.from_numpy(np.repeat(scenes, 4, axis=0)[:steps])  # a new scene every 4 frames
    rf = torch.from_numpy(_dog(size, 7.0, 12.0, 1.5, 3.75, 0.6)).flatten()
    proj = movie.flatten(1) @ rf
    drive = torch.zeros(steps)
    drive[1:] = (proj[1:] - proj[:-1]).abs()  # responds to a change of either sign
    windows = movie.unfold(0, n, 1).permute(0, 3, 1, 2)  # (steps - n + 1, n, H, W)
    target = drive[n - 1:] / drive.std()
    front = DoGFront(**{**FRONT, "filters": 1})
    head = torch.nn.Linear(5, 1)
    opt = torch.optim.Adam([*front.parameters(), *head.parameters()], lr=3e-3)  # the retina training rate
    start = float(torch.dist(front.centres()[0], torch.tensor([7.0, 12.0])))
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(head(front(windows)).squeeze(1), target)
        loss.backward()
        opt.step()
    end = float(torch.dist(front.centres()[0], torch.tensor([7.0, 12.0])))
    assert start > 3.5 and end < 1.0, (start, end)
